"""Health, OpenAPI, authentication failures (401 without detail), oversized bodies (413), unknown ids (404),
the user's deliverables and versions with their content, memory, status, and the token CLI — against a
real uvicorn server."""

from __future__ import annotations

import datetime as dt

from click.testing import CliRunner

from tests.api.conftest import NOW, token_for
from yarn_assets.api import auth
from yarn_assets.cli import main

NOT_AUTHENTICATED = {"detail": "not authenticated"}


def test_health_and_openapi_need_no_token(server) -> None:
    with server.client() as c:
        assert c.get("/health").json() == {"status": "ok", "checks": {"control_plane": "ok"}}
        paths = c.get("/openapi.json").json()["paths"]
        assert {"/deliverables", "/versions/{version_id}/edit", "/memory/{key}", "/triggers/signals",
                "/status"} <= set(paths)
        assert c.get("/docs").status_code == 200


def test_bad_tokens_are_401_with_no_detail(server, world) -> None:
    past = NOW - dt.timedelta(days=2)
    bad = {
        "missing": None,
        "garbage": "not-a-jwt",
        "forged": token_for("alice", key="x" * 48),
        "expired": token_for("alice", now=past, ttl=dt.timedelta(hours=1)),
        "other audience": token_for("alice", audience="mcp"),
        "unknown scheme": None,
    }
    for name, token in bad.items():
        headers = {"Authorization": f"Bearer {token}"} if token else (
            {"Authorization": "Basic YWxpY2U6cHc="} if name == "unknown scheme" else {})
        with server.client() as c:
            r = c.get("/deliverables", headers=headers)
        assert (r.status_code, r.json()) == (401, NOT_AUTHENTICATED), name
        assert r.headers["www-authenticate"] == "Bearer"


def test_the_users_deliverables_versions_and_content(server, world) -> None:
    with server.client("alice") as c:
        listed = c.get("/deliverables").json()["deliverables"]
        assert [d["id"] for d in listed] == [world.deliverables["alice"]]
        versions = c.get(f"/deliverables/{world.deliverables['alice']}/versions").json()["versions"]
        assert [(v["id"], v["version_number"], v["delivery_status"], v["review"]) for v in versions] == [
            (world.versions["alice"], 1, "delivered", None)]
        v = c.get(f"/versions/{world.versions['alice']}").json()
        assert v["final_content"] and "offline" in v["final_content"].lower()
        assert v["draft_content"] and v["feedback"] == []


def test_unknown_ids_are_404_and_oversized_bodies_413(server, world) -> None:
    with server.client("alice") as c:
        for path in ("/deliverables/nope", "/deliverables/nope/versions", "/versions/nope"):
            assert (c.get(path).status_code, c.get(path).json()) == (404, {"detail": "not found"})
        assert c.post("/versions/nope/approve").status_code == 404
        huge = "x" * 70_000
        r = c.post(f"/versions/{world.versions['alice']}/edit", json={"content": huge})
        assert r.status_code == 413 and "larger than 65536 bytes" in r.json()["detail"]

        def chunks():  # no Content-Length: counted while it streams
            for _ in range(10):
                yield b'{"content": "' + b"y" * 8000

        r = c.post(f"/versions/{world.versions['alice']}/edit", content=chunks(),
                   headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert c.post(f"/versions/{world.versions['alice']}/edit", json={"content": ""}).status_code == 422
    with server.client("alice") as c:  # nothing was changed by the refused requests
        assert c.get(f"/versions/{world.versions['alice']}").json()["feedback"] == []


def test_memory_list_correct_delete(server, world) -> None:
    with server.client("alice") as c:
        facts = c.get("/memory").json()["facts"]
        assert [(f["key"], f["source"]) for f in facts] == [("fact:team", "conversation")]
        r = c.put("/memory/fact:team", json={"value": "alice leads the platform team"}).json()
        assert (r["action"], r["source"], r["replaced"]) == ("replaced", "user_stated", "alice works on the alice team")
        assert c.put("/memory/not-a-key", json={"value": "x"}).status_code == 422
        assert c.delete("/memory/fact:team").json() == {"key": "fact:team", "action": "retracted"}
        assert c.delete("/memory/fact:team").status_code == 404
        assert c.get("/memory").json()["facts"] == []


def test_a_users_own_statement_outranks_what_is_inferred_later(server, world) -> None:
    from control_plane import db
    from yarn_assets.memory import user_context

    with server.client("alice") as c:
        c.put("/memory/preference:length", json={"value": "short briefs"})
    with db.session_scope(world.url) as s:  # the nightly run infers the opposite afterwards
        out = user_context.upsert(s, user_context.Assertion(
            user_id="alice", key="preference:length", value="Expands drafts: prefers more detailed deliverables.",
            source="feedback", confidence=0.7, observed_at=NOW + dt.timedelta(hours=1)))
        assert out.action == "outranked"
    with server.client("alice") as c:
        facts = {f["key"]: (f["value"], f["source"]) for f in c.get("/memory").json()["facts"]}
    assert facts["preference:length"] == ("short briefs", "user_stated")


def test_status_is_the_users_own(server, world) -> None:
    with server.client("alice") as c:
        body = c.get("/status").json()
    assert body["user"]["user_id"] == "alice"
    assert [x["platform"] for x in body["user"]["connections"]] == ["slack"]
    assert "bob" not in str(body) and "operator_failures" not in body


def test_users_token_cli_mints_a_token_the_api_accepts(server, world) -> None:
    out = CliRunner().invoke(main, ["users", "token", "alice", "--hours", "2"])
    assert out.exit_code == 0, out.output
    token = out.output.strip()
    assert auth.verify("k" * 48, token) == "alice"
    with server.client(token=token) as c:
        assert c.get("/deliverables").status_code == 200
    assert CliRunner().invoke(main, ["users", "token", "nobody"]).exit_code != 0
