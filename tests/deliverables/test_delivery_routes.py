"""Delivery that lands by default: the user's email (real SMTP, aiosmtpd) and a Slack DM through the user's own
Slack connection (loopback Slack Web API), several destinations each exactly once, the operator token only as
the fallback, the file outbox as the labelled demo transport, and the CLI's warning when SMTP is missing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from control_plane import db
from control_plane.crypto import TokenCipher
from control_plane.models import DeliverableDelivery, DeliverableVersion
from tests.deliverables.helpers import NOW, create, run_resources, sample_content, seed_silver
from tests.fakes.slack_web import SlackWebApi
from yarn_assets.cli import main
from yarn_assets.deliverables.delivery.base import DestinationError, parse_destination
from yarn_assets.deliverables.run import run_deliverable
from yarn_assets.ingest.sync import connections

USER_BOT = "xoxb-alice-workspace"
OPERATOR = "xoxb-operator"


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackWebApi]:
    key = TokenCipher.generate_key()
    monkeypatch.setenv("YARNNN_ENCRYPTION_KEY", key)
    with SlackWebApi(OPERATOR, USER_BOT) as api:
        monkeypatch.setenv("YARNNN_SLACK_BASE_URL", api.base_url)
        yield api


def connect_slack(url: str, user_id: str, *, slack_user_id: str | None = "U0ALICE", status: str = "active") -> None:
    """The control-plane function the OAuth callback and ``yarnnn connections add`` both use."""
    import os

    with db.session_scope(url) as s:
        conn, _ = connections.add(s, TokenCipher(os.environ["YARNNN_ENCRYPTION_KEY"]), user_id=user_id,
                                  platform="slack", account_label="Northwind",
                                  credentials={"bot_token": USER_BOT, "slack_user_id": slack_user_id})
        conn.status = status


def _deliveries(url: str) -> list[tuple[str, str, str, int]]:
    with db.session_scope(url) as s:
        return sorted((r.channel, r.target, r.status, r.attempts) for r in s.scalars(select(DeliverableDelivery)))


def test_destination_syntax() -> None:
    assert parse_destination(None).is_default and parse_destination({}).as_dict() == {}
    many = parse_destination({"destinations": [{"platform": "email", "target": ""}, {"platform": "slack"},
                                               {"platform": "email"}]})
    assert [d.label for d in many.destinations] == ["email:(user)", "slack:(user)"]  # duplicates dropped
    assert many.as_dict() == {"destinations": [{"platform": "email", "target": ""},
                                               {"platform": "slack", "target": ""}]}
    with pytest.raises(DestinationError, match="valid address"):
        parse_destination({"platform": "email", "target": "a@b.example, evil@x.example"})
    with pytest.raises(DestinationError, match="at most 5"):
        parse_destination([{"platform": "file"}] * 6)


def test_a_deliverable_without_destination_reaches_the_users_inbox_and_slack_dm_once(
        workspace, store, smtp_server, slack) -> None:
    seed_silver(store, sample_content("alice"))
    connect_slack(workspace, "alice")
    did = create(workspace, "alice", "gmail_inbox_brief", destination={})  # as every signal-created one
    out = run_deliverable(run_resources(), deliverable_id=did, run_id="r1", now=NOW)
    assert out.status == "delivered", out.reason
    assert [m.rcpt_tos for m in smtp_server.inbox] == [["alice@northwind.example"]]
    assert [(m.channel, m.token) for m in slack.messages] == [("U0ALICE", f"Bearer {USER_BOT}")]  # her own app
    assert "Q4 roadmap review" in slack.messages[0].text
    assert _deliveries(workspace) == [("email", "alice@northwind.example", "sent", 1), ("slack", "U0ALICE", "sent", 1)]
    routes = json.loads(out.row["destination"])["routes"]
    assert [r["via"] for r in routes] == ["the user's address", "the user's Slack connection"]
    again = run_deliverable(run_resources(), deliverable_id=did, run_id="r2", root_run_id="r1", now=NOW)
    assert again.status == "delivered" and again.delivery is not None and again.delivery.duplicate
    assert len(smtp_server.inbox) == 1 and len(slack.messages) == 1  # each destination exactly once


def test_email_first_slack_too_a_failed_slack_post_is_retried_alone(workspace, store, smtp_server, slack) -> None:
    seed_silver(store, sample_content("alice"))
    connect_slack(workspace, "alice")
    did = create(workspace, "alice", "status_report", destination={"destinations": [
        {"platform": "email", "target": "team@northwind.example"}, {"platform": "slack", "target": "C0TEAM"}]})
    slack.fail_next.append((200, {"ok": False, "error": "ratelimited"}, {}))
    out = run_deliverable(run_resources(), deliverable_id=did, run_id="r1", now=NOW)
    assert out.status == "failed" and "slack:C0TEAM" in (out.reason or "") and "ratelimited" in (out.reason or "")
    assert len(smtp_server.inbox) == 1 and slack.messages == []
    again = run_deliverable(run_resources(), deliverable_id=did, run_id="r2", root_run_id="r1", now=NOW)
    assert again.status == "delivered", again.reason
    assert len(smtp_server.inbox) == 1  # email was not sent twice
    assert [(m.channel, m.token) for m in slack.messages] == [("C0TEAM", f"Bearer {USER_BOT}")]
    assert _deliveries(workspace) == [("email", "team@northwind.example", "sent", 1), ("slack", "C0TEAM", "sent", 2)]
    with db.session_scope(workspace) as s:
        v = s.scalars(select(DeliverableVersion).where(DeliverableVersion.deliverable_id == did)).one()
        assert (v.status, v.delivery_status, v.delivery_error) == ("delivered", "delivered", None)


def test_operator_token_is_only_the_fallback_for_a_named_channel(workspace, store, slack, monkeypatch) -> None:
    monkeypatch.setenv("YARNNN_SLACK_DELIVERY_TOKEN", OPERATOR)
    seed_silver(store, sample_content("alice") + sample_content("bob"))
    channel = create(workspace, "bob", "slack_channel_digest", destination={"platform": "slack", "target": "C0ENG"})
    dm = create(workspace, "bob", "slack_channel_digest", destination={"platform": "slack", "target": ""})
    assert run_deliverable(run_resources(), deliverable_id=channel, run_id="r1", now=NOW).status == "delivered"
    failed = run_deliverable(run_resources(), deliverable_id=dm, run_id="r2", now=NOW)
    assert failed.status == "failed" and "no Slack connection" in (failed.reason or "")
    assert [(m.channel, m.token) for m in slack.messages] == [("C0ENG", f"Bearer {OPERATOR}")]
    connect_slack(workspace, "alice", status="expired")
    expired = create(workspace, "alice", "slack_channel_digest", destination={"platform": "slack", "target": ""})
    out = run_deliverable(run_resources(), deliverable_id=expired, run_id="r3", now=NOW)
    assert out.status == "failed" and "reconnect needed" in (out.reason or "")


def test_without_smtp_the_default_goes_to_the_labelled_file_outbox(workspace, store, slack) -> None:
    seed_silver(store, sample_content("alice"))
    connect_slack(workspace, "alice", slack_user_id=None)  # a CLI-added connection: no user id to DM
    did = create(workspace, "alice", "gmail_inbox_brief")
    out = run_deliverable(run_resources(), deliverable_id=did, run_id="r1", now=NOW)
    assert out.status == "delivered", out.reason
    assert out.delivery is not None and out.delivery.notes == [
        "slack: the Slack connection has no Slack user id to DM (reconnect Slack to enable DMs)"]
    path = Path(out.delivery.external_id or "")
    assert path.is_file()
    assert "transport: file outbox (the demo's transport: SMTP is not configured)" in path.read_text()
    assert slack.messages == [] and _deliveries(workspace) == [("file", "outbox", "sent", 1)]


def test_create_warns_when_email_is_configured_but_smtp_is_not(workspace) -> None:
    runner = CliRunner()
    base = ["deliverables", "create", "--user", "alice", "--type", "status_report", "--title", "Weekly"]
    explicit = runner.invoke(main, [*base, "--email", "boss@northwind.example"])
    assert explicit.exit_code == 0, explicit.output
    assert "Warning: email delivery is configured but SMTP is not" in explicit.output
    assert "will fail until it is set" in explicit.output
    default = runner.invoke(main, base)
    assert "the demo's transport" in default.output
    to_file = runner.invoke(main, [*base, "--file"])
    assert "Warning" not in to_file.output


def test_create_does_not_warn_with_smtp(workspace, smtp_server) -> None:
    out = CliRunner().invoke(main, ["deliverables", "create", "--user", "alice", "--type", "status_report",
                                    "--title", "Weekly", "--email", "boss@northwind.example"])
    assert out.exit_code == 0 and "Warning" not in out.output
