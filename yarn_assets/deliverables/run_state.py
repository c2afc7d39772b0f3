"""Run bookkeeping in the control plane: the schedule slot, the run requests and the version row.

Only the deliverables domain calls these (the run, the sensors' requests, recipes through
:mod:`yarn_assets.deliverables.service`). :func:`allocate_version` owns its transactions because it
must retry on a lost race; the others take a session and leave committing to the caller.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from control_plane.models import Deliverable, DeliverableRunRequest, DeliverableVersion, User, utcnow
from yarn_assets.deliverables import schedule as sched

SessionFactory = Callable[[], AbstractContextManager[Session]]


def advance_schedule(session: Session, deliverable_id: str, now: dt.datetime) -> dt.datetime | None:
    """Consume a due slot: ``next_run_at`` moves to the rule's next time after ``now``.

    Called when a run starts (so a failing or skipped run still advances, and a crash never
    leaves the deliverable due forever); a slot still in the future is left alone (manual runs).
    """
    d = session.get(Deliverable, deliverable_id)
    if d is None:
        raise ValueError(f"no deliverable {deliverable_id!r}")
    if d.next_run_at is None or d.next_run_at > now:
        return d.next_run_at
    if d.trigger_type != "schedule":  # event/manual deliverables (e.g. signal-emergent) have no recurrence
        d.next_run_at = None
        return None
    user = session.get(User, d.user_id)
    try:
        d.next_run_at = sched.next_run_at(d.schedule, now, user_timezone=user.timezone if user else "UTC",
                                          previous=d.next_run_at)
    except sched.ScheduleError:
        d.next_run_at = None  # an unusable rule stops scheduling; manual runs still work
    return d.next_run_at


def claim_requests(session: Session, deliverable_id: str, run_id: str) -> list[str]:
    """At run start: this deliverable's pending requests become ``launched`` by this run."""
    ids = []
    for req in session.scalars(select(DeliverableRunRequest).where(
            DeliverableRunRequest.deliverable_id == deliverable_id, DeliverableRunRequest.status == "pending")):
        req.status, req.run_id, req.launched_at = "launched", run_id, utcnow()
        ids.append(req.id)
    return ids


def finish_requests(session: Session, deliverable_id: str, run_ids: list[str], *, ok: bool) -> int:
    """At run end: the requests this run lineage launched become ``completed`` or ``failed``
    (a re-execution that succeeds completes the request its failed parent launched)."""
    n = 0
    for req in session.scalars(select(DeliverableRunRequest).where(
            DeliverableRunRequest.deliverable_id == deliverable_id, DeliverableRunRequest.run_id.in_(run_ids),
            DeliverableRunRequest.status.in_(("launched", "failed")))):
        req.status, req.completed_at = ("completed" if ok else "failed"), utcnow()
        n += 1
    return n


def allocate_version(
    session_factory: SessionFactory,
    *,
    deliverable_id: str,
    run_id: str,
    root_run_id: str,
    trigger: str,
    strategy: str,
    max_attempts: int = 20,
) -> tuple[DeliverableVersion, bool]:
    """A new version number for this run lineage, or the lineage's existing version (resumed=True).

    The number is ``max + 1`` read and inserted in one transaction; the UNIQUE
    (deliverable_id, version_number) constraint rejects the loser of a concurrent race, which
    retries with a fresh read. SQLite's "database is locked" on a stale snapshot is retried too.
    """
    last_exc: Exception | None = None
    for attempt in range(max_attempts):
        try:
            with session_factory() as session:
                existing = session.scalars(
                    select(DeliverableVersion).where(DeliverableVersion.deliverable_id == deliverable_id,
                                                     DeliverableVersion.root_run_id == root_run_id)
                ).first()
                if existing is not None:
                    existing.run_id = run_id
                    session.flush()
                    session.expunge(existing)
                    return existing, True
                top = session.scalar(select(func.max(DeliverableVersion.version_number))
                                     .where(DeliverableVersion.deliverable_id == deliverable_id))
                version = DeliverableVersion(
                    deliverable_id=deliverable_id, version_number=(top or 0) + 1, status="generating",
                    run_id=run_id, root_run_id=root_run_id, trigger=trigger, strategy=strategy, steps=[],
                )
                session.add(version)
                session.flush()
                session.expunge(version)
            return version, False
        except (IntegrityError, OperationalError) as exc:
            if isinstance(exc, OperationalError) and "locked" not in str(exc).lower():
                raise
            last_exc = exc
            time.sleep(min(0.5, 0.01 * (2 ** attempt)) * (0.5 + random.random()))
    raise RuntimeError(f"could not allocate a version of {deliverable_id} after {max_attempts} attempts") from last_exc
