"""The consent flows end to end: uvicorn + the connect router + loopback Slack/Google/Notion OAuth servers."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from tests.connect.conftest import World


def _conns(world: World, user_id: str = "ada") -> dict[str, Any]:
    from control_plane.models import PlatformConnection

    with world.env.sessions() as s:
        rows = s.scalars(select(PlatformConnection).where(PlatformConnection.user_id == user_id))
        return {c.platform: c for c in rows}


def _creds(world: World, platform: str, user_id: str = "ada") -> dict[str, Any]:
    conn = _conns(world, user_id)[platform]
    return world.env.cipher().decrypt(conn.credentials_encrypted)


def _events(world: World, event_type: str) -> list[dict[str, Any]]:
    from yarn_assets.core.activity_log import read_events

    return list(read_events(world.env.store, event_types=[event_type]).iter_rows(named=True))


def test_slack_connect_stores_encrypted_tokens_and_writes_the_event(world: World) -> None:
    started = world.start("slack")
    q = parse_qs(urlsplit(started["authorize_url"]).query)
    assert q["code_challenge_method"] == ["S256"] and q["code_challenge"]
    assert "im:history" in q["user_scope"][0] and q["redirect_uri"] == [f"{world.api}/connect/slack/callback"]
    r = requests.get(world.consent(started["authorize_url"]), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["connected"] == ["slack"] and r.json()["account"] == "Acme"

    conn = _conns(world)["slack"]
    assert conn.status == "active" and conn.account_label == "Acme"
    assert "xox" not in conn.credentials_encrypted  # encrypted at rest
    creds = _creds(world, "slack")
    assert creds["bot_token"].startswith("xoxb-") and creds["user_token"].startswith("xoxp-")
    assert creds["slack_user_id"] == "U0USER" and creds["refresh_token"] and creds["user_refresh_token"]
    token_call = world.slack.server.matching("POST", r"oauth\.v2\.access")[-1]
    assert token_call.headers["authorization"].startswith("Basic ")  # client auth as Slack recommends
    assert token_call.param("code_verifier")  # PKCE verifier sent with the code
    events = _events(world, "integration_connected")
    assert [e["event_ref"] for e in events] == [conn.id]


def test_wrong_state_is_refused_and_logged(world: World, caplog: pytest.LogCaptureFixture) -> None:
    started = world.start("slack")
    callback = world.consent(started["authorize_url"])
    parts = urlsplit(callback)
    code = parse_qs(parts.query)["code"][0]
    caplog.set_level(logging.WARNING, logger="yarnnn.connect")
    forged = requests.get(f"{world.api}/connect/slack/callback", params={"code": code, "state": "forged"}, timeout=10)
    assert forged.status_code == 400 and forged.json()["detail"]["error"] == "unknown_state"
    missing = requests.get(f"{world.api}/connect/slack/callback", params={"code": code}, timeout=10)
    assert missing.status_code == 400 and missing.json()["detail"]["error"] == "missing_state"
    huge = requests.get(f"{world.api}/connect/slack/callback", params={"code": code, "state": "s" * 5000}, timeout=10)
    assert huge.status_code == 422  # bounded before anything is looked up
    # a Slack state presented at Google's callback
    state = parse_qs(parts.query)["state"][0]
    cross = requests.get(f"{world.api}/connect/google/callback", params={"code": code, "state": state}, timeout=10)
    assert cross.status_code == 400 and cross.json()["detail"]["error"] == "provider_mismatch"
    refusals = [r for r in caplog.records if "oauth callback refused" in r.getMessage()]
    assert {r.getMessage().split("reason=")[1].split()[0] for r in refusals} == {
        "unknown_state", "missing_state", "provider_mismatch"}
    assert all(code not in r.getMessage() and "forged" not in r.getMessage() for r in refusals)
    assert "slack" not in _conns(world)
    assert world.slack.server.count("POST", r"oauth\.v2\.access") == 0  # refused before any exchange
    # the genuine callback still works: a refused forgery does not burn the real state
    assert requests.get(callback, timeout=10).status_code == 200


def test_replayed_callback_and_replayed_code_are_refused(world: World, caplog: pytest.LogCaptureFixture) -> None:
    callback = world.consent(world.start("slack")["authorize_url"])
    assert requests.get(callback, timeout=10).status_code == 200
    first = _creds(world, "slack")
    caplog.set_level(logging.WARNING, logger="yarnnn.connect")
    replay = requests.get(callback, timeout=10)
    assert replay.status_code == 400 and replay.json()["detail"]["error"] == "replayed_state"
    # the same code under a fresh, valid state: the provider refuses it (codes are single use)
    old_code = parse_qs(urlsplit(callback).query)["code"][0]
    fresh = world.start("slack")
    state = parse_qs(urlsplit(fresh["authorize_url"]).query)["state"][0]
    again = requests.get(f"{world.api}/connect/slack/callback", params={"code": old_code, "state": state}, timeout=10)
    assert again.status_code == 400 and again.json()["detail"]["error"] == "code_refused"
    assert "invalid_code" in again.json()["detail"]["message"]
    assert _creds(world, "slack") == first  # nothing replaced
    reasons = [r.getMessage() for r in caplog.records if "oauth callback refused" in r.getMessage()]
    assert any("replayed_state" in m for m in reasons) and any("code_refused" in m for m in reasons)
    assert len(_events(world, "integration_connected")) == 1


def test_expired_state_and_declined_consent(world: World) -> None:
    from yarn_assets.connect import flow

    old = flow.start(world.env, user_id="ada", provider_name="notion",
                     now=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=world.settings.oauth_state_ttl_seconds + 5))
    late = requests.get(world.consent(old.authorize_url), timeout=10)
    assert late.status_code == 400 and late.json()["detail"]["error"] == "expired_state"
    world.notion.deny_next = True
    declined = requests.get(world.consent(world.start("notion")["authorize_url"]), timeout=10)
    assert declined.status_code == 400 and declined.json()["detail"]["error"] == "consent_declined"
    assert "notion" not in _conns(world)


def test_google_incremental_consent_keeps_the_refresh_token(world: World) -> None:
    first = world.start("google", platforms=["gmail"])
    q = parse_qs(urlsplit(first["authorize_url"]).query)
    assert q["access_type"] == ["offline"] and q["include_granted_scopes"] == ["true"]
    assert q["prompt"] == ["consent"]  # nothing stored yet: make sure a refresh token comes back
    assert "gmail.readonly" in q["scope"][0] and "calendar" not in q["scope"][0]
    r = requests.get(world.consent(first["authorize_url"]), timeout=10)
    assert r.status_code == 200 and r.json()["connected"] == ["gmail"] and r.json()["account"] == "ada@example.com"
    refresh = _creds(world, "gmail")["refresh_token"]
    assert refresh.startswith("1//rt-")

    second = world.start("google", platforms=["calendar"])
    q2 = parse_qs(urlsplit(second["authorize_url"]).query)
    assert "prompt" not in q2  # a refresh token is stored: no forced re-consent
    token_calls = world.google.server.count("POST", r"^/token$")
    r2 = requests.get(world.consent(second["authorize_url"]), timeout=10)
    assert r2.status_code == 200, r2.text
    assert "refresh_token" not in world.google.server.matching("POST", r"^/token$")[token_calls:][0].body.decode()
    assert sorted(r2.json()["connected"]) == ["calendar", "gmail"]  # include_granted_scopes: both covered
    for platform in ("gmail", "calendar"):
        creds = _creds(world, platform)
        assert creds["refresh_token"] == refresh  # kept although the second consent returned none
        assert creds["client_id"] and creds["client_secret"]  # what the sync client needs
        assert "calendar.readonly" in creds["scope"] and "gmail.readonly" in creds["scope"]


def test_notion_uses_basic_auth_and_json(world: World) -> None:
    r = world.connect("notion")
    assert r.status_code == 200 and r.json()["account"] == "Ada's Notion"
    call = world.notion.server.matching("POST", r"/v1/oauth/token")[-1]
    assert call.headers["authorization"].startswith("Basic ")
    assert call.json()["grant_type"] == "authorization_code" and "client_secret" not in call.json()
    assert _creds(world, "notion")["token"].startswith("ntn_")


def test_routes_need_a_valid_user_token(world: World) -> None:
    from yarn_assets.core import auth

    for headers in ({}, {"Authorization": "Bearer forged.token.here"},
                    {"Authorization": f"Bearer {auth.issue('x' * 40, 'ada')}"},  # signed with another key
                    {"Authorization": f"Bearer {auth.issue('k' * 40, 'ada', audience='mcp')}"}):
        r = requests.post(f"{world.api}/connect/slack/start", headers=headers, timeout=10)
        assert r.status_code == 401 and r.json() == {"detail": "not authenticated"}
        assert requests.get(f"{world.api}/connect", headers=headers, timeout=10).status_code == 401
        assert requests.delete(f"{world.api}/connect/slack", headers=headers, timeout=10).status_code == 401
    unknown = requests.post(f"{world.api}/connect/dropbox/start", headers=world.headers(), timeout=10)
    assert unknown.status_code == 404


def test_one_users_consent_never_lands_on_another(world: World) -> None:
    assert world.connect("slack", user_id="bob").status_code == 200
    assert "slack" in _conns(world, "bob") and "slack" not in _conns(world, "ada")
    listing = requests.get(f"{world.api}/connect", headers=world.headers("ada"), timeout=10).json()
    assert listing["connections"] == []
    gone = requests.delete(f"{world.api}/connect/slack", headers=world.headers("ada"), timeout=10)
    assert gone.status_code == 404 and _conns(world, "bob")["slack"].status == "active"


def test_disconnect_revokes_at_each_provider(world: World) -> None:
    for provider in ("slack", "google", "notion"):
        assert world.connect(provider).status_code == 200
    slack, google, notion = _creds(world, "slack"), _creds(world, "gmail"), _creds(world, "notion")

    for provider in ("slack", "google", "notion"):
        r = requests.delete(f"{world.api}/connect/{provider}", headers=world.headers(), timeout=10)
        assert r.status_code == 200 and r.json()["revoked"] is True and r.json()["revoke"] == "revoked", r.text
    assert sorted(world.slack.revoked) == sorted([slack["bot_token"], slack["user_token"]])
    assert world.google.revoked == [google["refresh_token"]]
    assert world.notion.revoked == [notion["token"]]
    for conn in _conns(world).values():
        assert conn.status == "disconnected" and conn.credentials_encrypted is None
    events = _events(world, "integration_disconnected")
    assert sorted(e["event_ref"] for e in events) == sorted(c.id for c in _conns(world).values())
    again = requests.delete(f"{world.api}/connect/slack", headers=world.headers(), timeout=10)
    assert again.status_code == 404  # nothing left to disconnect
    # and a reconnect brings the connection back to active, with the same row (selection kept)
    before = _conns(world)["slack"].id
    assert world.connect("slack").status_code == 200
    assert _conns(world)["slack"].id == before and _conns(world)["slack"].status == "active"


def test_disconnect_still_disconnects_when_the_token_is_already_gone(world: World) -> None:
    world.connect("notion")
    world.notion.live_access.clear()  # the user removed the integration in Notion itself
    r = requests.delete(f"{world.api}/connect/notion", headers=world.headers(), timeout=10)
    assert r.status_code == 200 and r.json()["revoke"] == "already gone"
    assert _conns(world)["notion"].credentials_encrypted is None


def test_no_token_or_secret_reaches_the_logs(world: World, caplog: pytest.LogCaptureFixture) -> None:
    from yarn_assets.connect.tokens import credentials_for

    caplog.set_level(logging.DEBUG)
    for provider in ("slack", "google", "notion"):
        assert world.connect(provider).status_code == 200
    conns = _conns(world)
    secrets = {"client-secret-xyz"}
    for platform, conn in conns.items():
        creds = credentials_for(world.env, conn.id, now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
        secrets |= {str(v) for k, v in _creds(world, platform).items() if "token" in k} | {
            str(v) for k, v in creds.items() if "token" in k}
    for provider in ("slack", "google", "notion"):
        requests.delete(f"{world.api}/connect/{provider}", headers=world.headers(), timeout=10)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "oauth connected" in text and "refreshed" in text  # the logs do say what happened
    leaked = [s for s in secrets if s and s in text]
    assert leaked == []


def test_google_grant_without_any_refresh_token_is_refused(world: World) -> None:
    from control_plane.models import OAuthState

    url = world.start("google")["authorize_url"].replace("access_type=offline", "access_type=online")
    r = requests.get(world.consent(url), timeout=10)
    assert r.status_code == 400 and r.json()["detail"]["error"] == "no_refresh_token"
    assert "gmail" not in _conns(world)
    with world.env.sessions() as s:
        assert [o.outcome for o in s.query(OAuthState)] == ["refused:no_refresh_token"]
