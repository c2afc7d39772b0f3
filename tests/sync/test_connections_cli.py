"""``yarnnn connections``: add (encrypted), list, test, landscape, select, remove; secrets never echoed."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from control_plane.models import PlatformConnection
from tests.fakes.google_api import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN
from tests.fakes.slack_api import BOT_TOKEN
from yarn_assets.cli import main


@pytest.fixture
def cli(api_env, monkeypatch):
    monkeypatch.setenv("SLACK_BOT", BOT_TOKEN)
    monkeypatch.setenv("G_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("G_REFRESH", REFRESH_TOKEN)
    runner = CliRunner()

    def run(*args: str, ok: bool = True, input: str | None = None) -> str:
        result = runner.invoke(main, list(args), input=input, catch_exceptions=False)
        assert (result.exit_code == 0) is ok, result.output
        for secret in (BOT_TOKEN, CLIENT_SECRET, REFRESH_TOKEN):
            assert secret not in result.output
        return result.output

    run("users", "add", "ana", "--email", "ana@example.com", "--tier", "free")
    return run


def test_add_test_landscape_select_remove(cli, slack_api):
    for i in range(7):
        slack_api.add_channel(f"C{i}", f"chan{i}", 10 + i)
    out = cli("connections", "add", "--user", "ana", "--platform", "slack", "--token-env", "SLACK_BOT", "--test")
    assert "added slack connection" in out and "ok: Slack workspace 'Test Workspace'" in out
    out = cli("connections", "landscape", "ana:slack")
    assert out.count("*") == 5 and "5 selected (auto-selection)" in out  # free tier: top 5 by members
    marked = {line.split()[1] for line in out.splitlines()[1:] if line.startswith("*")}
    assert marked == {"C2", "C3", "C4", "C5", "C6"}  # the most members
    out = cli("connections", "select", "ana:slack", "--set", "C0,C1,C2,C3,C4,C5", ok=False)
    assert "exceed the free tier's slack limit of 5" in out
    out = cli("connections", "select", "ana:slack", "--set", "C0,C1", "--add", "C2", "--remove", "C1")
    assert "2 selected: C0, C2" in out
    out = cli("connections", "list")
    assert "ana" in out and "2/7*" in out
    slack_api.add_channel("C9", "huge", 500)  # a refresh keeps the operator's choice
    out = cli("connections", "landscape", "ana:slack")
    assert "2 selected (operator override)" in out and "huge" in out
    out = cli("connections", "select", "ana:slack", "--auto")
    assert out.startswith("5 selected: C9, C6, C5, C4, C3")
    slack_api.tokens[BOT_TOKEN] = "token_revoked"
    out = cli("connections", "test", "ana:slack", ok=False)
    assert "Slack rejected the bot token (token_revoked)" in out
    assert "revoked" in cli("connections", "list")
    out = cli("connections", "remove", "ana:slack", "--yes")
    assert "removed slack connection" in out
    assert "(none)" in cli("connections", "list")


def test_google_consent_creates_gmail_and_calendar_and_keeps_refresh_token(cli, settings):
    out = cli("connections", "add", "--user", "ana", "--platform", "google", "--client-id", CLIENT_ID,
              "--client-secret-env", "G_SECRET", "--refresh-token-env", "G_REFRESH", "--test")
    assert "added gmail connection" in out and "added calendar connection" in out
    assert "ok: Gmail example@gmail.com" in out and "ok: Google Calendar: 1 calendars" in out
    # re-consent without a refresh token (Google omits it) keeps the stored one (the original lost it)
    out = cli("connections", "add", "--user", "ana", "--platform", "gmail", "--client-id", CLIENT_ID,
              "--client-secret-env", "G_SECRET", "--test", input="\n")
    from control_plane import db
    from control_plane.crypto import TokenCipher

    with db.session_scope(settings.resolved_control_plane_url) as s:
        conns = {c.platform: c for c in s.scalars(select(PlatformConnection))}
        assert set(conns) == {"gmail", "calendar"}
        blob = conns["gmail"].credentials_encrypted
        assert REFRESH_TOKEN not in blob and CLIENT_SECRET not in blob
        creds = TokenCipher(settings.encryption_key.get_secret_value()).decrypt(blob)
        assert creds["refresh_token"] == REFRESH_TOKEN


def test_add_without_encryption_key_fails_naming_the_variable(cli, monkeypatch):
    monkeypatch.delenv("YARNNN_ENCRYPTION_KEY")
    out = cli("connections", "add", "--user", "ana", "--platform", "slack", "--token-env", "SLACK_BOT", ok=False)
    assert "YARNNN_ENCRYPTION_KEY is not set" in out
    out = cli("connections", "add", "--user", "nobody", "--platform", "notion", "--token-env", "SLACK_BOT",
              ok=False)
    assert "YARNNN_ENCRYPTION_KEY" in out
