"""Credentials that cannot work fail the run loudly, name the connection, and land in sync_registry."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from resources.settings import load_settings
from tests.fakes.google_api import REFRESH_TOKEN
from tests.fakes.notion_api import NOTION_TOKEN
from tests.fakes.slack_api import BOT_TOKEN
from yarn_assets.core.activity_log import read_events
from yarn_assets.ingest.sources import BRONZE_SYNCS


def _failure(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    events = result.get_step_failure_events()
    return events[0].step_failure_data.error.message


@pytest.mark.parametrize("problem", ["missing", "wrong"])
def test_missing_or_wrong_encryption_key_fails_naming_variable_and_connection(world, monkeypatch, problem):
    world.slack.add_channel("C1", "general", 3)
    world.slack.fill("C1", 5)
    if problem == "missing":
        monkeypatch.delenv("YARNNN_ENCRYPTION_KEY")
    else:
        from cryptography.fernet import Fernet

        monkeypatch.setenv("YARNNN_ENCRYPTION_KEY", Fernet.generate_key().decode())
    world.settings = load_settings()
    message = _failure(world.sync("slack", raise_on_error=False))
    conn_id = world.connections["slack"]
    assert "YARNNN_ENCRYPTION_KEY" in message and f"slack connection {conn_id[:8]} of user ana" in message
    assert ("is not set" if problem == "missing" else "cannot be decrypted") in message
    assert world.slack.count() == 0, "no API call without usable credentials"
    reg = world.registry("slack")
    assert "YARNNN_ENCRYPTION_KEY" in reg["__connection__"]["error"]
    assert world.connection("slack").last_error == reg["__connection__"]["error"]
    assert world.bronze("slack").height == 0
    events = read_events(world.store, event_types=["platform_synced"])
    assert events.height == 1 and "failed" in events["summary"][0]


@pytest.mark.parametrize("platform", ["slack", "gmail", "calendar", "notion"])
def test_revoked_token_fails_run_marks_connection_and_registry(world, platform):
    now = dt.datetime.now(dt.UTC)
    world.slack.add_channel("C1", "general", 3)
    world.slack.fill("C1", 3)
    world.google.add_mail(["INBOX"], now - dt.timedelta(hours=1))
    world.google.add_event(now + dt.timedelta(hours=3))
    world.notion.add_page("Page", blocks=1)
    world.sync(platform)  # a good first sync: resources selected, cursors stored
    if platform == "slack":
        world.slack.tokens[BOT_TOKEN] = "token_revoked"
        expected = "Slack rejected the bot token (token_revoked)"
    elif platform in ("gmail", "calendar"):
        world.google.refresh_tokens[REFRESH_TOKEN] = "revoked"
        expected = "Google refused to refresh the OAuth token (invalid_grant)"
    else:
        world.notion.tokens.discard(NOTION_TOKEN)
        expected = "Notion rejected the integration token (unauthorized)"
    message = _failure(world.sync(platform, raise_on_error=False))
    conn_id = world.connections[platform]
    assert expected in message and f"{platform} connection {conn_id[:8]} of user ana" in message
    conn = world.connection(platform)
    assert conn.status == "revoked" and expected in conn.last_error
    reg = world.registry(platform)
    resources = [k for k in reg if not k.startswith("__")]
    assert resources and all(expected in reg[k]["error"] for k in resources)
    assert expected in reg["__connection__"]["error"]
    # a revoked connection is no longer scheduled; a good sync clears the errors again
    from yarn_assets.ingest.sync.schedule import is_due

    assert not is_due(now=now, tier="pro", timezone="UTC", status=conn.status, last_attempt_at=None,
                      last_synced_at=None).due


def test_one_failing_connection_does_not_hide_the_others(world):
    from control_plane.models import User
    from yarn_assets.ingest.sync import connections as svc

    world.slack.add_channel("C1", "general", 3)
    world.slack.fill("C1", 4)
    from control_plane.crypto import TokenCipher

    with world.session() as s:
        s.add(User(id="bob", email="bob@example.com", tier="free"))
        s.flush()
        conn, _ = svc.add(s, TokenCipher(world.settings.encryption_key.get_secret_value()), user_id="bob",
                          platform="slack", credentials={"bot_token": "xoxb-bob-revoked-SECRET"})
        bob = conn.id
    result = world.sync("slack", connection_ids=[world.connections["slack"], bob], raise_on_error=False)
    message = _failure(result)
    assert f"slack connection {bob[:8]} of user bob" in message and "invalid_auth" in message
    assert world.connections["slack"][:8] not in message
    # ana's data landed and is recorded as a (partial) materialization, so silver picks it up
    mat = world.instance.get_latest_materialization_event(BRONZE_SYNCS).asset_materialization
    assert mat.metadata["partial"].value is True and mat.metadata["objects"].value == 4
    landed = world.bronze("slack").filter(pl.col("object_type") == "slack_api_message")
    assert landed.height == 4 and set(landed["user_id"]) == {"ana"}
    assert world.registry("slack")["C1"]["error"] is None
