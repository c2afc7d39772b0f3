"""Bronze write and read paths: raw objects per batch, rejects with their reasons.

A batch (one import job, or one sync of one connection) is written with a replace scoped to
``platform, ingest_date, batch_id``: replaying the same batch yields the same rows, and no batch
can touch another's rows. Sync batches have unique ids, so they are pure appends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import polars_hash  # noqa: F401  (registers the ``chash`` expression namespace)

from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, In, Predicate, all_of
from yarn_assets.core.tables import BRONZE_ITEMS, REJECTS
from yarn_assets.ingest.objects import BronzeObject, RawObject, Reject


@dataclass(frozen=True)
class BatchInfo:
    """Facts shared by every object of a batch."""

    user_id: str
    platform: str
    ingest_date: dt.date
    source_kind: str  # import | sync
    provider: str
    batch_id: str
    fetched_at: dt.datetime
    run_id: str | None = None
    connection_id: str | None = None


def bronze_frame(objects: Sequence[RawObject], batch: BatchInfo, seq_start: int = 0) -> pl.DataFrame:
    """Bronze rows of one batch, built column by column (an export can hold millions of objects)."""
    if not objects:
        return BRONZE_ITEMS.empty()
    n = len(objects)
    frame = pl.DataFrame(
        {
            "object_type": [o.object_type for o in objects],
            "resource_id": [o.resource_id for o in objects],
            "resource_name": [o.resource_name for o in objects],
            "external_id": [o.external_id for o in objects],
            "raw": [o.raw for o in objects],
            "context": _contexts_json(objects),
            "is_tombstone": [o.is_tombstone for o in objects],
        },
        schema={"object_type": pl.Utf8, "resource_id": pl.Utf8, "resource_name": pl.Utf8, "external_id": pl.Utf8,
                "raw": pl.Binary, "context": pl.Utf8, "is_tombstone": pl.Boolean},
    )
    raw = pl.col("raw")
    return BRONZE_ITEMS.conform(frame.with_columns(
        pl.lit(batch.user_id, pl.Utf8).alias("user_id"),
        pl.lit(batch.platform, pl.Utf8).alias("platform"),
        pl.lit(batch.ingest_date, pl.Date).alias("ingest_date"),
        pl.lit(batch.source_kind, pl.Utf8).alias("source_kind"),
        pl.lit(batch.provider, pl.Utf8).alias("provider"),
        pl.lit(batch.connection_id, pl.Utf8).alias("connection_id"),
        pl.lit(batch.batch_id, pl.Utf8).alias("batch_id"),
        pl.int_range(seq_start, seq_start + n, dtype=pl.Int64).alias("seq"),
        raw.chash.sha2_256().alias("raw_sha256"),  # type: ignore[attr-defined]
        raw.bin.size().cast(pl.Int64).alias("raw_size"),
        pl.lit(batch.fetched_at, pl.Datetime("us", "UTC")).alias("fetched_at"),
        pl.lit(batch.run_id, pl.Utf8).alias("run_id"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("body_expired_at"),
    ))


def _contexts_json(objects: Sequence[RawObject]) -> list[str]:
    """``context`` as sorted-key JSON; objects of one file share a context, so each distinct one is
    serialized once (contexts with unhashable values are serialized every time)."""
    seen: dict[tuple[tuple[str, type, Any], ...], str] = {}
    out = []
    for o in objects:
        try:  # the value's type is part of the key: 1, 1.0 and True are equal but serialize apart
            key = tuple((k, type(v), v) for k, v in sorted(o.context.items()))
            text = seen.get(key)
            if text is None:
                text = seen[key] = json.dumps(o.context, sort_keys=True, default=str)
        except TypeError:  # a list or dict value: not hashable
            text = json.dumps(o.context, sort_keys=True, default=str)
        out.append(text)
    return out


def reject_frame(
    rejects: Iterable[Reject], *, stage: str, batch: BatchInfo, rejected_at: dt.datetime
) -> pl.DataFrame:
    rows = [
        {
            "user_id": batch.user_id,
            "platform": batch.platform,
            "ingest_date": batch.ingest_date,
            "stage": stage,
            "provider": batch.provider,
            "batch_id": batch.batch_id,
            "object_type": r.object_type,
            "external_id": r.external_id,
            "location": r.location,
            "reason": r.reason,
            "raw": r.raw,
            "raw_sha256": hashlib.sha256(r.raw).hexdigest(),
            "rejected_at": rejected_at,
            "run_id": batch.run_id,
        }
        for r in rejects
    ]
    if not rows:
        return REJECTS.empty()
    return pl.DataFrame(rows, schema=dict(REJECTS.schema))


def _batch_scope(platform: str, ingest_date: dt.date, batch_ids: Sequence[str]) -> Predicate:
    scope = all_of(Eq("platform", platform), Eq("ingest_date", ingest_date), In("batch_id", batch_ids))
    assert scope is not None
    return scope


def write_batch(store: DeltaStore, objects: pl.DataFrame, batch: BatchInfo) -> int:
    """Replace this batch's bronze rows (idempotent replay; an empty batch clears nothing else)."""
    return store.replace(BRONZE_ITEMS, objects, _batch_scope(batch.platform, batch.ingest_date, [batch.batch_id]))


def write_rejects(store: DeltaStore, rejects: pl.DataFrame, *, stage: str, platform: str,
                  ingest_date: dt.date, batch_ids: Sequence[str]) -> int:
    """Replace the rejects of these batches at this stage (re-running a stage does not duplicate)."""
    if not batch_ids:
        return 0
    scope = all_of(_batch_scope(platform, ingest_date, batch_ids), Eq("stage", stage))
    assert scope is not None
    return store.replace(REJECTS, rejects, scope)


def read_partition(store: DeltaStore, platform: str, ingest_date: dt.date) -> pl.DataFrame:
    """Every bronze row of one (platform, ingest day) partition."""
    return store.read(BRONZE_ITEMS, all_of(Eq("platform", platform), Eq("ingest_date", ingest_date)))


def scan_partition(store: DeltaStore, platform: str, ingest_date: dt.date) -> pl.LazyFrame:
    """The same rows as :func:`read_partition`, lazily: readers take the columns and batches they need."""
    lf = store.scan(BRONZE_ITEMS, all_of(Eq("platform", platform), Eq("ingest_date", ingest_date)))
    return lf.select(list(BRONZE_ITEMS.schema)) if lf is not None else BRONZE_ITEMS.empty().lazy()


def to_objects(frame: pl.DataFrame) -> list[BronzeObject]:
    out = []
    for row in frame.iter_rows(named=True):
        out.append(
            BronzeObject(
                object_type=row["object_type"],
                external_id=row["external_id"],
                raw=row["raw"] or b"",
                resource_id=row["resource_id"] or "",
                resource_name=row["resource_name"] or "",
                context=json.loads(row["context"] or "{}"),
                is_tombstone=bool(row["is_tombstone"]),
                seq=int(row["seq"]),
                batch_id=row["batch_id"],
                provider=row["provider"],
                raw_sha256=row["raw_sha256"],
                fetched_at=row["fetched_at"],
            )
        )
    return out
