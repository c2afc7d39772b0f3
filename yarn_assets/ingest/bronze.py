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

import polars as pl

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
    rows = [
        {
            "user_id": batch.user_id,
            "platform": batch.platform,
            "ingest_date": batch.ingest_date,
            "source_kind": batch.source_kind,
            "provider": batch.provider,
            "connection_id": batch.connection_id,
            "batch_id": batch.batch_id,
            "seq": seq_start + i,
            "object_type": obj.object_type,
            "resource_id": obj.resource_id,
            "resource_name": obj.resource_name,
            "external_id": obj.external_id,
            "raw": obj.raw,
            "raw_sha256": obj.sha256,
            "raw_size": len(obj.raw),
            "context": json.dumps(obj.context, sort_keys=True, default=str),
            "is_tombstone": obj.is_tombstone,
            "fetched_at": batch.fetched_at,
            "run_id": batch.run_id,
            "body_expired_at": None,
        }
        for i, obj in enumerate(objects)
    ]
    if not rows:
        return BRONZE_ITEMS.empty()
    return BRONZE_ITEMS.conform(pl.DataFrame(rows, schema=dict(BRONZE_ITEMS.schema)))


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
