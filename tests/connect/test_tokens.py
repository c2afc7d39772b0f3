"""Token refresh on expiry, and a dead grant as a loud, lasting ``reconnect_needed`` state."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from sqlalchemy import select

from tests.connect.conftest import World


def _conn(world: World, platform: str):  # type: ignore[no-untyped-def]
    from control_plane.models import PlatformConnection

    with world.env.sessions() as s:
        return s.scalars(select(PlatformConnection).where(PlatformConnection.user_id == "ada",
                                                          PlatformConnection.platform == platform)).one()


def _later(hours: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)


def test_fresh_tokens_are_not_refreshed(world: World) -> None:
    from yarn_assets.connect.tokens import credentials_for

    world.connect("google")
    calls = world.google.server.count("POST", r"^/token$")
    creds = credentials_for(world.env, _conn(world, "gmail").id)
    assert creds["access_token"] and world.google.server.count("POST", r"^/token$") == calls


def test_google_refresh_on_expiry_keeps_the_refresh_token_and_updates_both_platforms(world: World) -> None:
    from yarn_assets.connect.tokens import credentials_for

    world.connect("google")
    before = world.env.cipher().decrypt(_conn(world, "gmail").credentials_encrypted)
    creds = credentials_for(world.env, _conn(world, "gmail").id, now=_later(2))  # the hour-long token expired
    call = world.google.server.matching("POST", r"^/token$")[-1]
    assert call.param("grant_type") == "refresh_token" and call.param("refresh_token") == before["refresh_token"]
    assert creds["access_token"] != before["access_token"] and creds["refresh_token"] == before["refresh_token"]
    assert creds["expires_at"] > _later(2).timestamp()
    for platform in ("gmail", "calendar"):  # stored, for both connections of the grant
        stored = world.env.cipher().decrypt(_conn(world, platform).credentials_encrypted)
        assert stored["access_token"] == creds["access_token"]


def test_slack_rotation_refreshes_both_tokens(world: World) -> None:
    from yarn_assets.connect.tokens import credentials_for

    world.connect("slack")
    before = world.env.cipher().decrypt(_conn(world, "slack").credentials_encrypted)
    creds = credentials_for(world.env, _conn(world, "slack").id, now=_later(2))
    assert creds["bot_token"] != before["bot_token"] and creds["user_token"] != before["user_token"]
    assert creds["refresh_token"] != before["refresh_token"]  # rotated: the old one is spent
    assert before["refresh_token"] not in world.slack.live_refresh
    again = credentials_for(world.env, _conn(world, "slack").id, now=_later(2))
    assert again["bot_token"] == creds["bot_token"]  # stored: no second refresh within the new lifetime


def test_invalid_grant_becomes_reconnect_needed_not_a_crash_loop(world: World) -> None:
    from yarn_assets.connect.errors import ReconnectNeeded
    from yarn_assets.connect.tokens import credentials_for

    world.connect("google")
    gmail = _conn(world, "gmail")
    world.google.kill_grant(world.env.cipher().decrypt(gmail.credentials_encrypted)["refresh_token"])
    with pytest.raises(ReconnectNeeded, match=r"refused the stored authorization \(invalid_grant\).*reconnect"):
        credentials_for(world.env, gmail.id, now=_later(2))
    for platform in ("gmail", "calendar"):  # one grant: both connections need the reconnect
        conn = _conn(world, platform)
        assert conn.status == "reconnect_needed" and "must reconnect" in conn.last_error
    calls = world.google.server.count("POST", r"^/token$")
    with pytest.raises(ReconnectNeeded):  # the next use fails at once, without asking Google again
        credentials_for(world.env, gmail.id, now=_later(3))
    assert world.google.server.count("POST", r"^/token$") == calls
    listing = requests.get(f"{world.api}/connect", headers=world.headers(), timeout=10).json()["connections"]
    assert {c["platform"]: c["action"] for c in listing} == {"gmail": "reconnect", "calendar": "reconnect"}
    # the status the operator sees (`yarnnn status`) says it too
    from yarn_assets.ops.status import collect

    shown = collect(control_plane_url=world.settings.resolved_control_plane_url, store=world.env.store,
                    instance=None, user_id="ada")
    assert [(c["status"], "reconnect" in c["last_error"]) for c in shown.users["ada"].connections] == [
        ("reconnect_needed", True)] * 2
    # reconnecting clears it; the dead refresh token does not count as stored: consent is forced
    restart = world.start("google")
    assert "prompt=consent" in restart["authorize_url"]
    assert requests.get(world.consent(restart["authorize_url"]), timeout=10).status_code == 200
    assert _conn(world, "gmail").status == "active"
    assert credentials_for(world.env, _conn(world, "gmail").id)["refresh_token"]


def test_transient_refresh_failure_changes_nothing(world: World) -> None:
    from tests.fakes.loopback import Response
    from yarn_assets.connect.errors import RefreshFailed
    from yarn_assets.connect.tokens import credentials_for

    world.connect("notion")
    conn = _conn(world, "notion")
    stored = world.env.cipher().decrypt(conn.credentials_encrypted)
    stored["expires_at"] = int(dt.datetime.now(dt.UTC).timestamp()) - 10
    with world.env.sessions() as s:
        from control_plane.models import PlatformConnection

        s.get(PlatformConnection, conn.id).credentials_encrypted = world.env.cipher().encrypt(stored)
    world.notion.server.fail_next("POST", r"/v1/oauth/token", [Response.json({"error": "server_error"}, 503)])
    with pytest.raises(RefreshFailed):
        credentials_for(world.env, conn.id)
    assert _conn(world, "notion").status == "active"
    refreshed = credentials_for(world.env, conn.id)  # next time it works
    assert refreshed["token"] != stored["token"]
    call = world.notion.server.matching("POST", r"/v1/oauth/token")[-1]
    assert call.json()["grant_type"] == "refresh_token" and call.headers["authorization"].startswith("Basic ")
