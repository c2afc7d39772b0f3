"""Conversation analysis: stages and thresholds, paused analyst_suggested deliverables, no duplicates, once."""

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from control_plane.models import Deliverable, NotificationLog, User
from resources.registry import build_resources
from tests.memory.conftest import chat_line, register_chat, write_jsonl
from yarn_assets.core.activity_log import read_events
from yarn_assets.ingest.platforms.chat.assets import bronze_imported_chats, silver_chat
from yarn_assets.memory import analysis
from yarn_assets.memory.assets import deliverable_suggestions
from yarn_assets.memory.tables import DELIVERABLE_SUGGESTIONS

DAY = "2026-11-20"


@pytest.mark.parametrize(("age", "sessions", "deliverables", "stage", "threshold"), [
    (6.9, 20, 0, "onboarding", None),
    (30, 2, 9, "onboarding", None),
    (7, 3, 0, "exploring", 0.70),
    (30, 9, 0, "exploring", 0.70),
    (30, 10, 0, "active", 0.50),
    (30, 3, 1, "active", 0.50),
    (30, 3, 4, "active", 0.50),
    (30, 3, 5, "power_user", 0.50),
])
def test_stages(age, sessions, deliverables, stage, threshold) -> None:  # type: ignore[no-untyped-def]
    got = analysis.stage_for(age, sessions, deliverables)
    assert (got.stage, got.threshold) == (stage, threshold)


def _chats(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """alice: 4 sessions mentioning Slack (and 1 her inbox) over the week; bob: 2 sessions (onboarding)."""
    lines = []
    for d in range(4):
        at = dt.datetime(2026, 11, 17 + d, 9, tzinfo=dt.UTC)
        sid = f"a{d}"
        lines += [chat_line(sid, 0, "user", "What happened in the #ops-leads slack channel?", at),
                  chat_line(sid, 1, "assistant", "Here is a summary of your inbox and calendar.", at)]
        if d == 0:
            lines.append(chat_line(sid, 2, "user", "And anything in my inbox?", at))
    register_chat(settings, "alice", write_jsonl(tmp_path / "a.jsonl", lines), DAY)
    bob = [chat_line(f"b{d}", 0, "user", "Summarise the slack channel", dt.datetime(2026, 11, 18 + d, 9,
                                                                                       tzinfo=dt.UTC))
           for d in range(2)]
    register_chat(settings, "bob", write_jsonl(tmp_path / "b.jsonl", bob), DAY)


def test_suggestions_become_paused_deliverables_once(settings, cp, store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _chats(settings, tmp_path)
    with cp.session() as s:  # alice already has an inbox brief: never suggested again
        s.add(Deliverable(id="mine", user_id="alice", title="Inbox", deliverable_type="gmail_inbox_brief",
                          sources=[{"type": "integration_import", "provider": "gmail"}]))
    res = build_resources(settings)
    assert dg.materialize([bronze_imported_chats, silver_chat], partition_key=DAY, resources=res).success
    result = dg.materialize([deliverable_suggestions], partition_key=DAY, resources=res)
    assert [(c.check_name, c.passed) for c in result.get_asset_check_evaluations()] == [
        ("no_duplicate_deliverables", True)]

    rows = store.read(DELIVERABLE_SUGGESTIONS).sort("deliverable_type")
    assert set(rows["user_id"]) == {"alice"}  # bob is onboarding: 2 sessions
    decided = {r["deliverable_type"]: (r["confidence"], r["decision"], r["stage"])
               for r in rows.iter_rows(named=True)}
    # alice has 1 deliverable -> "active" (threshold 0.50): slack in 4 sessions (0.95) kept,
    # gmail in 1 session (0.50) is a duplicate of her own inbox brief; the assistant's words don't count
    assert decided == {"slack_channel_digest": (0.95, "created", "active"),
                       "gmail_inbox_brief": (0.5, "duplicate", "active")}
    with cp.session() as s:
        created = s.query(Deliverable).filter_by(origin="analyst_suggested").one()
        assert (created.user_id, created.deliverable_type, created.status) == ("alice", "slack_channel_digest",
                                                                               "paused")
        assert created.sources == [{"type": "integration_import", "provider": "slack", "scope": "auto"}]
        assert created.destination == {"platform": "email", "target": "alice@northwind.example", "format": "send"}
        assert created.type_config["suggestion"]["analysis_day"] == DAY
        assert [(n.user_id, n.kind, n.status) for n in s.query(NotificationLog)] == [
            ("alice", "analysis_suggestions", "sent")]
    mails = list((settings.resolved_home / "outbox" / "mail" / "alice").glob("*.eml"))
    assert len(mails) == 1 and b"Slack channel digest" in mails[0].read_bytes()
    events = read_events(store, event_types=["conversation_analyzed"]).sort("user_id")
    assert events["user_id"].to_list() == ["alice", "bob"]
    assert '"stage": "active"' in events["metadata"][0] and '"stage": "onboarding"' in events["metadata"][1]

    # re-running the day: same rows, no second deliverable, no second email
    before = store.read(DELIVERABLE_SUGGESTIONS).sort("deliverable_type")
    dg.materialize([deliverable_suggestions], partition_key=DAY, resources=res)
    assert store.read(DELIVERABLE_SUGGESTIONS).sort("deliverable_type").equals(before)
    with cp.session() as s:
        assert s.query(Deliverable).filter_by(origin="analyst_suggested").count() == 1
    assert len(list((settings.resolved_home / "outbox" / "mail" / "alice").glob("*.eml"))) == 1

    # the next day the same need is a duplicate of the (still paused) suggestion
    next_day = "2026-11-21"
    dg.materialize([deliverable_suggestions], partition_key=next_day, resources=res)
    later = store.read(DELIVERABLE_SUGGESTIONS).filter(pl.col("analysis_day") == next_day)
    assert dict(zip(later["deliverable_type"], later["decision"], strict=True))["slack_channel_digest"] == "duplicate"


def test_exploring_users_need_more_confidence(settings, cp, store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _chats(settings, tmp_path)
    res = build_resources(settings)
    assert dg.materialize([bronze_imported_chats, silver_chat], partition_key=DAY, resources=res).success
    dg.materialize([deliverable_suggestions], partition_key=DAY, resources=res)
    rows = store.read(DELIVERABLE_SUGGESTIONS)
    decided = dict(zip(rows["deliverable_type"], rows["decision"], strict=True))
    # no deliverables and 4 sessions -> exploring (0.70): slack (0.95) kept, gmail (0.50) below threshold
    assert decided == {"slack_channel_digest": "created", "gmail_inbox_brief": "below_threshold"}
    assert set(rows["stage"]) == {"exploring"}
    with cp.session() as s:
        assert s.get(User, "alice") is not None
        assert s.query(NotificationLog).count() == 1


def test_offline_rules_only_read_user_turns() -> None:
    result = analysis.offline_analysis([("2026-11-20", ["Please prep me for my meetings", "research competitors"]),
                                        ("2026-11-19", ["What's on my calendar"])])
    got = {s.deliverable_type: s.confidence for s in result.suggestions}
    assert got == {"meeting_prep": 0.5, "weekly_calendar_preview": 0.5, "research_brief": 0.5}
