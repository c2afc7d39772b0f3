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

Write path (cost follows the batch): rows the merge would leave alone (exact duplicates, older
versions) are dropped after reading only the key/hash columns of the batch's partitions, so a sync
of unchanged items commits nothing; rows bound for partitions that hold no file yet are written
instead of joined (``DeltaStore.merge``); bronze is scanned for tombstones only when the Delta log's
statistics say a file of the platform may hold one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import polars_hash  # noqa: F401  (registers the ``chash`` expression namespace)

from io_managers.delta_store import DeltaStore, MergeStats, partition_pin
from io_managers.predicates import Eq, all_of
from resources.input_limits import InputLimits
from yarn_assets.core.tables import (
    BRONZE_ITEMS,
    CONTENT_MAX_CHARS,
    PLATFORM_CONTENT,
    TTL,
    UNDATED,
    UTC_TS,
)
from yarn_assets.ingest.normalize import contiguous_groups, normalize_batch_frame, workers
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
    stats: Counter[str] = field(default_factory=Counter)  # normalizer facts (e.g. ics_series_capped)


def sha256_hex(expr: pl.Expr) -> pl.Expr:
    """sha256 hex digest of a string column, computed natively (same digest as :func:`content_hash`)."""
    return expr.chash.sha2_256()  # type: ignore[attr-defined]


def silver_rows(items: pl.DataFrame, meta: dict[str, Any]) -> pl.DataFrame:
    """Items of one batch (ITEM_SCHEMA) -> silver rows: hash, TTL, created_day, batch facts (vectorized)."""
    fetched_at: dt.datetime = meta["fetched_at"]
    platform: str = meta["platform"]
    content = pl.col("content").fill_null("")
    chars = items.select(content.str.len_chars().cast(pl.Int64).alias("content_chars")).to_series()
    capped = content.str.slice(0, CONTENT_MAX_CHARS) if (chars.max() or 0) > CONTENT_MAX_CHARS else content
    out = items.with_columns(
        sha256_hex(content).alias("content_hash"),
        chars,
        capped.alias("content"),
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


def normalize_partition(bronze_rows: pl.DataFrame | pl.LazyFrame,
                        limits: InputLimits | None = None) -> NormalizedPartition:
    """Normalize every batch of a bronze partition (pure apart from reading a lazy input).

    Given a ``LazyFrame`` (:func:`bronze.scan_partition`), batches are read one at a time, so the
    raw bytes of a large partition are never all in memory at once. Batches are normalized on a
    few threads (polars releases the GIL) while the next one is read; results keep batch order.
    """
    result = NormalizedPartition(rows=empty_rows())
    frames: list[pl.DataFrame] = []
    window = workers()

    def collect(done: BatchResult) -> None:
        batch_id, user_id, objects, skipped, rows, rejects, filtered, stats = done
        result.filtered.update(filtered)
        result.stats.update(stats)
        if objects:
            result.users.add(user_id)
        result.objects += objects
        result.skipped_expired_bodies += skipped
        if rejects:
            result.rejects[str(batch_id)] = rejects
        if rows.height:
            result.by_type.update(dict(rows.group_by("content_type").len().iter_rows()))
            frames.append(rows)

    with ThreadPoolExecutor(max_workers=window, thread_name_prefix="batch") as pool:
        pending: deque[Future[BatchResult]] = deque()
        for batch_id, batch in _batches(bronze_rows):
            pending.append(pool.submit(_normalize_batch, batch_id, batch, limits))
            while len(pending) >= window:
                collect(pending.popleft().result())
        while pending:
            collect(pending.popleft().result())
    if frames:
        result.rows = pl.concat(frames)
    return result


BatchResult = tuple[str, str, int, int, pl.DataFrame, list[Reject], Counter[str], Counter[str]]


def _normalize_batch(batch_id: str, batch: pl.DataFrame, limits: InputLimits | None = None) -> BatchResult:
    """One batch: objects with a body -> silver rows (with ``is_deleted``, ``seq``) and rejects."""
    expired = batch.get_column("body_expired_at").is_not_null()
    skipped = int(expired.sum())
    frame = batch.filter(~expired) if skipped else batch
    first = batch.row(0, named=True)
    if frame.is_empty():
        return batch_id, first["user_id"], 0, skipped, empty_rows(), [], Counter(), Counter()
    meta = {k: first[k] for k in ("user_id", "platform", "source_kind", "connection_id", "ingest_date", "fetched_at")}
    meta["batch_id"] = batch_id
    filtered: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    rows, rejects = normalize_batch_frame(frame, finish=lambda items: silver_rows(items, meta), filtered=filtered,
                                          limits=limits, stats=stats)
    return batch_id, first["user_id"], frame.height, skipped, rows, rejects, filtered, stats


def _batches(bronze_rows: pl.DataFrame | pl.LazyFrame) -> Iterator[tuple[str, pl.DataFrame]]:
    """The partition's batches in batch id order, each in ``seq`` order, one at a time.

    From a lazy scan each batch is read on its own. In a frame, a batch stored contiguously (each
    batch is its own write, so it usually is) is a zero-copy slice, otherwise it is filtered out.
    Only an unsorted batch is copied to sort it, and never more than one batch at a time.
    """
    frames: Iterable[tuple[str, pl.DataFrame]]
    if isinstance(bronze_rows, pl.LazyFrame):
        ids = bronze_rows.select("batch_id").unique().collect().get_column("batch_id")
        frames = ((b, bronze_rows.filter(pl.col("batch_id") == b).collect()) for b in sorted(ids.to_list(), key=str))
    else:
        frames = sorted(contiguous_groups(bronze_rows, "batch_id"), key=lambda g: str(g[0]))
    for batch_id, frame in frames:
        if not frame.is_empty():
            yield batch_id, frame if frame.get_column("seq").is_sorted() else frame.sort("seq")


def _row_schema() -> dict[str, pl.DataType]:
    return {**PLATFORM_CONTENT.schema, "is_deleted": pl.Boolean, "seq": pl.Int64}


def empty_rows() -> pl.DataFrame:
    return pl.DataFrame(schema=_row_schema())


def latest_versions(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per key: the latest by (fetched_at, seq). Rows come back in their input order."""
    if rows.height < 2 or not rows.select(pl.struct(KEY).hash().is_duplicated().any()).item():
        return rows  # no key twice (a hash collision only costs the exact check below)
    latest = (
        rows.select([*KEY, "fetched_at", "seq"]).with_row_index("_row")
        .sort(["fetched_at", "seq", "_row"])
        .unique(subset=KEY, keep="last")
        .get_column("_row")
        .sort()
    )
    return rows[latest]


def drop_superseded_by_tombstones(store: DeltaStore, rows: pl.DataFrame, platform: str) -> tuple[pl.DataFrame, int]:
    """Drop rows whose key was deleted later (per bronze), so partition order never matters.

    The bronze files of the platform that may hold a tombstone are found from the Delta log's
    column statistics first; when there are none (the common case) bronze is not read at all.
    """
    if rows.is_empty():
        return rows, 0
    files = store.file_stats(BRONZE_ITEMS)
    if files is None or files.is_empty():
        return rows, 0
    maybe = pl.col("max.is_tombstone").fill_null(True) if "max.is_tombstone" in files.columns else pl.lit(True)
    if files.filter((pl.col("partition.platform") == platform) & maybe).is_empty():
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
    keep = (
        rows.select(["user_id", "resource_id", "external_id", "fetched_at"])
        .join(tombs, on=["user_id", "resource_id", "external_id"], how="left", maintain_order="left")
        .select(pl.col("deleted_at").is_null() | (pl.col("deleted_at") <= pl.col("fetched_at")))
        .to_series()
    )
    kept = rows if keep.all() else rows.filter(keep)
    return kept, rows.height - kept.height


def drop_unchanged(store: DeltaStore, rows: pl.DataFrame) -> pl.DataFrame:
    """Rows the merge would leave alone, removed before it runs.

    Reads only the key, hash and version columns of the batch's partitions, then drops exact
    duplicates, versions not newer than silver's and tombstones of absent keys. The merge keeps
    its own conditions, so this only shrinks its source (a sync full of unchanged items then
    writes nothing at all); it never decides an outcome by itself.
    """
    if rows.is_empty():
        return rows
    current = store.read(PLATFORM_CONTENT, partition_pin(PLATFORM_CONTENT, rows),
                         columns=[*KEY, "content_hash", "fetched_at"])
    deleted = pl.col("is_deleted")
    if current.is_empty():
        keep = rows.select(~deleted).to_series()
    else:
        current = current.unique(subset=KEY, keep="any").rename(
            {"content_hash": "_t_hash", "fetched_at": "_t_fetched"}).with_columns(pl.lit(True).alias("_matched"))
        newer = pl.col("_t_fetched") <= pl.col("fetched_at")
        keep = (
            rows.select([*KEY, "content_hash", "fetched_at", "is_deleted"])
            .join(current, on=KEY, how="left", maintain_order="left")
            .select(
                pl.when(pl.col("_matched").is_null()).then(~deleted)
                .otherwise(newer & (deleted | pl.col("_t_hash").ne_missing(pl.col("content_hash"))))
                .fill_null(False)
            )
            .to_series()
        )
    return rows if keep.all() else rows.filter(keep)


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
        platforms = rows.get_column("platform").unique().to_list()
        if len(platforms) == 1:
            rows, skipped_tombstoned = drop_superseded_by_tombstones(store, rows, str(platforms[0]))
        else:
            parts = []
            for (platform,), frame in rows.group_by(["platform"], maintain_order=True):
                kept, dropped = drop_superseded_by_tombstones(store, frame, str(platform))
                parts.append(kept)
                skipped_tombstoned += dropped
            rows = pl.concat(parts)
    alive = rows.select(pl.col("is_deleted") | (pl.col("expires_at") > pl.lit(now))).to_series()
    live_or_deleted = rows if alive.all() else rows.filter(alive)
    skipped_expired = rows.height - live_or_deleted.height
    updates = {c: f"s.{c}" for c in _UPDATED}
    updates["expires_at"] = "CASE WHEN t.retained THEN NULL ELSE s.expires_at END"
    stats = store.merge(
        PLATFORM_CONTENT,
        drop_unchanged(store, live_or_deleted),
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
