"""A round of due deliverables: shared reads, one commit each for the gold rows and the retention
marks, resume after a crash between generation and delivery, and the versions table's layout migration."""

from __future__ import annotations

import json

import polars as pl
import pytest
from deltalake import write_deltalake
from sqlalchemy import select

from control_plane import db
from control_plane.models import DeliverableDelivery, DeliverableVersion
from io_managers.predicates import Eq
from tests.deliverables.helpers import NOW, add_user, create, item, run_resources, sample_content, seed_silver
from yarn_assets.core.tables import ACTIVITY_LOG, PLATFORM_CONTENT
from yarn_assets.deliverables import round as deliverable_round
from yarn_assets.deliverables.round import RoundItem, run_round
from yarn_assets.deliverables.run import run_deliverable
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS, RETAINED_ITEMS, version_bucket
from yarn_assets.deliverables.versions import _gold_row, ensure_layout, previous_output, write_gold

TYPES = ("slack_channel_digest", "gmail_inbox_brief", "status_report")


def _seed_round(url: str, store) -> tuple[list[str], dict[str, str]]:  # type: ignore[no-untyped-def]
    """alice, bob and carol with content (bob's carries a marker) and three deliverables each."""
    add_user(url, "carol", tz="UTC")
    rows = sample_content("alice") + sample_content("carol")
    rows += [{**r, "content": f"BOBSECRET {r['content']}"} for r in sample_content("bob")]
    seed_silver(store, rows)
    ids, owner = [], {}
    for user in ("alice", "bob", "carol"):
        for dtype in TYPES:
            did = create(url, user, dtype)
            ids.append(did)
            owner[did] = user
    return ids, owner


def _commits(store, spec) -> int:  # type: ignore[no-untyped-def]
    v = store.version(spec)
    return -1 if v is None else v


def _history_ops(store, spec, since: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [c["operation"] for c in store.table(spec).history() if c["version"] > since]


def test_a_round_writes_gold_rows_and_marks_in_one_commit_each(workspace, store) -> None:
    ids, owner = _seed_round(workspace, store)
    for spec in (DELIVERABLE_VERSIONS, RETAINED_ITEMS, ACTIVITY_LOG):
        store.ensure(spec)
    before = {s.name: _commits(store, s) for s in (DELIVERABLE_VERSIONS, RETAINED_ITEMS, ACTIVITY_LOG,
                                                    PLATFORM_CONTENT)}
    outs = run_round(run_resources(), [RoundItem(d) for d in ids], run_id="round-1", now=NOW)

    assert [o.deliverable_id for o in outs] == ids
    assert [o.status for o in outs] == ["delivered"] * len(ids)
    assert all(o.version_number == 1 and not o.resumed and o.retained > 0 for o in outs)
    # gold: the checkpoint and the delivery outcomes, one commit each for the whole round
    assert _history_ops(store, DELIVERABLE_VERSIONS, before[DELIVERABLE_VERSIONS.name]) == ["MERGE", "MERGE"]
    assert _history_ops(store, RETAINED_ITEMS, before[RETAINED_ITEMS.name]) == ["MERGE"]  # the marks: one commit
    assert _commits(store, ACTIVITY_LOG) - before[ACTIVITY_LOG.name] == 1  # the runs' events: one commit
    assert _commits(store, PLATFORM_CONTENT) == before[PLATFORM_CONTENT.name]  # silver is never rewritten

    gold = store.read(DELIVERABLE_VERSIONS)
    assert gold.height == len(ids) and set(gold["status"]) == {"delivered"}
    assert set(gold["delivery_status"]) == {"delivered"}
    assert all(b == version_bucket(u) for u, b in gold.select("user_id", "user_bucket").iter_rows())
    for row in gold.iter_rows(named=True):
        assert row["user_id"] == owner[row["deliverable_id"]]
        assert ("BOBSECRET" in row["final_content"]) == (row["user_id"] == "bob")  # no user sees another's items
        assert [s["name"] for s in json.loads(row["steps"])][-1] == "deliver"
    marks = store.read(RETAINED_ITEMS)
    assert marks.height == marks.unique(["user_id", "platform", "resource_id", "external_id"]).height
    assert set(marks["retained_ref"]) <= set(gold["version_id"])
    events = store.read(ACTIVITY_LOG, Eq("event_type", "deliverable_run"))
    assert events.height == len(ids) and set(events["run_id"]) == {"round-1"}


def test_a_round_matches_single_runs(workspace, store) -> None:
    """The prefetched reads give each deliverable exactly what its own run would read."""
    ids, _ = _seed_round(workspace, store)
    single = {d: run_deliverable(run_resources(), deliverable_id=d, run_id=f"single-{d}", now=NOW) for d in ids}
    outs = run_round(run_resources(), [RoundItem(d, trigger="manual") for d in ids], run_id="round-2", now=NOW)
    for out in outs:
        alone = single[out.deliverable_id]
        assert out.version_number == 2 and out.status == alone.status == "delivered"
        for key in ("items_in_prompt", "sources_used", "stale_sources"):
            assert out.row[key] == alone.row[key], key
        assert json.loads(out.row["source_snapshot"]) == json.loads(alone.row["source_snapshot"])
    # the round's second versions saw the first ones as their previous output
    for d in ids:
        assert previous_output(store, d, 2) == single[d].row["final_content"]


class Crash(BaseException):
    """The process dies: nothing after this point runs, not even the failure handling."""


def test_a_round_crashed_between_generation_and_delivery_resumes_once(workspace, store, monkeypatch) -> None:
    ids, _ = _seed_round(workspace, store)
    items = [RoundItem(d) for d in ids]  # scheduled: the freshness gate must not skip the resumed lineage

    def crash(*args: object, **kwargs: object) -> None:
        raise Crash

    real_finish = deliverable_round._finish
    monkeypatch.setattr(deliverable_round, "_finish", crash)
    with pytest.raises(Crash):
        run_round(run_resources(), items, run_id="attempt-1", now=NOW)
    stored = store.read(DELIVERABLE_VERSIONS)
    assert stored.height == len(ids) and set(stored["status"]) == {"generated"}
    with db.session_scope(workspace) as s:
        assert s.scalars(select(DeliverableDelivery)).all() == []
    monkeypatch.setattr(deliverable_round, "_finish", real_finish)  # the process is restarted

    outs = run_round(run_resources(), items, run_id="attempt-2", root_run_id="attempt-1", now=NOW)
    assert [o.status for o in outs] == ["delivered"] * len(ids), [o.reason for o in outs]
    assert all(o.resumed and o.version_number == 1 for o in outs)
    assert all(any(s.name == "generate" and s.status == "skipped" for s in o.steps) for o in outs)
    gold = store.read(DELIVERABLE_VERSIONS)
    assert gold.height == len(ids) and set(gold["status"]) == {"delivered"}
    assert gold.sort("version_id")["final_content"].to_list() == stored.sort("version_id")["final_content"].to_list()
    with db.session_scope(workspace) as s:
        versions = s.scalars(select(DeliverableVersion)).all()
        deliveries = s.scalars(select(DeliverableDelivery)).all()
        assert len(versions) == len(ids) and {v.status for v in versions} == {"delivered"}
        assert len(deliveries) == len(ids) and {d.status for d in deliveries} == {"sent"}
        assert {d.version_id for d in deliveries} == {v.id for v in versions}


def test_versions_in_the_old_layout_are_read_then_migrated(workspace, store) -> None:
    """A table partitioned by deliverable_id (before user buckets): readers work on it, the first
    write rewrites it into user_bucket partitions with every row kept."""
    seed_silver(store, sample_content("alice"))
    did = create(workspace, "alice", "status_report")
    first = run_deliverable(run_resources(), deliverable_id=did, run_id="r1", now=NOW)
    rows = store.read(DELIVERABLE_VERSIONS).drop("user_bucket")
    store.table(DELIVERABLE_VERSIONS)  # rebuild it the way the old spec wrote it
    write_deltalake(store.uri(DELIVERABLE_VERSIONS), rows.to_arrow(), mode="overwrite", schema_mode="overwrite",
                    partition_by=["deliverable_id"])
    assert store.table(DELIVERABLE_VERSIONS).metadata().partition_columns == ["deliverable_id"]
    assert _gold_row(store, did, first.version_id)["final_content"] == first.row["final_content"]
    assert previous_output(store, did, 2) == first.row["final_content"]

    second = run_deliverable(run_resources(), deliverable_id=did, run_id="r2", now=NOW)
    assert second.status == "delivered" and second.version_number == 2
    table = store.table(DELIVERABLE_VERSIONS)
    assert table.metadata().partition_columns == ["user_bucket"]
    gold = store.read(DELIVERABLE_VERSIONS).sort("version_number")
    assert gold["version_id"].to_list() == [first.version_id, second.version_id]
    assert gold["final_content"][0] == first.row["final_content"]
    assert set(gold["user_bucket"]) == {version_bucket("alice")}
    assert not ensure_layout(store)  # idempotent
    write_gold(store, {**gold.row(0, named=True), "delivery_error": "x"})
    assert store.read(DELIVERABLE_VERSIONS).height == 2


def test_a_round_item_that_fails_does_not_stop_the_others(workspace, store) -> None:
    seed_silver(store, [*sample_content("alice"), item("bob", "slack", "C01GENERAL", "b1", "hello", at=NOW)])
    good = create(workspace, "alice", "status_report")
    broken = create(workspace, "bob", "slack_channel_digest", destination={"platform": "email", "target": "x@y.z"})
    outs = run_round(run_resources(), [RoundItem(broken), RoundItem(good), RoundItem("no-such-deliverable")],
                     run_id="round-f", now=NOW)
    assert [o.status for o in outs] == ["failed", "delivered", "failed"]
    assert outs[2].reason and "no-such-deliverable" in outs[2].reason
    gold = store.read(DELIVERABLE_VERSIONS)
    assert dict(gold.select("deliverable_id", "status").iter_rows()) == {broken: "failed", good: "delivered"}
    assert pl.Series(gold["user_id"]).n_unique() == 2


def test_api_mode_round_generates_concurrently_and_keeps_each_users_content_apart(workspace, store, monkeypatch
                                                                                    ) -> None:
    """In API mode a round's generations overlap (up to the LLM's concurrency, counted at the server),
    and each prompt carries only its own user's content although the round shares its reads."""
    import threading
    import time

    from tests.fakes.anthropic_server import FakeAnthropic, text

    ids, owner = _seed_round(workspace, store)
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def held(req):  # type: ignore[no-untyped-def]
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.2)
        with lock:
            state["now"] -= 1
        return text("## Summary\n- generated")(req)

    with FakeAnthropic(default=held) as api:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("YARNNN_ANTHROPIC_BASE_URL", api.base_url)
        res = run_resources({"llm_max_concurrency": 4})
        outcomes = run_round(res, [RoundItem(d) for d in ids], run_id="api-round", now=NOW)
        prompts = [r.prompt_text for r in api.requests_to()]
    assert [o.status for o in outcomes] == ["delivered"] * len(ids)
    assert 2 <= state["peak"] <= 4  # concurrent, and never beyond the configured bound
    assert len(prompts) == len(ids)  # one generation per deliverable
    # Bob's marker is in his three prompts only: shared reads never hand one user's rows to another's run
    assert sum("BOBSECRET" in p for p in prompts) == sum(u == "bob" for u in owner.values()) == 3
    with db.session_scope(workspace) as s:
        versions = s.execute(select(DeliverableVersion.deliverable_id, DeliverableVersion.version_number)).all()
    assert sorted(versions) == sorted((d, 1) for d in ids)
    gold = store.read(DELIVERABLE_VERSIONS, columns=["deliverable_id", "user_id", "final_content"])
    assert all(owner[r["deliverable_id"]] == r["user_id"] for r in gold.iter_rows(named=True))
    assert not gold.filter(pl.col("user_id") != "bob").filter(pl.col("final_content").str.contains("BOBSECRET")).height
