"""User A cannot read or act on user B's objects through ANY route: every route of the app is called with
alice's token and bob's ids (and without a token); bob's objects are unchanged afterwards and his content
never appears in alice's answers. An id of another user answers exactly like an unknown one."""

from __future__ import annotations

import re

from sqlalchemy import select

from control_plane import db
from control_plane.models import DeliverableReview, PlatformConnection, User
from tests.api.conftest import app_routes
from yarn_assets.deliverables import feedback
from yarn_assets.memory import user_context

PUBLIC = {"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
#: The OAuth callback carries no user token by design: the single-use server-side ``state`` says whose consent
#: it is (tests/connect prove a wrong, replayed or foreign state is refused); here: no state, nothing changes.
CALLBACK = "/connect/{provider}/callback"
BODIES = {"/versions/{version_id}/edit": {"content": "hijacked by alice"},
          "/versions/{version_id}/reject": {"reason": "alice says no"},
          "/memory/{key}": {"value": "hijacked by alice"}}


def _bob_state(world) -> dict:
    with db.session_scope(world.url) as s:
        bob = s.get(User, "bob")
        state = {
            "memory": [(r.key, r.value, r.source) for r in user_context.current(s, "bob")],
            "reviews": list(s.scalars(select(DeliverableReview.id).where(DeliverableReview.user_id == "bob"))),
            "trigger": bob.signal_last_manual_trigger_at,
            "connections": [(c.id, c.status, c.credentials_encrypted) for c in s.scalars(
                select(PlatformConnection).where(PlatformConnection.user_id == "bob"))],
        }
    row = feedback.gold_version(world.store, world.deliverables["bob"], world.versions["bob"]) or {}
    state["final_content"] = row.get("final_content")
    runs = world.instance.get_runs()
    state["runs"] = [r.tags for r in runs if "bob" in str(r.tags) or world.deliverables["bob"] in str(r.tags)
                     or world.connections["bob"] in str(r.tags)]
    return state


def test_no_route_reaches_another_users_objects(server, world) -> None:
    routes = [(m, p) for m, p in app_routes(server.app) if p not in PUBLIC | {CALLBACK}]
    assert len(routes) >= 12  # a new route is covered automatically
    params = {"deliverable_id": world.deliverables["bob"], "version_id": world.versions["bob"], "key": "fact:team",
              "platform": "gmail", "provider": "google"}
    unknown = {"deliverable_id": "0" * 36, "version_id": "0" * 36, "key": "fact:team", "platform": "notion",
               "provider": "notion"}
    before = _bob_state(world)
    with server.client() as anonymous:  # the public callback without a valid state: refused, nothing stored
        r = anonymous.get(CALLBACK.format(provider="google"), params={"code": "stolen"})
        assert r.status_code == 400, r.text
    bob_markers = [world.deliverables["bob"], world.versions["bob"], world.connections["bob"], "bob@contoso.example",
                   "bob works on the bob team", "bob's weekly status", "Okafor"]
    checked = 0
    for method, path in routes:
        names = re.findall(r"{(\w+)}", path)
        assert set(names) <= set(params), f"new path parameter in {path}: add it to the isolation test"
        body = BODIES.get(path)
        with server.client() as anonymous:
            r = anonymous.request(method, path.format(**params), json=body)
            assert r.status_code == 401, (method, path, r.status_code)
        with server.client("alice") as alice:
            theirs = alice.request(method, path.format(**params), json=body)
            text = theirs.text
            for marker in bob_markers:
                assert marker not in text, (method, path, marker)
            if set(names) & {"deliverable_id", "version_id", "platform"}:
                assert (theirs.status_code, theirs.json()) == (404, {"detail": "not found"}), (method, path)
                nobody = alice.request(method, path.format(**unknown), json=body)
                assert (nobody.status_code, nobody.json()) == (theirs.status_code, theirs.json())  # no oracle
            else:
                assert theirs.status_code < 500, (method, path, theirs.status_code, text)
        checked += 1
    assert checked == len(routes)
    after = _bob_state(world)
    assert after == before, "bob's objects changed through alice's requests"
    with server.client("bob") as bob:  # and bob still sees his own untouched
        assert [d["id"] for d in bob.get("/deliverables").json()["deliverables"]] == [world.deliverables["bob"]]
        assert bob.get(f"/versions/{world.versions['bob']}").json()["feedback"] == []
