"""Pure parts of signal processing: extraction windows and limits, screening, dedup windows, rules."""

import datetime as dt
import json
import uuid

import polars as pl
import pytest

from tests.signals.seed import email, event, slack
from yarn_assets.ingest.normalize import items_frame
from yarn_assets.ingest.silver import silver_rows
from yarn_assets.signals.actions import HistoryEntry, deliverable_id_for, screen
from yarn_assets.signals.context import DeliverableView, UserProfile, is_noise
from yarn_assets.signals.extraction import COLUMNS, extract
from yarn_assets.signals.prompt import SignalAction, SignalDecision
from yarn_assets.signals.rules import offline_decision, quiet_threads, upcoming_meetings

AS_OF = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
ME = UserProfile(id="u", email="me@corp.example", name="Me", tier="pro", timezone="UTC", status="active",
                 addresses=frozenset({"me@corp.example"}))


def rows(platform, items, fetched_at, user="u"):  # type: ignore[no-untyped-def]
    for i, it in enumerate(items):
        it.seq = i
        it.source_created_at = it.source_created_at or it.occurred_at
    meta = {"user_id": user, "platform": platform, "source_kind": "import", "connection_id": None,
            "batch_id": "b", "ingest_date": fetched_at.date(), "fetched_at": fetched_at}
    return silver_rows(items_frame(items), meta).select(COLUMNS)


def test_windows_limits_and_order() -> None:
    frames = [
        rows("calendar", [event(f"e{i:02d}", f"E{i}", AS_OF + dt.timedelta(hours=i - 5), ["me@corp.example"])
                          for i in range(60)], AS_OF - dt.timedelta(hours=1)),
        rows("gmail", [email(f"m{i}", f"t{i}", f"S{i}", "a@x.example", ["me@corp.example"],
                             AS_OF - dt.timedelta(hours=i)) for i in range(40)], AS_OF - dt.timedelta(days=1)),
        rows("gmail", [email("old", "t-old", "Old", "a@x.example", ["me@corp.example"], AS_OF - dt.timedelta(days=9))],
             AS_OF - dt.timedelta(days=8)),
        rows("gmail", [email("future", "t-f", "Later", "a@x.example", ["me@corp.example"], AS_OF)],
             AS_OF + dt.timedelta(minutes=5)),
        rows("slack", [slack(f"{i}.1", "C1", f"msg {i}", "Kim", AS_OF - dt.timedelta(minutes=i)) for i in range(120)],
             AS_OF - dt.timedelta(hours=3)),
        rows("slack", [slack("old.1", "C1", "old", "Kim", AS_OF - dt.timedelta(days=3))], AS_OF - dt.timedelta(days=3)),
    ]
    data = pl.concat(frames, how="vertical_relaxed")
    cal = extract(data, user_id="u", pass_name="calendar_only", as_of=AS_OF)
    assert cal.platforms_queried == ["calendar"] and cal.count("calendar") == 50
    starts = cal.platforms["calendar"].items["occurred_at"].to_list()
    assert starts == sorted(starts) and starts[0] == AS_OF - dt.timedelta(hours=5)  # ascending, past first
    assert "(4 past events not shown)" in cal.content_summary
    assert "... and 36 more" in cal.content_summary  # e04 ends at as_of: still on
    rest = extract(data, user_id="u", pass_name="non_calendar", as_of=AS_OF)
    assert (rest.count("gmail"), rest.count("slack"), rest.count("notion")) == (30, 100, 0)
    gmail = rest.platforms["gmail"].items
    assert "old" not in gmail["external_id"].to_list() and "future" not in gmail["external_id"].to_list()
    assert gmail["occurred_at"].to_list() == sorted(gmail["occurred_at"].to_list(), reverse=True)
    assert "old.1" not in rest.platforms["slack"].items["external_id"].to_list()
    assert rest.platforms["gmail"].items["ref"][0] == "thread:t0"
    assert rest.platforms["slack"].items["ref"][0] == "slack:C1:0.1"
    # selected sources: bare label ids match the stored label: prefix
    only_inbox = extract(data, user_id="u", pass_name="non_calendar", as_of=AS_OF,
                         selected_sources={"gmail": {"INBOX"}, "slack": {"C2"}})
    assert (only_inbox.count("gmail"), only_inbox.count("slack")) == (30, 0)
    with pytest.raises(ValueError, match="another user's rows"):
        extract(data.with_columns(pl.lit("v").alias("user_id")), user_id="u", pass_name="non_calendar", as_of=AS_OF)


def test_expired_rows_are_excluded_unless_retained() -> None:
    cal = rows("calendar", [event("e1", "E1", AS_OF + dt.timedelta(hours=2), []),
                            event("e2", "E2", AS_OF + dt.timedelta(hours=3), [])], AS_OF - dt.timedelta(days=3))
    cal = cal.with_columns(pl.Series("retained", [False, True]),
                           pl.when(pl.Series([False, True])).then(None).otherwise(pl.col("expires_at"))
                           .alias("expires_at"))
    assert extract(cal, user_id="u", pass_name="calendar_only", as_of=AS_OF).platforms["calendar"].items[
        "external_id"].to_list() == ["e2"]


def _decision(*actions: dict) -> SignalDecision:
    return SignalDecision.model_validate({"actions": list(actions)})


def _view(did: str, dtype: str, origin: str = "user_configured", status: str = "active") -> DeliverableView:
    return DeliverableView(id=did, title="t", deliverable_type=dtype, status=status, origin=origin,
                           trigger_type="schedule")


@pytest.mark.parametrize(("signal_type", "hours_ago", "dropped"), [
    ("meeting_prep", 23, True), ("meeting_prep", 25, False),
    ("silence_alert", 167, True), ("silence_alert", 169, False),
    ("contact_drift", 335, True), ("contact_drift", 337, False),
    ("something_else", 23, True), ("something_else", 25, False),
])
def test_history_windows_per_signal_type(signal_type: str, hours_ago: int, dropped: bool) -> None:
    ref = "event:e1"
    history = {(signal_type, ref): HistoryEntry(AS_OF - dt.timedelta(hours=hours_ago), "other")}
    out = screen(_decision({"action_type": "create_signal_emergent", "deliverable_type": "custom",
                            "signal_type": signal_type, "signal_ref": ref, "confidence": 0.9}),
                 user_id="u", refs={ref}, resources={}, deliverables=[], history=history, as_of=AS_OF,
                 partition_hour=AS_OF - dt.timedelta(hours=1), pass_name="calendar_only")
    assert (out[0].disposition == "dropped") is dropped
    if dropped:
        assert out[0].reason.startswith("history_dedup")


def test_screening_rules_and_order() -> None:
    mine, paused, foreign = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    hour = AS_OF - dt.timedelta(hours=1)
    replay_ref = "thread:t9"
    history = {("silence_alert", replay_ref): HistoryEntry(AS_OF, deliverable_id_for("u", "silence_alert",
                                                                                        replay_ref, hour))}
    out = screen(
        _decision(
            {"action_type": "no_action"},
            {"action_type": "create_signal_emergent", "deliverable_type": "weird_type", "signal_ref": "event:a",
             "confidence": 0.9},
            {"action_type": "create_signal_emergent", "deliverable_type": "meeting_prep", "signal_ref": "event:a",
             "confidence": 0.59},
            {"action_type": "create_signal_emergent", "deliverable_type": "status_report", "signal_ref": "event:a",
             "confidence": 0.9},
            {"action_type": "create_signal_emergent", "deliverable_type": "meeting_prep", "signal_ref": "event:b",
             "confidence": 0.6},
            {"action_type": "create_signal_emergent", "deliverable_type": "meeting_prep", "signal_ref": "event:c",
             "confidence": 0.9},
            {"action_type": "create_signal_emergent", "deliverable_type": "meeting_prep", "confidence": 0.9},
            {"action_type": "trigger_existing", "trigger_deliverable_id": mine, "confidence": 0.8},
            {"action_type": "trigger_existing", "trigger_deliverable_id": paused, "confidence": 0.8},
            {"action_type": "trigger_existing", "trigger_deliverable_id": foreign, "confidence": 0.8},
            {"action_type": "create_signal_emergent", "deliverable_type": "custom", "signal_type": "silence_alert",
             "signal_ref": replay_ref, "confidence": 0.7},
        ),
        user_id="u", refs={"event:a", "event:b", "event:c", replay_ref}, resources={},
        deliverables=[_view(mine, "slack_channel_digest"), _view(paused, "status_report", status="paused"),
                      _view(str(uuid.uuid4()), "meeting_prep", origin="signal_emergent")],
        history=history, as_of=AS_OF, partition_hour=hour, pass_name="non_calendar",
    )
    expected = [
        ("recorded", "no_action"),
        ("kept", "unknown type 'weird_type' -> custom"),  # kept as custom (the catch-all)
        ("dropped", "low_confidence"),
        ("dropped", "type_exists"),  # the user configured a status_report (paused still counts)
        ("kept", ""),  # a signal-emergent meeting_prep exists: it does not block a new one
        ("dropped", "duplicate_in_pass"),
        ("dropped", "unknown_ref"),
        ("kept", ""),
        ("dropped", "unknown_deliverable"),  # paused
        ("dropped", "unknown_deliverable"),  # not the user's
        ("dropped", "duplicate_in_pass"),  # a replay still counts toward the per-pass cap (custom seen)
    ]
    assert len(out) == len(expected)
    for p, (disposition, prefix) in zip(out, expected, strict=True):
        assert p.disposition == disposition and p.reason.startswith(prefix), (p.seq, p.disposition, p.reason)
    assert out[1].action.deliverable_type == "custom"


def test_rules_find_meetings_and_quiet_threads() -> None:
    data = pl.concat([
        rows("calendar", [
            event("ext", "Client", AS_OF + dt.timedelta(hours=3), ["me@corp.example", "a@c.example", "b@c.example"]),
            event("cancel", "Cancelled", AS_OF + dt.timedelta(hours=4), ["a@c.example", "b@c.example"],
                  status="cancelled"),
            event("rooms", "Rooms", AS_OF + dt.timedelta(hours=5),
                  ["a@c.example", "r1@resource.calendar.google.com"]),
            event("colleagues", "Team", AS_OF + dt.timedelta(hours=6), ["x@corp.example", "y@corp.example"]),
            event("far", "Far", AS_OF + dt.timedelta(hours=25), ["a@c.example", "b@c.example"]),
        ], AS_OF - dt.timedelta(hours=1)),
        rows("gmail", [
            email("q1", "quiet", "Quiet", "a@c.example", ["me@corp.example"], AS_OF - dt.timedelta(days=4)),
            email("r1", "replied", "Replied", "a@c.example", ["me@corp.example"], AS_OF - dt.timedelta(days=5)),
            email("r2", "replied", "Re: Replied", "me@corp.example", ["a@c.example"], AS_OF - dt.timedelta(days=4)),
            email("bot", "bot", "Receipt", "no-reply@shop.example", ["me@corp.example"], AS_OF - dt.timedelta(days=5)),
            email("list", "list", "Newsletter", "news@c.example", ["all@c.example"], AS_OF - dt.timedelta(days=5)),
            email("new", "new", "New", "a@c.example", ["me@corp.example"], AS_OF - dt.timedelta(days=2)),
        ], AS_OF - dt.timedelta(hours=1)),
    ], how="vertical_relaxed")
    cal = extract(data, user_id="u", pass_name="calendar_only", as_of=AS_OF)
    assert [m.event_id for m in upcoming_meetings(cal, ME)] == ["ext"]
    rest = extract(data, user_id="u", pass_name="non_calendar", as_of=AS_OF)
    assert [t.thread_id for t in quiet_threads(rest, ME, 3)] == ["quiet"]
    assert [t.thread_id for t in quiet_threads(rest, ME, 5)] == []
    decision = offline_decision(rest, profile=ME, deliverables=[], followup_days=3)
    (action,) = decision.actions
    assert (action.signal_type, action.signal_ref, action.deliverable_type) == ("silence_alert", "thread:quiet",
                                                                                "custom")
    empty = offline_decision(extract(data.head(0), user_id="u", pass_name="non_calendar", as_of=AS_OF),
                             profile=ME, deliverables=[], followup_days=3)
    assert [a.action_type for a in empty.actions] == ["no_action"]


def test_noise_events_are_kept_out_of_prompts() -> None:
    assert is_noise("content_cleanup", None) and is_noise("run_failed", "{}")
    assert is_noise("signal_processed", json.dumps({"actions_taken": 0}))
    assert not is_noise("signal_processed", json.dumps({"actions_taken": 2}))
    assert not is_noise("deliverable_run", None)


def test_signal_action_schema_is_tool_friendly() -> None:
    schema = SignalDecision.model_json_schema()
    action = schema["$defs"]["SignalAction"]["properties"]
    assert action["action_type"]["enum"] == ["create_signal_emergent", "trigger_existing", "no_action"]
    assert action["confidence"]["maximum"] == 1.0
    with pytest.raises(ValueError):
        SignalAction.model_validate({"action_type": "delete_everything"})


def test_only_an_all_transient_failure_asks_for_a_retry() -> None:
    from yarn_assets.signals.processing import HourResult, PassResult

    def p(status: str, transient: bool = False, skip: str | None = None) -> PassResult:
        return PassResult("u", "calendar_only", status, {}, skip_reason=skip, transient=transient)

    assert HourResult([p("failed", True), p("failed", True), p("skipped", skip="too_few_items")]).should_retry
    assert not HourResult([p("failed", True), p("evaluated")]).should_retry
    assert not HourResult([p("failed", True), p("failed", False)]).should_retry
    assert not HourResult([p("skipped", skip="wake_gate")]).should_retry
