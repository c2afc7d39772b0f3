"""The optimised silver write path keeps every merge rule: no-op batches, tombstones, batches, hashing."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from io_managers.delta_store import DeltaStore
from yarn_assets.core.tables import BRONZE_ITEMS, CONTENT_MAX_CHARS, PLATFORM_CONTENT
from yarn_assets.ingest import bronze
from yarn_assets.ingest import normalize as normalizers
from yarn_assets.ingest.normalize import ITEM_SCHEMA, BatchContext
from yarn_assets.ingest.objects import RawObject, Reject
from yarn_assets.ingest.platforms.slack.normalize import slack_users
from yarn_assets.ingest.silver import (
    drop_unchanged,
    latest_versions,
    merge_platform_content,
    normalize_partition,
    silver_rows,
)

U = dt.UTC
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=U)
DAY = dt.datetime(2026, 11, 20, 9, tzinfo=U)


def rows(*items: dict, fetched_at: dt.datetime = NOW, batch: str = "b1") -> pl.DataFrame:
    base = {k: None for k in ITEM_SCHEMA}
    filled = [{**base, "resource_id": "C1", "resource_name": "general", "content_type": "message",
               "participants": [], "metadata": "{}", "is_deleted": False, "seq": i, "raw_sha256": "x",
               "source_created_at": DAY, **it} for i, it in enumerate(items)]
    meta = {"user_id": "alice", "platform": "slack", "source_kind": "sync", "connection_id": None,
            "ingest_date": fetched_at.date(), "fetched_at": fetched_at, "batch_id": batch}
    return silver_rows(pl.DataFrame(filled, schema=ITEM_SCHEMA), meta)


def silver(store: DeltaStore) -> pl.DataFrame:
    return store.read(PLATFORM_CONTENT).sort("external_id")


def test_a_batch_of_exact_duplicates_writes_nothing(store: DeltaStore) -> None:
    merge_platform_content(store, rows({"external_id": "1", "content": "a"}, {"external_id": "2", "content": "b"}),
                           now=NOW)
    version = store.version(PLATFORM_CONTENT)
    later = NOW + dt.timedelta(hours=1)
    again = rows({"external_id": "1", "content": "a"}, {"external_id": "2", "content": "b"}, fetched_at=later,
                 batch="b2")
    result = merge_platform_content(store, again, now=later)
    assert (result.new, result.updated, result.unchanged) == (0, 0, 2)
    assert store.version(PLATFORM_CONTENT) == version  # not even an empty commit


def test_drop_unchanged_keeps_only_what_the_merge_would_change(store: DeltaStore) -> None:
    merge_platform_content(store, rows({"external_id": "1", "content": "a"}, {"external_id": "2", "content": "b"},
                                       {"external_id": "3", "content": "c"}), now=NOW)
    earlier, later = NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=1)
    batch = pl.concat([
        rows({"external_id": "1", "content": "a"}, {"external_id": "2", "content": "b2"},
             {"external_id": "3", "content": "", "is_deleted": True}, {"external_id": "4", "content": "new"},
             {"external_id": "5", "content": "", "is_deleted": True}, fetched_at=later, batch="b2"),
        rows({"external_id": "1", "content": "stale"}, fetched_at=earlier, batch="b0").with_columns(
            pl.lit("0").alias("external_id")),
        rows({"external_id": "2", "content": "older edit"}, fetched_at=earlier, batch="b0").with_columns(
            pl.lit(9).cast(pl.Int64).alias("seq")),
    ])
    kept = drop_unchanged(store, batch)
    # 1: exact duplicate; 5: tombstone of an absent key; the older edit of 2 is not newer than silver
    assert sorted(kept["external_id"].to_list()) == ["0", "2", "3", "4"]
    assert kept.filter(pl.col("external_id") == "2")["content"].item() == "b2"


def test_bronze_without_tombstones_is_never_read(store: DeltaStore) -> None:
    batch = bronze.BatchInfo("alice", "slack", NOW.date(), "sync", "slack_api", "b1", NOW)
    bronze.write_batch(store, bronze.bronze_frame([RawObject("slack_message", "1", b"{}", resource_id="C1")], batch),
                       batch)
    for f in Path(store.uri(BRONZE_ITEMS)).rglob("*.parquet"):
        f.unlink()  # the Delta log still lists them: reading any data file would now fail
    result = merge_platform_content(store, rows({"external_id": "1", "content": "a"}), now=NOW)
    assert (result.new, result.skipped_tombstoned) == (1, 0)


def test_latest_versions_keeps_the_newest_and_the_input_order() -> None:
    first = rows({"external_id": "2", "content": "old"}, {"external_id": "1", "content": "x"}, batch="b1")
    second = rows({"external_id": "2", "content": "new"}, {"external_id": "3", "content": "y"},
                  fetched_at=NOW + dt.timedelta(minutes=5), batch="b2")
    out = latest_versions(pl.concat([first, second]))
    assert out.select("external_id", "content").rows() == [("1", "x"), ("2", "new"), ("3", "y")]
    unique = pl.concat([first.tail(1), second])
    assert latest_versions(unique) is unique  # nothing to drop: no copy


def test_content_is_capped_but_hashed_and_counted_in_full() -> None:
    text = "é" * (CONTENT_MAX_CHARS + 5)
    row = rows({"external_id": "1", "content": text}, {"external_id": "2", "content": None}).rows(named=True)
    assert len(row[0]["content"]) == CONTENT_MAX_CHARS and row[0]["content_chars"] == CONTENT_MAX_CHARS + 5
    assert row[0]["content_hash"] == hashlib.sha256(text.encode()).hexdigest()
    assert (row[1]["content"], row[1]["content_hash"]) == ("", hashlib.sha256(b"").hexdigest())


def test_bronze_frame_is_built_column_wise_with_the_same_values() -> None:
    objs = [RawObject("slack_users", "users.json", b"[]", context={"file": "users.json"}),
            RawObject("slack_message", "1.0", "héllo".encode(), resource_id="C1", resource_name="general",
                      context={"z": 1, "a": [1, 2]}, is_tombstone=True)]
    batch = bronze.BatchInfo("alice", "slack", NOW.date(), "import", "slack_export", "job1", NOW, run_id="r1")
    got = bronze.bronze_frame(objs, batch, seq_start=7)
    assert got.schema == pl.Schema(BRONZE_ITEMS.schema)
    row = got.row(1, named=True)
    assert row == {
        "user_id": "alice", "platform": "slack", "ingest_date": NOW.date(), "source_kind": "import",
        "provider": "slack_export", "connection_id": None, "batch_id": "job1", "seq": 8,
        "object_type": "slack_message", "resource_id": "C1", "resource_name": "general", "external_id": "1.0",
        "raw": "héllo".encode(), "raw_sha256": objs[1].sha256, "raw_size": 6,
        "context": json.dumps({"z": 1, "a": [1, 2]}, sort_keys=True), "is_tombstone": True, "fetched_at": NOW,
        "run_id": "r1", "body_expired_at": None,
    }


def _lines(frame: pl.DataFrame, ctx: BatchContext) -> tuple[pl.DataFrame, list[Reject]]:
    """A vectorized normalizer: one item per object, content = raw text, author from the context."""
    users = slack_users(ctx)
    bad = frame.filter(pl.col("raw") == b"")
    items = frame.filter(pl.col("raw") != b"").select(
        "resource_id", "resource_name", "external_id", "seq", "raw_sha256",
        pl.col("raw").cast(pl.Utf8).alias("content"),
        pl.lit("message").alias("content_type"),
        pl.lit(users.get("U1", {}).get("real_name")).alias("author"),
        pl.lit(DAY).dt.cast_time_unit("us").alias("source_created_at"),
        pl.lit([], pl.List(pl.Utf8)).alias("participants"),
        pl.lit("{}").alias("metadata"),
    )
    items = items.with_columns([pl.lit(None, dtype).alias(c) for c, dtype in ITEM_SCHEMA.items()
                                if c not in items.columns])
    return items, [Reject("empty", b"", object_type="test_line", external_id=e) for e in bad["external_id"]]


@pytest.fixture
def line_normalizer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(normalizers._EXTRA_FRAME_NORMALIZERS, "test_line", _lines)


def _bronze(batch_id: str, fetched_at: dt.datetime, lines: list[tuple[str, bytes]], order: list[int]) -> pl.DataFrame:
    info = bronze.BatchInfo("alice", "slack", NOW.date(), "import", "slack_export", batch_id, fetched_at)
    users = RawObject("slack_users", "users.json", json.dumps([{"id": "U1", "real_name": "Ann"}]).encode())
    frame = bronze.bronze_frame([users, *(RawObject("test_line", e, raw, resource_id="C1") for e, raw in lines)], info)
    return frame[order]


def test_partition_with_shuffled_batches_normalizes_in_batch_and_seq_order(line_normalizer: None) -> None:
    later = NOW + dt.timedelta(hours=1)
    b2 = _bronze("b2", later, [("1", b"one v2"), ("3", b"three")], [2, 0, 1])
    b1 = _bronze("b1", NOW, [("1", b"one"), ("2", b"two"), ("9", b"")], [3, 1, 0, 2])
    shuffled = pl.concat([b2[:1], b1[:2], b2[1:], b1[2:]])
    norm = normalize_partition(shuffled)
    assert norm.rows.select("batch_id", "external_id", "seq").rows() == [
        ("b1", "1", 1), ("b1", "2", 2), ("b2", "1", 1), ("b2", "3", 2)]
    assert set(norm.rows["author"]) == {"Ann"}
    assert [r.external_id for r in norm.rejects["b1"]] == ["9"]
    assert latest_versions(norm.rows).sort("external_id")["content"].to_list() == ["one v2", "two", "three"]


def test_lazy_scan_and_eager_read_normalize_identically(store: DeltaStore, line_normalizer: None) -> None:
    later = NOW + dt.timedelta(hours=1)
    for batch_id, fetched, lines in (("b2", later, [("1", b"one v2"), ("3", b"three")]),
                                     ("b1", NOW, [("1", b"one"), ("2", b"two"), ("9", b"")])):
        info = bronze.BatchInfo("alice", "slack", NOW.date(), "import", "slack_export", batch_id, fetched)
        users = RawObject("slack_users", "users.json", json.dumps([{"id": "U1", "real_name": "Ann"}]).encode())
        objs = [users, *(RawObject("test_line", e, raw, resource_id="C1") for e, raw in lines)]
        bronze.write_batch(store, bronze.bronze_frame(objs, info), info)
    eager = normalize_partition(bronze.read_partition(store, "slack", NOW.date()))
    lazy = normalize_partition(bronze.scan_partition(store, "slack", NOW.date()))
    assert lazy.rows.equals(eager.rows)
    assert lazy.rows.select("batch_id", "external_id").rows() == [("b1", "1"), ("b1", "2"), ("b2", "1"), ("b2", "3")]
    assert (lazy.objects, lazy.users, dict(lazy.by_type)) == (7, {"alice"}, {"message": 4})
    assert [r.external_id for r in lazy.rejects["b1"]] == ["9"]


def test_shared_contexts_serialize_once_but_exactly() -> None:
    ctxs = [{"channel": "general", "n": 1}, {"n": 1, "channel": "general"}, {"channel": "general", "n": True},
            {"channel": "general", "n": 1.0}, {"labels": ["a", "b"]}, {}]
    batch = bronze.BatchInfo("alice", "gmail", NOW.date(), "import", "mbox", "job1", NOW)
    got = bronze.bronze_frame([RawObject("email", str(i), b"x", context=c) for i, c in enumerate(ctxs)], batch)
    assert got["context"].to_list() == [json.dumps(c, sort_keys=True) for c in ctxs]
