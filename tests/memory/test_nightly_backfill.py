"""Acceptance: a week of sample chats backfilled night by night (offline LLM), then one night re-run.

* re-running a night changes nothing (Delta tables, events, user_context and its history);
* alice's explicitly stated role survives a later conversational contradiction, which is in history;
* the junk filter's decisions on the sample data are the documented ones;
* working memory shows a user only their own memory.
"""

import datetime as dt

import polars as pl
import pytest

from control_plane.models import UserContext, UserContextHistory
from demo.sample_chats import generate_chats
from resources.settings import load_settings
from tests.memory.conftest import NOW, register_chat
from yarn_assets.core.activity_log import read_events
from yarn_assets.definitions import build_definitions
from yarn_assets.memory import user_context
from yarn_assets.memory.assets import day_key
from yarn_assets.memory.tables import (
    ACTIVITY_PATTERNS,
    CHAT_MESSAGES,
    CHAT_SESSIONS,
    FACT_CANDIDATES,
    SESSION_SUMMARIES,
)
from yarn_assets.memory.working_memory import render_working_memory

DAYS = [(NOW.date() - dt.timedelta(days=n)).isoformat() for n in range(7, 0, -1)]
TABLES = (CHAT_SESSIONS, CHAT_MESSAGES, FACT_CANDIDATES, SESSION_SUMMARIES, ACTIVITY_PATTERNS)


def _snapshot(store, cp) -> dict:  # type: ignore[no-untyped-def]
    snap = {spec.name: store.read(spec).drop("run_id", strict=False).sort(store.read(spec).columns[:3])
            for spec in TABLES}
    snap["events"] = read_events(store).drop("run_id").sort("event_id")
    with cp.session() as s:
        snap["user_context"] = sorted((r.user_id, r.key, r.value, r.source, r.confidence, r.assertion_id,
                                       r.updated_at) for r in s.query(UserContext))
        snap["history"] = sorted((h.id, h.status, h.valid_from, h.valid_to, h.recorded_at, h.expired_at)
                                 for h in s.query(UserContextHistory))
    return snap


@pytest.fixture(scope="module")
def week(tmp_path_factory):  # type: ignore[no-untyped-def]
    """The sample week imported and backfilled once for the module (it is the expensive part)."""
    home = tmp_path_factory.mktemp("week_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("YARNNN_HOME", str(home))
    for name in ("ANTHROPIC_API_KEY", "YARNNN_LLM_MODE"):
        mp.delenv(name, raising=False)
    settings = load_settings()
    from control_plane import db
    from control_plane.models import User
    from resources.control_plane import ControlPlane
    from resources.registry import build_resources

    db.upgrade(settings.resolved_control_plane_url)
    with db.session_scope(settings.resolved_control_plane_url) as s:
        s.add_all([User(id="alice", email="alice@northwind.example", timezone="Europe/Paris",
                        created_at=NOW - dt.timedelta(days=60)),
                   User(id="bob", email="bob@contoso.example", timezone="America/New_York",
                        created_at=NOW - dt.timedelta(days=60))])
    paths = generate_chats(home / "workspace", NOW, {"alice": "Europe/Paris", "bob": "America/New_York"})
    for user_id, path in paths.items():
        register_chat(settings, user_id, path, NOW.date().isoformat())
    defs = build_definitions(settings)
    assert defs.resolve_job_def("chat_ingest_job").execute_in_process(partition_key=NOW.date().isoformat()).success
    nightly = defs.resolve_job_def("memory_nightly_job")
    results = {day: nightly.execute_in_process(partition_key=day_key(day)) for day in DAYS}
    assert all(r.success for r in results.values())
    store = build_resources(settings)["warehouse"].store
    cp = ControlPlane(url=settings.resolved_control_plane_url)
    yield {"settings": settings, "defs": defs, "store": store, "cp": cp, "results": results}
    mp.undo()
    db.dispose_all()


def test_rerunning_a_night_changes_nothing(week) -> None:  # type: ignore[no-untyped-def]
    store, cp = week["store"], week["cp"]
    before = _snapshot(store, cp)
    again = week["defs"].resolve_job_def("memory_nightly_job").execute_in_process(partition_key=day_key(DAYS[3]))
    assert again.success
    after = _snapshot(store, cp)
    assert before.keys() == after.keys()
    for name in before:
        if isinstance(before[name], pl.DataFrame):
            assert before[name].equals(after[name]), name
        else:
            assert before[name] == after[name], name
    meta = again.asset_materializations_for_node("gold__memory_facts")[0].metadata
    assert meta["events_written"].value == 0


def test_user_stated_fact_survives_a_later_contradiction(week) -> None:  # type: ignore[no-untyped-def]
    with week["cp"].session() as s:
        current = {r.key: r for r in user_context.current(s, "alice")}
        role = current["fact:role"]
        assert (role.value, role.source, role.confidence) == ("Head of Operations at Northwind Traders",
                                                             "user_stated", 1.0)
        hist = user_context.history(s, "alice", "fact:role")
        assert [(h.value, h.source, h.status) for h in hist] == [
            ("Head of Operations at Northwind Traders", "user_stated", "current"),
            ("basically project manager for the WMS rollout these days", "conversation", "outranked"),
        ]
        contradiction = hist[1]
        assert contradiction.valid_from.date().isoformat() == DAYS[3]  # said three nights later
        assert "user_stated" in contradiction.reason


def test_junk_filter_on_the_sample_week(week) -> None:  # type: ignore[no-untyped-def]
    facts = week["store"].read(FACT_CANDIDATES)
    decisions = dict(facts.group_by("decision").len().iter_rows())
    reasons = dict(facts.filter(pl.col("decision") == "rejected").group_by("reason").len().iter_rows())
    assert decisions == {"kept": 12, "outranked": 1, "rejected": 4}
    assert reasons == {"system_prompt": 1, "transient": 1, "duplicate": 1, "near_duplicate": 1}
    assert set(facts["extractor"]) == {"offline-rules"} and facts["offline"].all()
    rejected = {r["value"]: r["reason"] for r in facts.filter(pl.col("decision") == "rejected").iter_rows(named=True)}
    assert rejected["Always answer like a helpful assistant would."] == "system_prompt"
    assert rejected["Prefers to keep today's standup short."] == "transient"
    # sessions with fewer than 3 user messages were not read at all
    short = week["store"].read(CHAT_SESSIONS).filter(pl.col("user_message_count") < 3)["session_id"].to_list()
    assert short and not set(short) & set(facts["session_id"])


def test_summaries_only_for_long_sessions(week) -> None:  # type: ignore[no-untyped-def]
    sessions = week["store"].read(CHAT_SESSIONS)
    summaries = week["store"].read(SESSION_SUMMARIES)
    long = set(sessions.filter(pl.col("user_message_count") >= 5)["session_id"])
    assert set(summaries["session_id"]) == long and len(long) == 4
    for row in summaries.iter_rows(named=True):
        assert row["summary"].startswith(f"[{row['session_day']}] The user ")
    events = read_events(week["store"], event_types=["session_summary_written"])
    assert sorted(events["event_ref"]) == sorted(long)


def test_working_memory_is_per_user(week) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime.combine(NOW.date(), dt.time(6), tzinfo=dt.UTC)
    with week["cp"].session() as s:
        alice = render_working_memory(week["store"], s, "alice", now)
        bob = render_working_memory(week["store"], s, "bob", now)
    assert "- role: Head of Operations at Northwind Traders" in alice
    assert "Contoso" not in alice and "Fabrikam" not in alice
    assert "Northwind" not in bob and "- company: Contoso" in bob
    assert alice.index("## About you") < alice.index("## Your preferences") < alice.index("## What you've told me")
    assert "## Recent conversations" in alice and "## Recent activity (last 7 days)" in alice
    activity = alice.split("## Recent activity (last 7 days)\n", 1)[1].splitlines()
    assert len(activity) == 10 and "pattern_detected" not in alice  # nothing found: not worth a line
