"""The nightly memory over (day × user shard): a (day, shard) run handles only the shard's users, replaces
only their rows of the day (other shards' rows untouched, a stale row of one of its users removed), is
idempotent, sends one Message Batch of the shard's sessions in API mode, and the shards of a night
together write exactly what a single-shard night writes.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import polars as pl
import pytest

from resources.llm import LLM
from resources.llm_batches import LLMBatches
from resources.registry import build_resources
from tests.fakes.anthropic_batches import FakeBatches, tool_answer
from tests.fakes.anthropic_server import FakeAnthropic, respond
from tests.memory.conftest import chat_line, register_chat, write_jsonl
from yarn_assets.core.activity_log import ActivityEvent, read_events, write_events
from yarn_assets.core.shards import shard_of
from yarn_assets.ingest.platforms.chat.assets import bronze_imported_chats, silver_chat
from yarn_assets.memory.assets import (
    build_activity_patterns,
    build_memory_facts,
    build_session_summaries,
    day_key,
    day_keys,
    memory_facts,
    session_summaries,
)
from yarn_assets.memory.tables import ACTIVITY_PATTERNS, FACT_CANDIDATES, SESSION_SUMMARIES

DAY = "2026-11-18"
T = dt.datetime(2026, 11, 18, 9, 0, tzinfo=dt.UTC)
#: the smallest shard count that puts alice and bob in different shards
N = next(n for n in range(2, 16) if shard_of("alice", n) != shard_of("bob", n))
ALICE, BOB = shard_of("alice", N), shard_of("bob", N)


def _other(shard: str, prefix: str) -> str:
    """A user id (not in the control plane) that hashes into ``shard``."""
    return next(f"{prefix}{i}" for i in range(1000) if shard_of(f"{prefix}{i}", N) == shard)


def _chats(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    alice = [chat_line("a1", i, "user", t, T + dt.timedelta(minutes=i)) for i, t in enumerate(
        ["Remember that my role is Head of Ops.", "I prefer tables.", "Draft the update.", "Shorter please.",
         "Thanks."])]
    alice += [chat_line("a2", i, "user", f"Second session message {i}", T + dt.timedelta(hours=3, minutes=i))
              for i in range(3)]
    bob = [chat_line("b1", i, "user", t, T + dt.timedelta(hours=1, minutes=i))
           for i, t in enumerate(["I work at Contoso.", "Check my inbox.", "Thanks.", "Sort it by sender.",
                                  "Great."])]
    register_chat(settings, "alice", write_jsonl(tmp_path / "alice.jsonl", alice), DAY)
    register_chat(settings, "bob", write_jsonl(tmp_path / "bob.jsonl", bob), DAY)


def _land(res: dict) -> None:  # type: ignore[type-arg]
    assert dg.materialize([bronze_imported_chats, silver_chat], partition_key=DAY, resources=res).success


def _tables(store) -> dict[str, pl.DataFrame]:  # type: ignore[no-untyped-def]
    return {spec.name: store.read(spec).sort(["user_id", "session_id"]) for spec in (FACT_CANDIDATES,
                                                                                      SESSION_SUMMARIES)}


def _users(frame: pl.DataFrame) -> set[str]:
    return set(frame["user_id"].to_list())


def test_each_shard_writes_only_its_users_part_of_the_day(settings, cp, store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _chats(settings, tmp_path)
    res = build_resources(settings)
    _land(res)
    assets = [build_memory_facts(N), build_session_summaries(N)]

    first = dg.materialize(assets, partition_key=day_key(DAY, ALICE), resources=res)
    meta = first.asset_materializations_for_node("gold__memory_facts")[0].metadata
    assert meta["shard"].value == f"{ALICE} of {N}" and meta["users"].value == 1 and meta["sessions_due"].value == 2
    assert {k: _users(v) for k, v in _tables(store).items()} == {FACT_CANDIDATES.name: {"alice"},
                                                                 SESSION_SUMMARIES.name: {"alice"}}
    dg.materialize(assets, partition_key=day_key(DAY, BOB), resources=res)
    night = _tables(store)
    assert {k: _users(v) for k, v in night.items()} == {FACT_CANDIDATES.name: {"alice", "bob"},
                                                        SESSION_SUMMARIES.name: {"alice", "bob"}}

    # a stale row of a user of alice's shard (nothing due for them any more) and one of bob's shard
    stale = night[FACT_CANDIDATES.name].head(1)
    strays = pl.concat([stale.with_columns(pl.lit(_other(ALICE, "gone")).alias("user_id"),
                                           pl.lit("stale-a").alias("candidate_id")),
                        stale.with_columns(pl.lit(_other(BOB, "kept")).alias("user_id"),
                                           pl.lit("stale-b").alias("candidate_id"))])
    store.append(FACT_CANDIDATES, strays)
    events = read_events(store).drop("run_id").sort("event_id")
    again = dg.materialize(assets, partition_key=day_key(DAY, ALICE), resources=res)  # re-run alice's shard
    assert again.asset_materializations_for_node("gold__memory_facts")[0].metadata["events_written"].value == 0
    after = _tables(store)
    assert after[FACT_CANDIDATES.name]["candidate_id"].to_list().count("stale-a") == 0  # its user's shard owns it
    assert after[FACT_CANDIDATES.name].filter(pl.col("candidate_id") != "stale-b").equals(night[FACT_CANDIDATES.name])
    assert after[SESSION_SUMMARIES.name].equals(night[SESSION_SUMMARIES.name])
    assert read_events(store).drop("run_id").sort("event_id").equals(events)

    # the same night as one shard (the whole day: bob's shard's stale row goes too): the same rows
    dg.materialize([memory_facts, session_summaries], partition_key=day_key(DAY), resources=res)
    single = _tables(store)
    for name, frame in night.items():
        assert single[name].equals(frame), name


def _model(custom_id: str, params: dict) -> dict:  # type: ignore[type-arg]
    return {"facts": [{"key": "fact:topic", "value": "Talks about work.", "confidence": 0.8, "evidence": 1}]}


@pytest.fixture
def api():  # type: ignore[no-untyped-def]
    with FakeAnthropic(default=respond(lambda req: _model("", {}))) as server:
        yield server


def test_api_mode_sends_one_batch_per_shard_of_its_users_sessions(settings, cp, store, api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _chats(settings, tmp_path)
    res = build_resources(settings)
    _land(res)
    llm = LLM(control_plane=res["control_plane"], offline=False, api_key="sk-test-not-a-secret",
              base_url=api.base_url, timeout_seconds=5.0, max_retries=0)
    res = {**res, "llm": llm, "llm_batches": LLMBatches(llm=llm, threshold=0, poll_seconds=0.01, timeout_seconds=10)}

    with FakeBatches(api, tool_answer(_model)) as batches:
        dg.materialize([build_memory_facts(N)], partition_key=day_key(DAY, ALICE), resources=res)
        alice_batches = list(batches.created)
        dg.materialize([build_memory_facts(N)], partition_key=day_key(DAY, BOB), resources=res)
    assert [len(b["requests"]) for b in batches.created] == [2, 1]  # alice's two sessions, then bob's one
    text = json.dumps(alice_batches)
    assert "Head of Ops" in text and "Contoso" not in text  # one user's content never in another shard's batch
    assert _users(store.read(FACT_CANDIDATES)) == {"alice", "bob"}


def test_patterns_per_shard_are_idempotent_and_leave_other_shards_alone(settings, cp, store) -> None:  # type: ignore[no-untyped-def]
    base = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)  # a Monday
    events = [ActivityEvent(user_id=user, event_type="deliverable_run", summary="run", idempotency_key=f"{user}{i}",
                            created_at=base + dt.timedelta(days=7 * i), metadata={"deliverable_type": "status_report"})
              for user in ("alice", "bob") for i in range(3)]
    write_events(store, events)
    day = (base + dt.timedelta(days=14)).date().isoformat()
    res = {k: build_resources(settings)[k] for k in ("warehouse", "control_plane")}
    asset = build_activity_patterns(N)

    def detected() -> set[str]:
        return _users(read_events(store, event_types=["pattern_detected"]))

    result = dg.materialize([asset], partition_key=day_key(day, BOB), resources=res)
    assert detected() == {"bob"} and _users(store.read(ACTIVITY_PATTERNS)) <= {"bob"}
    check = result.get_asset_check_evaluations()[0]
    assert check.passed and check.metadata["users"].value == 1, check.metadata
    for key in day_keys(day, N):
        dg.materialize([asset], partition_key=key, resources=res)
    assert detected() == {"alice", "bob"}
    tables = (store.read(ACTIVITY_PATTERNS).sort(["user_id", "key"]),
              read_events(store).drop("run_id").sort("event_id"))
    assert _users(tables[0]) == {"alice", "bob"}
    dg.materialize([asset], partition_key=day_key(day, ALICE), resources=res)  # re-run one shard
    assert store.read(ACTIVITY_PATTERNS).sort(["user_id", "key"]).equals(tables[0])
    assert read_events(store).drop("run_id").sort("event_id").equals(tables[1])


def test_a_night_is_every_shard_of_the_day_for_the_sensor_and_the_cli(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from resources.settings import load_settings
    from sensors.memory import _nightly_shards
    from yarn_assets.cli.backfill import partition_keys
    from yarn_assets.definitions import build_definitions

    monkeypatch.setenv("YARNNN_USER_SHARDS", "3")
    defs = build_definitions(load_settings())
    assert _nightly_shards(dg.build_sensor_context(definitions=defs)) == 3  # what the loaded job was built with
    assert _nightly_shards(dg.build_sensor_context()) == 1
    keys = partition_keys((), "2026-11-16..2026-11-17", None, "all", 3)
    assert keys == day_keys("2026-11-16", 3) + day_keys("2026-11-17", 3)
    assert keys[:2] == ["2026-11-16|0", "2026-11-16|1"]
    job = defs.resolve_job_def("memory_nightly_job")
    assert set(keys) <= set(job.partitions_def.get_partition_keys())
    assert partition_keys((), "2026-11-16", None, "2", 3) == ["2026-11-16|2"]
    with pytest.raises(Exception, match="choose one"):
        partition_keys((), "2026-11-16", "slack", "all", 3)
