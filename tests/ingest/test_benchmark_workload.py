"""The benchmark's workload is what it claims: Slack-shaped items, and a sync batch of new/duplicate/edited items."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl

from benchmarks import bronze_silver as bench
from benchmarks.synthetic import Workspace
from yarn_assets.ingest.platforms.slack.normalize import user_display_name

ANCHOR = "2026-11-22T12:00:00+00:00"


def test_synthetic_messages_normalize_like_slack_export_messages(store) -> None:  # type: ignore[no-untyped-def]
    from yarn_assets.ingest import bronze, silver

    ws = Workspace(3_000, dt.datetime.fromisoformat(ANCHOR))
    frame = ws.message_frame(ws.items)
    msgs = [json.loads(r) for r in frame["raw"]]
    assert len({(m["ts"], c) for m, c in zip(msgs, frame["resource_id"], strict=True)}) == 3_000
    assert all(100 <= len(m["text"]) <= 400 for m in msgs)
    info = bench._batch_info("u1", dt.date(2026, 11, 22), "job1", dt.datetime.fromisoformat(ANCHOR))
    bronze.write_batch(store, bronze.bronze_frame(ws.raw_objects(frame), info), info)
    norm = silver.normalize_partition(bronze.read_partition(store, "slack", info.ingest_date))
    rows = norm.rows.sort("external_id")
    assert rows.height == 3_000 and not norm.rejects
    assert rows["created_day"].n_unique() in (90, 91)
    reply = next(m for m in msgs if "thread_ts" in m)
    got = rows.filter(pl.col("external_id") == reply["ts"]).row(0, named=True)
    assert (got["content_type"], got["thread_id"]) == ("thread_reply", reply["thread_ts"])
    assert got["content"] == reply["text"]
    # the product's Slack normalizer: the users.json display name first (the original's rule)
    users_json = next(o.raw for o in ws.raw_objects(frame) if o.object_type == "slack_users")
    members = json.loads(users_json)
    member = next(u for u in (members if isinstance(members, list) else members["members"]) if u["id"] == reply["user"])
    assert got["author"] == user_display_name(member) and got["author"]
    edited = next(m for m in msgs if "edited" in m)
    got = rows.filter(pl.col("external_id") == edited["ts"]).row(0, named=True)
    assert got["source_updated_at"].timestamp() == float(edited["edited"]["ts"])


def test_benchmark_phases_measure_the_documented_batch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = str(tmp_path / "warehouse")
    bronze = bench.phase_bronze(root=root, n=4_000, anchor=ANCHOR, batch_size=1_500)
    assert bronze["objects"] == 4_000 + 3  # one users.json per batch
    silver = bench.phase_silver(root=root, n=4_000, anchor=ANCHOR)
    assert (silver["items"], silver["new"], silver["rejected"]) == (4_000, 4_000, 0)
    prep = bench.phase_prepare_incremental(root=root, n=4_000, anchor=ANCHOR, size=100,
                                           out=str(tmp_path / "inc.parquet"))
    assert (prep["new"], prep["duplicates"], prep["edits"], prep["rows"]) == (60, 30, 10, 100)
    bench._copy_silver(tmp_path / "warehouse", tmp_path / "a")
    merged = bench.phase_merge(root=str(tmp_path / "a"), batch=str(tmp_path / "inc.parquet"), sync_at=prep["sync_at"])
    assert (merged["new"], merged["updated"], merged["unchanged"], merged["rows_after"]) == (60, 10, 30, 4_060)
    bench._copy_silver(tmp_path / "warehouse", tmp_path / "b")
    plain = bench.phase_unpruned(root=str(tmp_path / "b"), batch=str(tmp_path / "inc.parquet"))
    assert (plain["new"], plain["updated"], plain["rows_after"]) == (60, 40, 4_060)
