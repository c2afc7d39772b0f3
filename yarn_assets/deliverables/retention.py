"""Retention: the silver items placed in a version's prompt outlive their TTL.

Only rendered items are marked (the original retained every fetched id). The merge is pinned to
the items' (platform, created_day) partitions, touches rows not yet retained only (the first
deliverable that used an item keeps the reference, as ``mark_content_retained`` did), and
clears ``expires_at`` so cleanup never deletes them.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from io_managers.delta_store import DeltaStore
from io_managers.predicates import In, all_of
from yarn_assets.core.tables import PLATFORM_CONTENT

REASON = "deliverable_execution"
_KEY = ["user_id", "platform", "resource_id", "external_id"]


def mark_retained(store: DeltaStore, items: pl.DataFrame, *, ref: str, now: dt.datetime,
                  reason: str = REASON) -> int:
    """Mark ``items`` (silver rows: key columns and created_day) retained; returns rows changed."""
    if items.is_empty():
        return 0
    batch = items.select([*_KEY, "created_day"]).unique().with_columns(
        pl.lit(True).alias("retained"),
        pl.lit(reason).alias("retained_reason"),
        pl.lit(ref).alias("retained_ref"),
        pl.lit(now).cast(PLATFORM_CONTENT.schema["retained_at"]).alias("retained_at"),
    )
    pin = all_of(In("platform", batch["platform"].unique().sort().to_list()),
                 In("created_day", batch["created_day"].unique().sort().to_list()))
    stats = store.merge(
        PLATFORM_CONTENT,
        batch,
        keys=_KEY,
        pin=pin,
        update={"retained": "s.retained", "retained_reason": "s.retained_reason", "retained_ref": "s.retained_ref",
                "retained_at": "s.retained_at", "expires_at": "NULL"},
        update_when="t.retained IS NULL OR t.retained = false",
        insert=False,
    )
    return stats.updated
