"""Silver catch-up: find the bronze batches no live run will merge, and plan the runs that will.

Used by ``silver_catchup_sensor`` (every minute, unattended) and by ``yarnnn import run``. A batch
needs catching up when it is in bronze but not merged into silver, and the run that wrote it has
ended or died (a SIGKILL during the silver step, a sync killed mid-way, a run worker lost with its
host). Dead runs are told apart from slow ones by :func:`yarn_assets.core.runs.run_state`.
Every catch-up request is counted on the batch; after ``max_requests`` the batch is ``failed``
with the reason (and so is its import job): nothing is retried forever.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from sqlalchemy.orm import Session

from control_plane.models import ImportJob, utcnow
from yarn_assets.core.runs import run_state
from yarn_assets.ingest import batches

#: Runs that have not ended yet (queued ones included: they will run the step).
ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
          DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


@dataclass
class CatchupPlan:
    partitions: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (day, platform) -> batch ids
    attempts: dict[str, int] = field(default_factory=dict)  # batch id -> catch-up requests so far
    failed: dict[str, str] = field(default_factory=dict)  # batch id -> reason
    writers_died: int = 0  # landing batches whose writer died (now landed)
    waiting: int = 0  # unmerged batches a live run still owns


def partition_busy(instance: DagsterInstance | None, partition_key: str, *, stale_after: dt.timedelta,
                   now: dt.datetime) -> bool:
    """A live run of this partition exists (it will merge what is unmerged)."""
    if instance is None:
        return False
    records = instance.get_run_records(RunsFilter(tags={"dagster/partition": partition_key}, statuses=ACTIVE))
    return any(run_state(instance, r.dagster_run.run_id, since=None, stale_after=stale_after, now=now)[0] == "alive"
               for r in records)


def plan(session: Session, instance: DagsterInstance | None, *, max_requests: int, stale_after: dt.timedelta,
         now: dt.datetime | None = None) -> CatchupPlan:
    """Decide, and record on the ledger, which partitions need a catch-up silver run now."""
    now = now or utcnow()
    out = CatchupPlan()
    grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
    busy: dict[tuple[str, str], bool] = {}
    for row in batches.unmerged(session):
        state, why = run_state(instance, row.writer_run_id, since=row.landed_at or row.updated_at,
                               stale_after=stale_after, now=now)
        if state == "alive":
            out.waiting += 1
            continue
        if row.status == "landing":  # its sync died mid-way: what it committed is the batch
            row.status, row.landed_at = "landed", row.updated_at  # the writer's last sign of life
            row.error = f"writer ended before finishing the batch ({why}); merging what it committed"
            out.writers_died += 1
        key = (row.ingest_date, row.platform)
        if key not in busy:
            busy[key] = partition_busy(instance, f"{key[0]}|{key[1]}", stale_after=stale_after, now=now)
        if busy[key]:
            out.waiting += 1
            continue
        if row.merge_requests >= max_requests:
            reason = (f"bronze batch {row.batch_id} still not merged into silver after {row.merge_requests} "
                      f"catch-up runs (see the failed silver runs of {key[0]}|{key[1]}); replay the partition "
                      "after fixing the cause")
            row.status, row.error = "failed", reason
            job = session.get(ImportJob, row.batch_id)
            if job is not None and job.status in ("landed", "processing"):
                job.status, job.error, job.completed_at = "failed", reason, now
            out.failed[row.batch_id] = reason
            continue
        row.merge_requests += 1
        out.attempts[row.batch_id] = row.merge_requests
        grouped[key].append(row.batch_id)
    out.partitions = dict(grouped)
    return out
