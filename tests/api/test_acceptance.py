"""Issue 16's acceptance, delivery and feedback half: a signal pass creates a deliverable for a user who
connected Slack; its run (what the requests sensor launches, no operator step) lands in her inbox (real SMTP)
and her Slack DM (through her own connection); she edits it through the API (a real uvicorn server); the
next night's patterns reflect the edit."""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg
import pytest
from sqlalchemy import select

from control_plane import db
from control_plane.crypto import TokenCipher
from control_plane.models import Deliverable, DeliverableRunRequest
from tests.api.conftest import NOW, ApiServer
from tests.deliverables.helpers import run_resources
from tests.fakes.slack_web import SlackWebApi
from tests.fakes.smtp import SmtpServer
from tests.signals.test_signals_offline import H, seed
from yarn_assets.core.activity_log import read_events
from yarn_assets.ingest.sync import connections
from yarn_assets.memory import user_context
from yarn_assets.memory.assets import day_key

ALICE_BOT = "xoxb-alice-northwind"


@pytest.fixture
def channels(api_env: None, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    with SmtpServer() as smtp, SlackWebApi("xoxb-operator", ALICE_BOT) as slack:
        monkeypatch.setenv("YARNNN_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("YARNNN_SMTP_PORT", str(smtp.port))
        monkeypatch.setenv("YARNNN_SLACK_BASE_URL", slack.base_url)
        yield smtp, slack


def test_signal_deliverable_reaches_inbox_and_dm_is_edited_and_taught(channels, _clock_at_now, tmp_path) -> None:
    from resources.registry import build_resources
    from resources.settings import load_settings
    from yarn_assets.api.app import create_app
    from yarn_assets.deliverables.run import run_deliverable
    from yarn_assets.memory.assets import activity_patterns
    from yarn_assets.signals.assets import hour_key, signal_passes

    smtp, slack = channels
    settings = load_settings()
    url, store = settings.resolved_control_plane_url, None
    from io_managers.delta_store import DeltaStore

    store = DeltaStore(settings.resolved_warehouse_root)
    seed(store, url)
    with db.session_scope(url) as s:  # alice connects Slack (the function the OAuth callback stores through)
        connections.add(s, TokenCipher(os.environ["YARNNN_ENCRYPTION_KEY"]), user_id="alice", platform="slack",
                        credentials={"bot_token": ALICE_BOT, "slack_user_id": "U0ALICE"}, account_label="Northwind")

    resources = build_resources(settings)
    assert dg.materialize([signal_passes], partition_key=hour_key(H), resources=resources).success
    with db.session_scope(url) as s:
        prep = s.scalars(select(Deliverable).where(Deliverable.deliverable_type == "meeting_prep")).one()
        assert (prep.origin, prep.destination) == ("signal_emergent", {})  # no destination configured
        request = s.scalars(select(DeliverableRunRequest).where(DeliverableRunRequest.deliverable_id == prep.id)).one()
        prep_id = prep.id
    # the run the requests sensor launches for that request
    out = run_deliverable(run_resources(), deliverable_id=prep_id, run_id="run-prep", trigger="signal")
    assert out.status == "delivered", out.reason
    assert [m.rcpt_tos for m in smtp.inbox] == [["alice@northwind.example"]]
    assert [(m.channel, m.token) for m in slack.messages] == [("U0ALICE", f"Bearer {ALICE_BOT}")]
    assert "Upcoming meetings" in smtp.inbox[0].text() and "*Upcoming meetings*" in slack.messages[0].text
    with db.session_scope(url) as s:
        assert s.get(DeliverableRunRequest, request.id).status == "completed"

    with ApiServer(create_app(settings, instance=dg.DagsterInstance.ephemeral())) as server, \
            server.client("alice") as c:
        [version] = c.get(f"/deliverables/{prep_id}/versions").json()["versions"]
        text = c.get(f"/versions/{version['id']}").json()["final_content"]
        shorter = "\n".join(text.splitlines()[: max(2, len(text.splitlines()) // 3)])
        assert len(shorter) < 0.7 * len(text)
        edit = c.post(f"/versions/{version['id']}/edit", json={"content": shorter})
        assert edit.status_code == 200 and edit.json()["diff"].count("\n-") >= 1

    _clock_at_now.move_to(NOW + dt.timedelta(days=1, hours=-11))  # the next night
    assert dg.materialize([activity_patterns], partition_key=day_key(NOW.date().isoformat()),
                          resources={k: resources[k] for k in ("warehouse", "control_plane")}).success
    with db.session_scope(url) as s:
        memory = {r.key: (r.value, r.source) for r in user_context.current(s, "alice")}
    assert memory["preference:length"] == ("Shortens drafts: prefers shorter deliverables.", "feedback")
    learned = read_events(store, user_ids=["alice"], event_types=["memory_written"])
    assert "preference:length" in " ".join(learned["metadata"].to_list())
