"""The bronze batch ledger: which batches of a (day, platform) partition silver has merged.

Bronze is the truth of what landed; the ``bronze_batches`` control-plane table is silver's
watermark. A batch's *signature* is the run that wrote its bronze rows and their count (read from
the ``batch_id``/``run_id`` columns only): a re-landed import (new run) or a sync batch that grew
after silver last saw it differs from the merged signature, so silver merges exactly the batches
whose bronze changed since, and nothing else. Silver records the merged signatures after its
merge commits, so a crash anywhere before that leaves the batch unmerged, and the catch-up
sensor (``sensors/silver_catchup.py``) finds it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from control_plane.models import BronzeBatch, ImportJob, utcnow
from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, all_of
from yarn_assets.core.tables import BRONZE_ITEMS
from yarn_assets.ingest.bronze import BatchInfo

UNMERGED = ("landing", "landed")


@dataclass(frozen=True)
class BronzeFacts:
    """What bronze holds of one batch (constant per batch, so cheap to read)."""

    batch_id: str
    user_id: str
    provider: str
    source_kind: str
    fetched_at: dt.datetime
    run_id: str | None
    rows: int

    @property
    def signature(self) -> tuple[str | None, int]:
        return self.run_id, self.rows


def bronze_facts(store: DeltaStore, platform: str, ingest_date: dt.date) -> dict[str, BronzeFacts]:
    """Every batch of one bronze partition with its signature; reads no raw bodies."""
    lf = store.scan(BRONZE_ITEMS, all_of(Eq("platform", platform), Eq("ingest_date", ingest_date)))
    if lf is None:
        return {}
    facts = (
        lf.group_by("batch_id")
        .agg(pl.col("user_id").first(), pl.col("provider").first(), pl.col("source_kind").first(),
             pl.col("fetched_at").first(), pl.col("run_id").max(), pl.len().alias("rows"))
        .collect()
    )
    return {row["batch_id"]: BronzeFacts(**{**row, "rows": int(row["rows"])}) for row in facts.iter_rows(named=True)}


def _upsert(session: Session, values: dict[str, Any], update: dict[str, Any]) -> None:
    """Insert a ledger row or update it (one statement, so concurrent writers cannot collide)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    now = utcnow()
    stmt = insert(BronzeBatch).values(created_at=now, updated_at=now, merge_requests=0, **values)
    session.execute(stmt.on_conflict_do_update(index_elements=["batch_id"], set_={**update, "updated_at": now}))


def _row(batch: BatchInfo) -> dict[str, Any]:
    return {"batch_id": batch.batch_id, "user_id": batch.user_id, "platform": batch.platform,
            "ingest_date": batch.ingest_date.isoformat(), "source_kind": batch.source_kind}


def record_landing(session: Session, batch: BatchInfo) -> None:
    """A sync batch is about to append (its rows become visible resource by resource)."""
    values = {**_row(batch), "status": "landing", "writer_run_id": batch.run_id, "rows": 0}
    _upsert(session, values, {"status": "landing", "writer_run_id": batch.run_id, "error": None})


def record_landed(session: Session, batch: BatchInfo, rows: int) -> None:
    """The writer finished this batch's bronze rows (an empty batch has nothing to merge, and a sync
    batch a concurrent silver run already merged in full is done too)."""
    now = utcnow()
    existing = session.get(BronzeBatch, batch.batch_id)
    merged = (existing.merged_run_id, existing.merged_rows) if existing is not None else None
    done = rows == 0 or merged == (batch.run_id, rows)
    status = "merged" if done else "landed"
    values = {**_row(batch), "status": status, "writer_run_id": batch.run_id, "rows": rows, "landed_at": now}
    _upsert(session, values, {"status": status, "writer_run_id": batch.run_id, "rows": rows, "landed_at": now,
                              "error": None, "merge_requests": 0})


def to_merge(session: Session, platform: str, day: str, facts: dict[str, BronzeFacts], *,
             full: bool = False) -> list[str]:
    """Batch ids of the partition whose bronze signature silver has not merged (all of them if ``full``).

    An import batch whose job is still being landed (``pending``/``processing``) waits for it to
    be ``landed``; a batch the catch-up gave up on (``failed``) is only merged again by a replay.
    """
    landing_jobs = set(session.scalars(select(ImportJob.id).where(
        ImportJob.id.in_(list(facts)), ImportJob.status.in_(("pending", "processing")))))
    if full:
        return sorted(b for b in facts if b not in landing_jobs)
    ledger = {b.batch_id: b for b in session.scalars(
        select(BronzeBatch).where(BronzeBatch.platform == platform, BronzeBatch.ingest_date == day))}
    out = []
    for batch_id, fact in facts.items():
        row = ledger.get(batch_id)
        if batch_id in landing_jobs or (row is not None and row.status == "failed"):
            continue
        if row is None or (row.merged_run_id, row.merged_rows) != fact.signature:
            out.append(batch_id)
    return sorted(out)


def record_merged(session: Session, platform: str, day: str, merged: list[BronzeFacts]) -> None:
    """After silver's merge committed: these signatures are in silver.

    A batch still ``landing`` (its sync is running) keeps that status: rows it appends later
    change its signature, and its own silver step merges them. Landed batches that hold no
    bronze rows at all are closed too (nothing to merge).
    """
    now = utcnow()
    for fact in merged:
        values = {"batch_id": fact.batch_id, "user_id": fact.user_id, "platform": platform, "ingest_date": day,
                  "source_kind": fact.source_kind or "import", "status": "merged", "writer_run_id": fact.run_id,
                  "rows": fact.rows, "landed_at": fact.fetched_at, "merged_run_id": fact.run_id,
                  "merged_rows": fact.rows, "merged_at": now}
        _upsert(session, values, {"merged_run_id": fact.run_id, "merged_rows": fact.rows, "merged_at": now,
                                  "error": None})
        row = session.get(BronzeBatch, fact.batch_id)
        if row is not None:
            session.refresh(row)
            if row.status in ("landed", "failed") and row.writer_run_id == fact.run_id:
                row.status = "merged"


def close_settled(session: Session, platform: str, day: str, facts: dict[str, BronzeFacts]) -> int:
    """Landed batches of the partition with nothing left to merge: no bronze rows at all (a sync
    that died before its first commit), or bronze rows silver already merged in full (a concurrent
    silver run got there first). They are closed rather than retried."""
    n = 0
    for row in session.scalars(select(BronzeBatch).where(
            BronzeBatch.platform == platform, BronzeBatch.ingest_date == day, BronzeBatch.status == "landed")):
        fact = facts.get(row.batch_id)
        if fact is None or (row.merged_run_id, row.merged_rows) == fact.signature:
            row.status, row.merged_at = "merged", row.merged_at or utcnow()
            row.merged_rows = row.merged_rows if fact is not None else 0
            n += 1
    return n


def unmerged(session: Session) -> list[BronzeBatch]:
    return list(session.scalars(select(BronzeBatch).where(BronzeBatch.status.in_(UNMERGED))
                                .order_by(BronzeBatch.ingest_date, BronzeBatch.platform, BronzeBatch.batch_id)))
