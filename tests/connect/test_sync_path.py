"""A dead OAuth grant in the sync path: one clear failure, a reconnect_needed connection, no retry loop."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.connect.conftest import World


def _sync_env(world: World) -> Any:
    from control_plane import db
    from yarn_assets.ingest.api_calls import RetrySettings
    from yarn_assets.ingest.api_clients import ClientConfig
    from yarn_assets.ingest.sync.runner import SyncEnv

    s = world.settings
    return SyncEnv(
        store=world.env.store, session=world.env.sessions, engine=db.get_engine(s.resolved_control_plane_url),
        cipher=world.env.cipher,
        client_config=ClientConfig(slack_base_url=s.slack_base_url, google_token_uri=s.google_token_uri,
                                   notion_base_url=s.notion_base_url, timeout_seconds=5),
        retry=RetrySettings(max_attempts=2, backoff_seconds=0.01, max_retry_after_seconds=1), rate_overrides={},
        run_id="sync-test", ingest_date=dt.datetime.now(dt.UTC).date(),
    )


def test_sync_of_a_dead_grant_fails_once_and_is_not_rescheduled(world: World) -> None:
    from control_plane.models import PlatformConnection
    from yarn_assets.ingest.sync.runner import sync_connection
    from yarn_assets.ingest.sync.schedule import is_due

    world.connect("google")
    with world.env.sessions() as s:
        conns = {c.platform: c for c in s.query(PlatformConnection).filter_by(user_id="ada")}
    creds = world.env.cipher().decrypt(conns["gmail"].credentials_encrypted)
    world.google.kill_grant(creds["refresh_token"])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)  # the access token expired: a refresh is due

    outcome = sync_connection(_sync_env(world), conns["gmail"].id, now=later)
    assert outcome.status == "failed" and "invalid_grant" in outcome.error and "reconnect" in outcome.error
    with world.env.sessions() as s:
        gmail = s.get(PlatformConnection, conns["gmail"].id)
        assert gmail.status == "reconnect_needed" and "must reconnect" in gmail.last_error
        due = is_due(now=later, tier="pro", timezone="UTC", status=gmail.status, last_attempt_at=None,
                     last_synced_at=None)
    assert not due.due and "reconnect" in due.reason  # the schedule leaves it alone: no crash loop
    calls = world.google.server.count("POST", r"^/token$")
    again = sync_connection(_sync_env(world), conns["calendar"].id, now=later)  # a manual retry: fails fast
    assert again.status == "failed" and "reconnect" in again.error
    assert world.google.server.count("POST", r"^/token$") == calls
    assert outcome.event is not None and outcome.event.metadata["status"] == "failed"


def test_sync_path_refreshes_an_expired_notion_token_with_the_stored_client(world: World) -> None:
    """The sync workers have no OAuth settings: the grant's own client id/secret refresh it."""
    from control_plane.models import PlatformConnection
    from yarn_assets.ingest.sync.runner import _credentials

    world.connect("notion")
    with world.env.sessions() as s:
        conn = s.query(PlatformConnection).filter_by(user_id="ada", platform="notion").one()
        creds = world.env.cipher().decrypt(conn.credentials_encrypted)
        creds["expires_at"] = int(dt.datetime.now(dt.UTC).timestamp()) - 5
        conn.credentials_encrypted = world.env.cipher().encrypt(creds)
    fresh = _credentials(_sync_env(world), world.env.cipher(), conn.id, dt.datetime.now(dt.UTC))
    assert fresh["token"] != creds["token"] and fresh["token"].removeprefix("ntn_") in world.notion.live_access
    assert world.notion.server.matching("POST", r"/v1/oauth/token")[-1].json()["grant_type"] == "refresh_token"
