"""Activity pattern rules at their edges, edit feedback, and the patterns asset's per-user events."""

import datetime as dt
import json

import dagster as dg
import polars as pl
import pytest

from resources.registry import build_resources
from yarn_assets.core.activity_log import ACTIVITY_LOG, ActivityEvent, read_events, write_events
from yarn_assets.memory import patterns, user_context
from yarn_assets.memory.assets import activity_patterns, day_key
from yarn_assets.memory.tables import ACTIVITY_PATTERNS

MONDAY = dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)  # a Monday
BASE = MONDAY - dt.timedelta(days=21)


def _events(rows: list[tuple[str, dt.datetime, dict]], user: str = "alice") -> pl.DataFrame:
    return pl.DataFrame(
        [{"event_id": f"e{i}", "user_id": user, "event_type": t, "event_ref": None, "summary": m.pop("summary", t),
          "metadata": json.dumps(m), "created_at": at, "event_date": at.date(), "run_id": None}
         for i, (t, at, m) in enumerate(rows)],
        schema=dict(ACTIVITY_LOG.schema),
    )


def runs(days: list[int], hour: int = 9, dtype: str = "slack_channel_digest", types: list[str] | None = None):  # type: ignore[no-untyped-def]
    """deliverable_run events on MONDAY + d days at ``hour`` UTC."""
    out = []
    for i, d in enumerate(days):
        at = MONDAY.replace(hour=hour) + dt.timedelta(days=d, minutes=i)
        out.append(("deliverable_run", at, {"deliverable_type": (types or [dtype] * len(days))[i]}))
    return out


def keys(found: patterns.UserPatterns) -> dict[str, str]:
    return {d.key: d.value for d in found.detected}


# --------------------------------------------------------------------------- rule 1: day of week
@pytest.mark.parametrize(("days", "fires"), [
    ([0, 7, 1, 2], False),  # 2 of 4 Mondays = exactly 50 %: does not fire
    ([0, 7, 14, 1, 2], True),  # 3 of 5 = 60 % and >= 3 runs: fires
    ([0, 7], False),  # 100 % but only 2 runs
    ([0, 7, 14], True),  # 3 of 3
    ([0, 7, 14, 1, 2, 3], False),  # 3 of 6 = 50 %
])
def test_day_of_week_threshold(days, fires) -> None:  # type: ignore[no-untyped-def]
    found = patterns.detect("alice", _events(runs(days)), "UTC")
    assert ("pattern:deliverable_day" in keys(found)) is fires
    if fires:
        assert keys(found)["pattern:deliverable_day"] == "Usually runs deliverables on Mondays."


def test_day_of_week_uses_the_users_timezone() -> None:
    late_sunday_utc = [("deliverable_run", MONDAY.replace(hour=23) + dt.timedelta(days=d - 1), {})
                       for d in (0, 7, 14)]  # Sundays 23:00 UTC = Mondays 00:00 in Paris
    assert keys(patterns.detect("alice", _events(late_sunday_utc), "UTC"))["pattern:deliverable_day"].endswith(
        "Sundays.")
    assert keys(patterns.detect("alice", _events(late_sunday_utc), "Europe/Paris"))[
        "pattern:deliverable_day"].endswith("Mondays.")


# --------------------------------------------------------------------------- rule 2: time of day
@pytest.mark.parametrize(("hours", "fires"), [
    ([8, 9, 10, 20], False),  # only 4 runs (needs >= 5)
    ([8, 9, 14, 15, 20, 21], False),  # no block over 50 %
    ([8, 9, 10, 14, 15, 20], False),  # 3 of 6 mornings = exactly 50 %
    ([8, 9, 10, 14, 15], True),  # 3 of 5 = 60 %
])
def test_time_of_day_threshold(hours, fires) -> None:  # type: ignore[no-untyped-def]
    rows = [("deliverable_run", MONDAY.replace(hour=h) + dt.timedelta(days=i), {}) for i, h in enumerate(hours)]
    found = patterns.detect("alice", _events(rows), "UTC")
    assert ("pattern:deliverable_time" in keys(found)) is fires
    if fires:
        assert keys(found)["pattern:deliverable_time"] == "Usually runs deliverables in the morning."


# --------------------------------------------------------------------------- rule 3: type preference
@pytest.mark.parametrize(("types", "fires"), [
    (["a", "a", "a", "b", "b"], False),  # 60 % exactly: needs > 60 %
    (["a", "a", "a", "a", "b"], True),  # 80 %
    (["a", "a", "a", "a"], False),  # only 4 runs
])
def test_type_preference_threshold(types, fires) -> None:  # type: ignore[no-untyped-def]
    found = patterns.detect("alice", _events(runs(list(range(len(types))), types=types)), "UTC")
    assert ("pattern:deliverable_type_preference" in keys(found)) is fires


# --------------------------------------------------------------------------- rules 4-5 and feedback
def _edit(day: int, draft: int, final: int, location: str | None = None, **meta) -> tuple:  # type: ignore[no-untyped-def]
    m = {"draft_length": draft, "final_length": final, **meta}
    if location:
        m["edit_location"] = location
    return ("deliverable_edited", MONDAY + dt.timedelta(days=day, hours=day), m)


def test_edit_location_and_formatting_length() -> None:
    rows = [_edit(0, 1000, 600, "intro"), _edit(1, 1000, 650, "intro"), _edit(2, 1000, 500, "intro"),
            _edit(3, 1000, 1000, "body")]
    found = keys(patterns.detect("alice", _events(rows), "UTC"))
    assert found["pattern:edit_location"] == "Usually edits the intro of deliverables."  # 3 of 4 = 75 % > 60 %
    assert found["pattern:formatting_length"] == "Usually shortens drafts when editing."
    two = keys(patterns.detect("alice", _events(rows[:2] + rows[3:]), "UTC"))
    assert "pattern:edit_location" not in two and "pattern:formatting_length" not in two  # only 2 the same way


def test_edit_location_from_summary_keywords_and_approvals_with_edits() -> None:
    rows = [("deliverable_approved", MONDAY + dt.timedelta(days=d), {"had_edits": True,
                                                                      "summary": "Rewrote the conclusion"})
            for d in range(3)]
    rows.append(("deliverable_approved", MONDAY + dt.timedelta(days=4), {"had_edits": False,
                                                                          "summary": "Approved the intro"}))
    found = patterns.detect("alice", _events(rows), "UTC")
    assert found.edits == 3
    assert keys(found)["pattern:edit_location"] == "Usually edits the conclusion of deliverables."


def test_edit_feedback_per_edit() -> None:
    draft = "Intro\n\nSome prose paragraph."
    final = draft + "\n- a\n- b\n- c\n- d\n"
    rows = [_edit(0, 1000, 500), _edit(1, 1000, 1400), _edit(2, 1000, 1000),
            ("deliverable_edited", MONDAY + dt.timedelta(days=3), {"draft_content": draft, "final_content": final})]
    fb = patterns.edit_feedback("alice", _events(rows))
    assert [(d.key, d.value.split(":")[0], d.confidence, d.source) for d in fb] == [
        ("preference:length", "Shortens drafts", 0.7, "feedback"),
        ("preference:length", "Expands drafts", 0.7, "feedback"),
        ("preference:length", "Expands drafts", 0.7, "feedback"),  # content grew > 1.3x too
        ("preference:format", "Adds bullet points", 0.7, "feedback"),
    ]


def test_only_the_newest_100_rows_are_read() -> None:
    old_mondays = runs([0, 7, 14])
    newer = [("deliverable_run", MONDAY + dt.timedelta(days=15, minutes=i), {}) for i in range(100)]  # a Tuesday
    found = patterns.detect("alice", _events(old_mondays + newer), "UTC")
    assert found.rows_read == 100 and found.runs == 100
    assert keys(found)["pattern:deliverable_day"].endswith("Tuesdays.")


# --------------------------------------------------------------------------- the asset
def test_patterns_asset_writes_each_users_own_counts_and_is_idempotent(settings, cp, store) -> None:  # type: ignore[no-untyped-def]
    def ev(user: str, i: int, at: dt.datetime, t: str = "deliverable_run", **meta) -> ActivityEvent:  # type: ignore[no-untyped-def]
        return ActivityEvent(user_id=user, event_type=t, summary=f"{t} {i}", idempotency_key=f"{user}{i}",
                             created_at=at, metadata=meta)

    alice = [ev("alice", i, BASE + dt.timedelta(days=7 * i), deliverable_type="slack_channel_digest")
             for i in range(4)]  # four Monday runs (Paris 10:00)
    alice.append(ev("alice", 9, BASE + dt.timedelta(days=21, hours=2), "deliverable_edited",
                    draft_length=1000, final_length=400, deliverable_id="d1"))
    bob = [ev("bob", i, BASE + dt.timedelta(days=10 + i, hours=5)) for i in range(2)]
    noise = [ActivityEvent(user_id="carol", event_type="content_cleanup", summary="cleanup",
                           idempotency_key="c1", created_at=BASE + dt.timedelta(days=20))]
    write_events(store, alice + bob + noise)
    day = (BASE + dt.timedelta(days=21)).date().isoformat()
    res = build_resources(settings)
    dg.materialize([activity_patterns], partition_key=day_key(day), resources=res)
    detected = read_events(store, event_types=["pattern_detected"])
    by_user = {r["user_id"]: json.loads(r["metadata"]) for r in detected.iter_rows(named=True)}
    assert set(by_user) == {"alice", "bob"}  # carol has only noise: not active
    assert by_user["alice"]["deliverable_runs"] == 4 and by_user["alice"]["edits"] == 1
    assert by_user["alice"]["patterns"] == ["pattern:deliverable_day"]
    assert by_user["alice"]["feedback"] == ["preference:length"]
    assert by_user["bob"] == {"rows_read": 2, "deliverable_runs": 2, "edits": 0, "patterns": [], "feedback": []}
    with cp.session() as s:
        mem = {r.key: (r.value, r.source, r.confidence) for r in user_context.current(s, "alice")}
        assert mem["pattern:deliverable_day"] == ("Usually runs deliverables on Mondays.", "pattern", 0.6)
        assert mem["preference:length"][1:] == ("feedback", 0.7)
        assert user_context.current(s, "bob") == []
    tables = (store.read(ACTIVITY_PATTERNS).sort("key"), read_events(store).sort("event_id"))
    with cp.session() as s:
        history = sorted((h.id, h.status) for h in user_context.history(s, "alice"))
    dg.materialize([activity_patterns], partition_key=day_key(day), resources=res)  # re-run the day
    assert store.read(ACTIVITY_PATTERNS).sort("key").equals(tables[0])
    assert read_events(store).sort("event_id").drop("run_id").equals(tables[1].drop("run_id"))
    with cp.session() as s:
        assert sorted((h.id, h.status) for h in user_context.history(s, "alice")) == history
