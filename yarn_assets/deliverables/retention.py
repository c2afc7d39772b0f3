"""Retention: the silver items placed in a version's prompt outlive their TTL.

Only rendered items are marked (the original retained every fetched id). A mark is a row of
``gold/retained_items`` (key columns, created_day, reason, reference, time), inserted once: the first
deliverable that used an item keeps the reference, as ``mark_content_retained`` did. Marks are never
merged into silver here: merging them rewrote whole day files of silver on every run (rows copied
181x the rows marked). The TTL cleanup (``yarn_assets/ops/cleanup.py``), which rewrites those day
files anyway when it deletes, sets ``retained``/``retained_reason``/``retained_ref`` and clears
``expires_at`` on a marked row instead of deleting it, so readers' "live" filters see it as before.

A round collects the marks of all its deliverables and writes them in one commit (:func:`write_marks`).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from io_managers.delta_store import DeltaStore
from io_managers.predicates import In
from yarn_assets.deliverables.tables import RETAINED_ITEMS

REASON = "deliverable_execution"
KEY = ["user_id", "platform", "resource_id", "external_id"]
MARK_COLUMNS = [*KEY, "created_day", "retained_reason", "retained_ref", "retained_at"]


def marks_of(items: pl.DataFrame, *, ref: str, now: dt.datetime, reason: str = REASON) -> pl.DataFrame:
    """Retention marks for ``items`` (silver rows: key columns and created_day), one per item."""
    return items.select([*KEY, "created_day"]).unique(maintain_order=True).with_columns(
        pl.lit(reason).alias("retained_reason"),
        pl.lit(ref).alias("retained_ref"),
        pl.lit(now).cast(RETAINED_ITEMS.schema["retained_at"]).alias("retained_at"),
    ).select(MARK_COLUMNS)


def write_marks(store: DeltaStore, marks: pl.DataFrame) -> int:
    """Insert marks not already present (one commit); the first mark of an item in ``marks`` wins too.

    Returns the marks inserted. Pinned to the marks' created_day partitions.
    """
    if marks.is_empty():
        return 0
    batch = marks.unique(subset=KEY, keep="first", maintain_order=True)
    pin = In("created_day", batch["created_day"].unique().sort().to_list())
    stats = store.merge(RETAINED_ITEMS, batch, keys=KEY, pin=pin, update={}, insert=True)
    return stats.inserted


def mark_retained(store: DeltaStore, items: pl.DataFrame, *, ref: str, now: dt.datetime,
                  reason: str = REASON) -> int:
    """Mark ``items`` retained (one commit); returns the new marks (items already marked keep theirs)."""
    if items.is_empty():
        return 0
    return write_marks(store, marks_of(items, ref=ref, now=now, reason=reason))


def pending_marks(store: DeltaStore, keys: pl.DataFrame) -> pl.DataFrame:
    """The marks of the silver rows in ``keys`` (key columns and created_day), pruned to their days."""
    empty = RETAINED_ITEMS.empty().select(MARK_COLUMNS)
    if keys.is_empty():
        return empty
    lf = store.scan(RETAINED_ITEMS, In("created_day", keys["created_day"].unique().sort().to_list()))
    if lf is None:
        return empty
    wanted = keys.select([*KEY, "created_day"]).unique().lazy()
    return lf.select(MARK_COLUMNS).join(wanted, on=[*KEY, "created_day"], how="semi").collect()
