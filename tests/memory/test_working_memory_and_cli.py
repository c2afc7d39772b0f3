"""Working memory (what prompts get) and the ``yarnnn memory`` CLI."""

import datetime as dt

import polars as pl
from click.testing import CliRunner

from control_plane.models import UserContextHistory
from yarn_assets.cli import main
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.memory import user_context
from yarn_assets.memory.tables import SESSION_SUMMARIES
from yarn_assets.memory.working_memory import recent_events, render_working_memory

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def _event(user: str, kind: str, minutes_ago: int, n: int, **meta) -> ActivityEvent:  # type: ignore[no-untyped-def]
    return ActivityEvent(user_id=user, event_type=kind, summary=f"{kind} #{n}", idempotency_key=f"{kind}{n}",
                         created_at=NOW - dt.timedelta(minutes=minutes_ago), metadata=meta)


def test_noise_never_crowds_out_real_events(store) -> None:  # type: ignore[no-untyped-def]
    real = [_event("alice", "deliverable_run", 600 + i, i) for i in range(12)]
    noise = [_event("alice", k, i, i) for i in range(30) for k in ("content_cleanup", "run_failed")]
    empty = [_event("alice", "pattern_detected", 5, 1, patterns=[], feedback=[]),
             _event("alice", "conversation_analyzed", 6, 1, suggested=0)]
    found = [_event("alice", "pattern_detected", 7, 2, patterns=["pattern:deliverable_day"])]
    other = [_event("bob", "deliverable_run", 1, 99)]
    old = [_event("alice", "deliverable_run", 8 * 24 * 60, 100)]
    write_events(store, real + noise + empty + found + other + old)
    events = recent_events(store, "alice", NOW)
    assert events.height == 10
    assert events["summary"].to_list() == ["pattern_detected #2"] + [f"deliverable_run #{i}" for i in range(9)]


def test_rendering_order_limits_and_isolation(cp, store) -> None:  # type: ignore[no-untyped-def]
    with cp.session() as s:
        for i in range(25):
            user_context.upsert(s, user_context.Assertion(
                user_id="alice", key=f"fact:f{i:02d}", value=f"value {i}", source="conversation",
                confidence=round(0.5 + i / 100, 2), observed_at=NOW - dt.timedelta(days=1)))
        user_context.upsert(s, user_context.Assertion(user_id="alice", key="instruction:links", value="Always link.",
                                                      source="user_stated", confidence=1.0, observed_at=NOW))
        user_context.upsert(s, user_context.Assertion(user_id="bob", key="fact:company", value="Contoso",
                                                      source="conversation", confidence=0.99, observed_at=NOW))
    summaries = pl.DataFrame([
        {"user_id": "alice", "session_id": f"s{i}", "session_day": (NOW.date() - dt.timedelta(days=i)).isoformat(),
         "summary": f"[{(NOW.date() - dt.timedelta(days=i)).isoformat()}] " + "x" * 400,
         "user_message_count": 5, "last_message_at": NOW - dt.timedelta(days=i, hours=1), "model": "m",
         "offline": True} for i in range(5)
    ] + [{"user_id": "bob", "session_id": "b1", "session_day": NOW.date().isoformat(), "summary": "bob's chat",
          "user_message_count": 5, "last_message_at": NOW - dt.timedelta(hours=1), "model": "m", "offline": True}],
        schema=dict(SESSION_SUMMARIES.schema))
    store.merge(SESSION_SUMMARIES, summaries)
    with cp.session() as s:
        text = render_working_memory(store, s, "alice", NOW)
    lines = text.splitlines()
    facts = [line for line in lines if line.startswith("- f")]
    assert len(facts) == 19 and facts[0] == "- f24: value 24"  # 20 rows in all, highest confidence first
    assert "- links: Always link." in lines  # confidence 1.0 is among the 20
    assert "Contoso" not in text and "bob's chat" not in text
    recent = text.split("## Recent conversations\n", 1)[1].split("\n\n")[0].splitlines()
    assert len(recent) == 3 and all(len(line) == 2 + 300 for line in recent)
    assert recent[0].startswith(f"- [{NOW.date().isoformat()}]")


def test_cli_set_show_history_forget(settings, cp) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    with cp.session() as s:
        user_context.upsert(s, user_context.Assertion(user_id="alice", key="fact:role", value="PM",
                                                      source="conversation", confidence=0.9,
                                                      observed_at=NOW))
    out = runner.invoke(main, ["memory", "set", "--user", "alice", "--key", "fact:role", "--value", "Head of Ops"])
    assert out.exit_code == 0, out.output
    assert out.output.strip() == "replaced: fact:role = Head of Ops (user_stated)"
    shown = runner.invoke(main, ["memory", "show", "--user", "alice"]).output
    assert "Head of Ops" in shown and "user_stated" in shown and "PM" not in shown
    history = runner.invoke(main, ["memory", "history", "--user", "alice", "--key", "fact:role"]).output
    assert "superseded" in history and "current" in history
    bad = runner.invoke(main, ["memory", "set", "--user", "alice", "--key", "role", "--value", "x"])
    assert bad.exit_code != 0 and "must look like fact:x" in bad.output
    unknown = runner.invoke(main, ["memory", "set", "--user", "zed", "--key", "fact:x", "--value", "x"])
    assert unknown.exit_code != 0 and "unknown user 'zed'" in unknown.output
    assert runner.invoke(main, ["memory", "forget", "--user", "alice", "--key", "fact:role"]).exit_code == 0
    with cp.session() as s:
        assert user_context.current(s, "alice") == []
        assert sorted(h.status for h in s.query(UserContextHistory)) == ["retracted", "superseded"]
    working = runner.invoke(main, ["memory", "working", "--user", "alice"])
    assert working.exit_code == 0 and working.output.strip() == "(nothing yet)"
