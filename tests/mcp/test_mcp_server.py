"""The MCP server as a real process, driven by the SDK's own client: stdio and streamable HTTP.

Seeded: ada and bob each have Slack/Gmail items (with vectors), a meeting tomorrow, a memory fact
and a delivered deliverable. Every call is ada's; bob's ids must answer exactly like unknown ids.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.mcp.conftest import REPO, Seeded, server_env, token

TOOLS = {"search_content", "read_item", "upcoming_meetings", "memory_facts", "recent_deliverables",
         "read_deliverable", "remember"}


async def _call(client: Client, tool: str, args: dict[str, Any] | None = None) -> tuple[bool, Any]:
    result = await client.call_tool(tool, args or {})
    if result.is_error:
        return False, " ".join(getattr(c, "text", "") for c in result.content)
    return True, result.structured_content if result.structured_content is not None else json.loads(
        result.content[0].text)  # type: ignore[union-attr]


async def _exercise(client: Client, seeded: Seeded) -> None:
    """Everything ada may see, and nothing of bob's."""
    assert {t.name for t in (await client.list_tools()).tools} >= TOOLS

    ok, found = await _call(client, "search_content", {"query": "marketing budget is over", "k": 5})
    assert ok, found
    keys = [h["item_key"] for h in found["results"]]
    assert keys and keys[0] == seeded.ada_items["m1"]  # closest in meaning first
    assert not set(keys) & set(seeded.bob_items.values())
    ok, zebra = await _call(client, "search_content", {"query": "zebra enclosure migration", "k": 10})
    assert ok and all("zebra" not in h["snippet"].lower() for h in zebra["results"])

    ok, item = await _call(client, "read_item", {"item_key": seeded.ada_items["m1"]})
    assert ok and item["text"].startswith("Budget review") and item["platform"] == "slack"
    assert [t["text"][:6] for t in item["thread"]] == ["Agreed", "Budget"]  # the thread, oldest first

    ok, meetings = await _call(client, "upcoming_meetings", {"days": 7})
    assert ok and [m["title"] for m in meetings["meetings"]] == ["Budget sync with finance"]
    ok, event = await _call(client, "read_item", {"item_key": meetings["meetings"][0]["item_key"]})
    assert ok and event["type"] == "event" and event["text"].startswith("Budget sync") and event["ends_at"]

    ok, facts = await _call(client, "memory_facts")
    assert ok and [(f["key"], f["value"]) for f in facts["facts"]] == [("fact:home_city", "Berlin")]

    ok, recent = await _call(client, "recent_deliverables")
    assert ok and [d["deliverable_id"] for d in recent["deliverables"]] == [seeded.ada_deliverable]
    assert recent["deliverables"][0]["latest_version"]["text"] == "Budget is 12% over."
    ok, full = await _call(client, "read_deliverable", {"deliverable_id": seeded.ada_deliverable})
    assert ok and full["title"] == "Weekly budget status"

    # bob's ids: "not found", word for word what an id that exists nowhere gets
    unknown = {tool: await _call(client, tool, args) for tool, args in (
        ("read_item", {"item_key": "0" * 24}), ("read_deliverable", {"deliverable_id": "nope"}))}
    assert all(not ok and message.endswith(": not found") for ok, message in unknown.values()), unknown
    for tool, args in (("read_item", {"item_key": seeded.bob_items["b1"]}),
                       ("read_item", {"item_key": seeded.bob_meeting}),
                       ("read_deliverable", {"deliverable_id": seeded.bob_deliverable})):
        assert await _call(client, tool, args) == unknown[tool], tool

    # a fact ada states outranks what was inferred, and lands on ada only
    ok, saved = await _call(client, "remember", {"key": "fact:home_city", "value": "Hamburg"})
    assert ok and saved["source"] == "user_stated" and saved["value"] == "Hamburg"
    ok, facts = await _call(client, "memory_facts")
    assert [(f["key"], f["value"], f["source"]) for f in facts["facts"]] == [
        ("fact:home_city", "Hamburg", "user_stated")]
    ok, message = await _call(client, "remember", {"key": "pattern:edits", "value": "x"})
    assert not ok and "pattern:" in message
    ok, message = await _call(client, "search_content", {"query": "budget", "k": 5000})
    assert not ok and "k must be" in message


def _bob_memory(seeded: Seeded) -> list[tuple[str, str]]:
    from control_plane import db
    from resources.settings import load_settings
    from yarn_assets.memory import user_context

    with db.session_scope(load_settings().resolved_control_plane_url) as s:
        return [(r.key, r.value) for r in user_context.current(s, "bob")]


def test_stdio_server_serves_one_user(seeded: Seeded) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "yarn_assets.mcp", "--transport", "stdio"],
                                   env=server_env(seeded.home, YARNNN_MCP_TOKEN=token("ada")), cwd=str(REPO))

    async def main() -> None:
        async with Client(params, read_timeout_seconds=60) as client:
            await _exercise(client, seeded)

    anyio.run(main)
    assert _bob_memory(seeded) == [("fact:home_city", "Lisbon")]


def test_stdio_server_refuses_to_start_without_a_valid_token(seeded: Seeded) -> None:
    import subprocess

    for bad in ("", token("ada", audience="api"), "forged.token.value"):
        proc = subprocess.run([sys.executable, "-m", "yarn_assets.mcp"], cwd=REPO, capture_output=True, timeout=120,
                              env=server_env(seeded.home, YARNNN_MCP_TOKEN=bad), stdin=subprocess.DEVNULL)
        assert proc.returncode != 0 and b"does not hold a valid MCP token" in proc.stderr


def test_streamable_http_scopes_every_request_by_its_token(http_server: str, seeded: Seeded) -> None:
    async def session(user: str) -> None:
        headers = {"Authorization": f"Bearer {token(user)}"}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http, \
                Client(streamable_http_client(http_server, http_client=http)) as client:
            if user == "ada":
                await _exercise(client, seeded)
            else:  # bob, on the same server, sees his own world only
                ok, facts = await _call(client, "memory_facts")
                assert ok and [(f["key"], f["value"]) for f in facts["facts"]] == [("fact:home_city", "Lisbon")]
                ok, message = await _call(client, "read_deliverable", {"deliverable_id": seeded.ada_deliverable})
                assert not ok and message.endswith(": not found")

    anyio.run(session, "ada")
    anyio.run(session, "bob")

    async def refused() -> list[int]:
        codes = []
        async with httpx2.AsyncClient(timeout=30) as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
            for auth in (None, "Bearer forged", f"Bearer {token('ada', audience='api')}", "Basic YTpi"):
                headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
                if auth:
                    headers["Authorization"] = auth
                codes.append((await http.post(http_server, json=body, headers=headers)).status_code)
        return codes

    assert anyio.run(refused) == [401, 401, 401, 401]


@pytest.mark.parametrize("bad_key", ["", "short"])
def test_http_server_needs_a_signing_key(seeded: Seeded, bad_key: str) -> None:
    import subprocess

    env = server_env(seeded.home)
    env["YARNNN_AUTH_SIGNING_KEY"] = bad_key
    proc = subprocess.run([sys.executable, "-m", "yarn_assets.mcp", "--transport", "http", "--port", "1"], cwd=REPO,
                          capture_output=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0 and b"YARNNN_AUTH_SIGNING_KEY" in proc.stderr


def test_serve_token_issues_a_verifiable_token_for_known_users_only(seeded: Seeded) -> None:
    from click.testing import CliRunner

    from tests.mcp.conftest import SIGNING_KEY
    from yarn_assets.cli import main
    from yarn_assets.core import auth

    ok = CliRunner().invoke(main, ["serve", "mcp-token", "ada", "--days", "2"])
    assert ok.exit_code == 0, ok.output
    assert auth.verify(SIGNING_KEY, ok.output.strip(), audience="mcp") == "ada"
    unknown = CliRunner().invoke(main, ["serve", "mcp-token", "carol"])
    assert unknown.exit_code == 1 and "unknown user" in unknown.output
