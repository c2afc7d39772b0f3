"""Silver ``platform_content``: normalize one bronze partition and merge it into the current view.

Merge rules (each is tested):

* key = (user_id, platform, resource_id, external_id); the merge is pinned to the batch's
  ``platform`` and ``created_day`` partitions, so its cost follows the batch, not the table;
* an exact duplicate (same content hash) changes nothing, not even ``fetched_at``;
* an edit (same key, new hash) updates the row, unless the row already holds a newer version
  (``fetched_at`` orders versions, so replaying an old partition never regresses silver);
* ``retained`` and its reason/ref survive every update (the original reset them);
* tombstones delete the row; a later tombstone in bronze also stops an older partition from
  re-inserting it, so backfills in any order give the same table;
* rows already past their TTL are not inserted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from io_managers.delta_store import DeltaStore, MergeStats
from io_managers.predicates import Eq, all_of
from yarn_assets.core.tables import (
    BRONZE_ITEMS,
    CONTENT_MAX_CHARS,
    PLATFORM_CONTENT,
    TTL,
    UNDATED,
    UTC_TS,
)
from yarn_assets.ingest.normalizers import normalize_batch_frame
from yarn_assets.ingest.objects import Reject

KEY = list(PLATFORM_CONTENT.keys)

#: Columns an edit rewrites; retention columns are deliberately absent.
_UPDATED = [
    "resource_name", "content_type", "thread_id", "title", "author", "author_id", "participants",
    "content", "content_hash", "content_chars", "occurred_at", "ends_at", "source_updated_at",
    "fetched_at", "metadata", "source_kind", "connection_id", "batch_id", "ingest_date", "raw_sha256",
]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class NormalizedPartition:
    rows: pl.DataFrame  # silver rows plus ``is_deleted`` and ``seq``
    rejects: dict[str, list[Reject]] = field(default_factory=dict)  # batch_id -> rejects
    users: set[str] = field(default_factory=set)
    objects: int = 0
    skipped_expired_bodies: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    filtered: Counter[str] = field(default_factory=Counter)  # dropped on purpose (e.g. Slack joins)


def _sha256_series(s: pl.Series) -> pl.Series:
    return pl.Series([hashlib.sha256(x.encode("utf-8")).hexdigest() for x in s], dtype=pl.Utf8)


def silver_rows(items: pl.DataFrame, meta: dict[str, Any]) -> pl.DataFrame:
    """Items of one batch (ITEM_SCHEMA) -> silver rows: hash, TTL, created_day, batch facts (vectorized)."""
    fetched_at: dt.datetime = meta["fetched_at"]
    platform: str = meta["platform"]
    content = pl.col("content").fill_null("")
    out = items.with_columns(
        content.map_batches(_sha256_series, return_dtype=pl.Utf8).alias("content_hash"),
        content.str.len_chars().cast(pl.Int64).alias("content_chars"),
        content.str.slice(0, CONTENT_MAX_CHARS).alias("content"),
        pl.col("source_created_at").dt.date().cast(pl.Utf8).fill_null(UNDATED).alias("created_day"),
        pl.lit(meta["user_id"], pl.Utf8).alias("user_id"),
        pl.lit(platform, pl.Utf8).alias("platform"),
        pl.lit(fetched_at, UTC_TS).alias("fetched_at"),
        pl.lit(fetched_at + TTL[platform], UTC_TS).alias("expires_at"),
        pl.lit(False).alias("retained"),
        pl.lit(meta["source_kind"], pl.Utf8).alias("source_kind"),
        pl.lit(meta["connection_id"], pl.Utf8).alias("connection_id"),
        pl.lit(meta["batch_id"], pl.Utf8).alias("batch_id"),
        pl.lit(meta["ingest_date"], pl.Date).alias("ingest_date"),
        pl.col("is_deleted").fill_null(False),
        pl.col("participants").fill_null([]),
        pl.col("resource_name").fill_null(""),
    )
    return PLATFORM_CONTENT.conform(out).select([*PLATFORM_CONTENT.schema, "is_deleted", "seq"])


def normalize_partition(bronze_rows: pl.DataFrame) -> NormalizedPartition:
    """Normalize every batch of a bronze partition (pure; no I/O)."""
    result = NormalizedPartition(rows=empty_rows())
    if bronze_rows.is_empty():
        return result
    expired = bronze_rows.filter(pl.col("body_expired_at").is_not_null())
    result.skipped_expired_bodies = expired.height
    live = bronze_rows.filter(pl.col("body_expired_at").is_null())
    result.objects = live.height
    frames: list[pl.DataFrame] = []
    for (batch_id,), frame in live.sort("batch_id", "seq").group_by(["batch_id"], maintain_order=True):
        first = frame.row(0, named=True)
        meta = {k: first[k] for k in ("user_id", "platform", "source_kind", "connection_id", "ingest_date",
                                      "fetched_at")}
        meta["batch_id"] = batch_id
        result.users.add(first["user_id"])
        items, rejects = normalize_batch_frame(frame, result.filtered)
        if rejects:
            result.rejects[str(batch_id)] = rejects
        if items.height:
            result.by_type.update(dict(items.group_by("content_type").len().iter_rows()))
            frames.append(silver_rows(items, meta))
    if frames:
        result.rows = pl.concat(frames)
    return result


def _row_schema() -> dict[str, pl.DataType]:
    return {**PLATFORM_CONTENT.schema, "is_deleted": pl.Boolean, "seq": pl.Int64}


def empty_rows() -> pl.DataFrame:
    return pl.DataFrame(schema=_row_schema())


def latest_versions(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per key: the latest by (fetched_at, seq)."""
    return rows.sort(["fetched_at", "seq"]).unique(subset=KEY, keep="last", maintain_order=True)


def drop_superseded_by_tombstones(store: DeltaStore, rows: pl.DataFrame, platform: str) -> tuple[pl.DataFrame, int]:
    """Drop rows whose key was deleted later (per bronze), so partition order never matters."""
    if rows.is_empty():
        return rows, 0
    lf = store.scan(BRONZE_ITEMS, all_of(Eq("platform", platform), Eq("is_tombstone", True)))
    if lf is None:
        return rows, 0
    tombs = (
        lf.select(["user_id", "resource_id", "external_id", "fetched_at"])
        .group_by(["user_id", "resource_id", "external_id"])
        .agg(pl.col("fetched_at").max().alias("deleted_at"))
        .collect()
    )
    if tombs.is_empty():
        return rows, 0
    joined = rows.join(tombs, on=["user_id", "resource_id", "external_id"], how="left")
    keep = joined.filter(pl.col("deleted_at").is_null() | (pl.col("deleted_at") <= pl.col("fetched_at")))
    return keep.drop("deleted_at"), rows.height - keep.height


@dataclass
class SilverMergeResult:
    stats: MergeStats
    source_rows: int
    new: int
    updated: int
    deleted: int
    unchanged: int
    skipped_expired: int
    skipped_tombstoned: int


def merge_platform_content(
    store: DeltaStore, rows: pl.DataFrame, *, now: dt.datetime, check_tombstones: bool = True
) -> SilverMergeResult:
    """Merge normalized rows (with ``is_deleted``) into silver; see the module docstring."""
    rows = latest_versions(rows)
    skipped_tombstoned = 0
    if check_tombstones and not rows.is_empty():
        parts = []
        for (platform,), frame in rows.group_by(["platform"]):
            kept, dropped = drop_superseded_by_tombstones(store, frame, str(platform))
            parts.append(kept)
            skipped_tombstoned += dropped
        rows = pl.concat(parts) if parts else rows
    live_or_deleted = rows.filter(pl.col("is_deleted") | (pl.col("expires_at") > pl.lit(now)))
    skipped_expired = rows.height - live_or_deleted.height
    updates = {c: f"s.{c}" for c in _UPDATED}
    updates["expires_at"] = "CASE WHEN t.retained THEN NULL ELSE s.expires_at END"
    stats = store.merge(
        PLATFORM_CONTENT,
        live_or_deleted,
        update=updates,
        update_when="NOT s.is_deleted AND t.content_hash <> s.content_hash AND t.fetched_at <= s.fetched_at",
        delete_when="s.is_deleted AND t.fetched_at <= s.fetched_at",
        insert_when="NOT s.is_deleted",
    )
    n = live_or_deleted.height
    return SilverMergeResult(
        stats=stats,
        source_rows=rows.height,
        new=stats.inserted,
        updated=stats.updated,
        deleted=stats.deleted,
        unchanged=max(0, n - stats.inserted - stats.updated - stats.deleted),
        skipped_expired=skipped_expired,
        skipped_tombstoned=skipped_tombstoned,
    )
