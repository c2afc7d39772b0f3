"""Chat sessions into silver: JSONL imports (with rejects), chat-app tables, replays, the sensors."""

import datetime as dt
import json

import dagster as dg
import polars as pl

from control_plane import db
from control_plane.models import ChatSession, ImportJob, SessionMessage
from resources.registry import build_resources
from sensors.ingest import import_jobs_sensor
from sensors.memory import chat_imports_sensor
from tests.memory.conftest import chat_line, register_chat, write_jsonl
from yarn_assets.core.activity_log import read_events
from yarn_assets.core.tables import REJECTS
from yarn_assets.ingest.platforms.chat.assets import bronze_imported_chats, silver_chat
from yarn_assets.memory.assets import day_key
from yarn_assets.memory.tables import BRONZE_CHAT_ITEMS, CHAT_MESSAGES, CHAT_SESSIONS

DAY = "2026-11-20"
T = dt.datetime(2026, 11, 18, 9, 0, tzinfo=dt.UTC)


def _ingest(resources, day: str = DAY, replay: bool = False) -> dg.ExecuteInProcessResult:  # type: ignore[no-untyped-def]
    result = dg.materialize([bronze_imported_chats, silver_chat], partition_key=day, resources=resources,
                            tags={"yarnnn/replay": "full"} if replay else None)
    assert result.success
    return result


def _silver(store) -> tuple[pl.DataFrame, pl.DataFrame]:  # type: ignore[no-untyped-def]
    return (store.read(CHAT_SESSIONS).sort("session_id"),
            store.read(CHAT_MESSAGES).sort("session_id", "sequence"))


def test_jsonl_import_lands_with_rejects_and_replays_identically(settings, cp, store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines = [
        chat_line("s1", 0, "system", "You are yarnnn.", T, user_id="alice"),
        chat_line("s1", 1, "user", "My role is Head of Ops.", T + dt.timedelta(minutes=1), user_id="alice"),
        chat_line("s1", 2, "assistant", "Noted.", T + dt.timedelta(minutes=2)),
        chat_line("s1", 3, "user", "Thanks", T + dt.timedelta(minutes=3), metadata={"client": "web"}),
        chat_line("s2", 0, "user", "Late-night question", T.replace(hour=23, minute=59), session_type="quick_ask"),
        chat_line("s2", 1, "user", "(after midnight)", T.replace(hour=23, minute=59) + dt.timedelta(minutes=2)),
        "this is not json",
        "[1, 2, 3]",
        chat_line("s3", 0, "bot", "unknown role", T),
        {"session_id": "s3", "role": "user", "content": "naive time", "sequence": 1,
         "created_at": "2026-11-18T09:00:00"},
        chat_line("s4", 0, "user", "Bob's line in Alice's file", T, user_id="bob"),
        "",
    ]
    path = write_jsonl(tmp_path / "alice_chats.jsonl", lines)
    job_id = register_chat(settings, "alice", path, DAY)
    res = build_resources(settings)
    result = _ingest(res)
    sessions, messages = _silver(store)
    assert messages.height == 6 and set(messages["user_id"]) == {"alice"}
    assert messages.filter(pl.col("session_id") == "s1")["role"].to_list() == ["system", "user", "assistant", "user"]
    assert messages["created_at"].dtype == pl.Datetime("us", "UTC")
    assert json.loads(messages.filter(pl.col("sequence") == 3)["metadata"][0]) == {"client": "web"}
    s1, s2 = sessions.row(0, named=True), sessions.row(1, named=True)
    assert (s1["message_count"], s1["user_message_count"], s1["session_day"]) == (4, 2, "2026-11-18")
    assert (s2["session_type"], s2["session_day"], s2["message_count"]) == ("quick_ask", "2026-11-18", 2)
    assert s2["last_message_at"].date().isoformat() == "2026-11-19"  # a session never splits across days

    rejects = store.read(REJECTS).sort("location")
    reasons = dict(zip(rejects["location"], rejects["reason"], strict=True))
    assert set(rejects["stage"]) == {"bronze", "silver"} and set(rejects["platform"]) == {"chat"}
    assert "not JSON" in reasons["alice_chats.jsonl:7"]
    assert "not an object" in reasons["alice_chats.jsonl:8"]
    assert "role" in reasons["alice_chats.jsonl:9"]
    assert "created_at" in reasons["alice_chats.jsonl:10"] and "timezone" in reasons["alice_chats.jsonl:10"]
    assert "belongs to user 'bob'" in reasons["alice_chats.jsonl:11"]
    with db.session_scope(settings.resolved_control_plane_url) as s:
        job = s.get(ImportJob, job_id)
        assert job.status == "completed" and job.result["session_days"] == ["2026-11-18"]
        assert job.result["silver_merged_at"]
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"import_jobs_settled": True, "sessions_match_messages": True, "no_duplicate_turns": True}

    before = (*_silver(store), store.read(BRONZE_CHAT_ITEMS).sort("seq"), store.read(REJECTS).sort("location"),
              read_events(store).sort("event_id").drop("run_id"))
    _ingest(res, replay=True)  # a replay lands the archived file again
    after = (*_silver(store), store.read(BRONZE_CHAT_ITEMS).sort("seq"), store.read(REJECTS).sort("location"),
             read_events(store).sort("event_id").drop("run_id"))
    for a, b in zip(before, after, strict=True):
        assert a.drop("run_id", strict=False).equals(b.drop("run_id", strict=False))


def test_a_session_continued_in_a_later_import_keeps_its_day(settings, cp, store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = write_jsonl(tmp_path / "a.jsonl", [chat_line("s1", i, "user", f"m{i}", T + dt.timedelta(minutes=i))
                                               for i in range(2)])
    register_chat(settings, "alice", first, "2026-11-19")
    res = build_resources(settings)
    _ingest(res, "2026-11-19")
    later = write_jsonl(tmp_path / "b.jsonl", [
        chat_line("s1", 1, "user", "m1 edited", T + dt.timedelta(minutes=1)),
        chat_line("s1", 2, "user", "next day", T + dt.timedelta(days=1)),
    ])
    register_chat(settings, "alice", later, DAY)
    _ingest(res, DAY)
    sessions, messages = _silver(store)
    assert sessions.height == 1 and sessions["session_day"][0] == "2026-11-18"
    assert sessions["message_count"][0] == 3 and sessions["user_message_count"][0] == 3
    assert set(messages["session_day"]) == {"2026-11-18"}
    assert messages.filter(pl.col("sequence") == 1)["content"][0] == "m1 edited"  # the later version wins
    _ingest(res, "2026-11-19", replay=True)  # replaying the older import does not regress the edit
    assert _silver(store)[1].filter(pl.col("sequence") == 1)["content"][0] == "m1 edited"


def test_chat_app_sessions_land_in_the_same_silver_tables(settings, cp, store) -> None:  # type: ignore[no-untyped-def]
    day = dt.date(2026, 11, 20)
    start = dt.datetime(2026, 11, 20, 22, 0, tzinfo=dt.UTC)
    with cp.session() as s:
        s.add(ChatSession(id="app-1", user_id="bob", started_at=start, created_at=start,
                          updated_at=start + dt.timedelta(minutes=5)))
        s.add(ChatSession(id="app-old", user_id="bob", started_at=start - dt.timedelta(days=3),
                          created_at=start - dt.timedelta(days=3), updated_at=start - dt.timedelta(days=3)))
        s.flush()
        for i, role in enumerate(["user", "assistant", "user"]):
            s.add(SessionMessage(session_id="app-1", role=role, content=f"turn {i}", sequence_number=i,
                                 created_at=start + dt.timedelta(minutes=i), meta={"tokens": 10 * i}))
    res = build_resources(settings)
    _ingest(res, day.isoformat())
    sessions, messages = _silver(store)
    assert sessions["session_id"].to_list() == ["app-1"]  # only sessions started or updated that day
    assert set(messages["source_kind"]) == {"chat_app"} and messages.height == 3
    assert sessions.row(0, named=True)["status"] == "active"
    # the chat app continues the session after midnight: the next day's run picks the update up
    with cp.session() as s:
        s.add(SessionMessage(session_id="app-1", role="user", content="after midnight", sequence_number=3,
                             created_at=start + dt.timedelta(hours=2, minutes=30)))
        cs = s.get(ChatSession, "app-1")
        cs.status, cs.ended_at = "completed", start + dt.timedelta(hours=3)
        cs.updated_at = start + dt.timedelta(hours=3)
    _ingest(res, "2026-11-21")
    sessions, messages = _silver(store)
    row = sessions.row(0, named=True)
    assert (row["session_day"], row["message_count"], row["user_message_count"], row["status"]) == (
        "2026-11-20", 4, 3, "completed")
    assert row["ended_at"] == start + dt.timedelta(hours=3)


def test_sensors_route_chat_imports_and_then_their_session_days(settings, cp, tmp_path) -> None:  # type: ignore[no-untyped-def]
    today = dt.datetime.now(dt.UTC).date()
    yesterday = today - dt.timedelta(days=1)
    lines = [chat_line("s1", 0, "user", "old", dt.datetime.combine(yesterday - dt.timedelta(days=2), dt.time(9),
                                                                    tzinfo=dt.UTC)),
             chat_line("s2", 0, "user", "today", dt.datetime.combine(today, dt.time(0, 1), tzinfo=dt.UTC))]
    inbox = settings.resolved_inbox_dir / "alice"
    write_jsonl(inbox / "export.jsonl", lines)
    res = build_resources(settings)
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources={"control_plane": res["control_plane"],
                                                                    "runtime": res["runtime"],
                                                                    "input_limits": res["input_limits"]})
        ingest = import_jobs_sensor(ctx)  # registers the inbox file as chat_jsonl, launches nothing for it
        assert not ingest.run_requests
        with db.session_scope(settings.resolved_control_plane_url) as s:
            job = s.query(ImportJob).one()
            assert (job.provider, job.platform, job.partition_date) == ("chat_jsonl", "chat", today.isoformat())
        ctx = dg.build_sensor_context(instance=instance, resources={"control_plane": res["control_plane"]})
        first = chat_imports_sensor(ctx)
        assert [(r.job_name, r.partition_key) for r in first.run_requests] == [("chat_ingest_job", today.isoformat())]
        _ingest(res, today.isoformat())
        ctx = dg.build_sensor_context(instance=instance, cursor=first.cursor,
                                      resources={"control_plane": res["control_plane"]})
        second = chat_imports_sensor(ctx)
        assert [(r.job_name, r.partition_key) for r in second.run_requests] == [
            ("memory_nightly_job", day_key((yesterday - dt.timedelta(days=2)).isoformat()))]  # today's is tonight's job
        ctx = dg.build_sensor_context(instance=instance, cursor=second.cursor,
                                      resources={"control_plane": res["control_plane"]})
        assert not chat_imports_sensor(ctx).run_requests


def test_chat_tables_report_the_catalogs_standard_metadata(settings, cp, store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines = [chat_line("m1", i, "user" if i % 2 == 0 else "assistant", f"turn {i}", T + dt.timedelta(minutes=i))
             for i in range(5)]
    register_chat(settings, "alice", write_jsonl(tmp_path / "meta.jsonl", lines), DAY)
    result = _ingest(build_resources(settings))
    materialized = [e.materialization for e in result.get_asset_materialization_events()]
    by_key = {m.asset_key.to_user_string(): m.metadata for m in materialized}
    expected = {"bronze/imported_chats": (BRONZE_CHAT_ITEMS, 5), "silver/chat_messages": (CHAT_MESSAGES, 5),
                "silver/chat_sessions": (CHAT_SESSIONS, 1)}
    for key, (spec, rows) in expected.items():
        meta = by_key[key]
        assert meta["dagster/table_name"].value == spec.name
        assert meta["dagster/row_count"].value == rows == store.read(spec).height
        assert [c.name for c in meta["dagster/column_schema"].schema.columns] == list(spec.schema)
        assert meta["dagster/uri"].value == store.uri(spec)
