"""Run bookkeeping in the control plane: the schedule slot, the run requests and the version row.

Only the deliverables domain calls these (the run, the sensors' requests, recipes through
:mod:`yarn_assets.deliverables.service`). :func:`allocate_version` owns its transactions because it
must retry on a lost race; the others take a session and leave committing to the caller.

A version's status changes only in :func:`settle_version` (``VERSION_TRANSITIONS`` lists what may
follow what); the gold row copies the status it returns, so the two stores never disagree.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

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


def allocate_versions(
    session_factory: SessionFactory, wanted: list[tuple[str, str, str]], *, run_id: str, root_run_id: str,
) -> dict[str, tuple[DeliverableVersion, bool]]:
    """:func:`allocate_version` for a round's deliverables (``(deliverable_id, trigger, strategy)``) in one
    transaction: two queries and one commit. A lost race (UNIQUE violation, SQLite lock) rolls the batch
    back and allocates one by one, with the single allocation's retries."""
    ids = [w[0] for w in wanted]
    try:
        with session_factory() as session:
            existing = {v.deliverable_id: v for v in session.scalars(select(DeliverableVersion).where(
                DeliverableVersion.deliverable_id.in_(ids), DeliverableVersion.root_run_id == root_run_id))}
            tops = dict(session.execute(select(DeliverableVersion.deliverable_id, func.max(
                DeliverableVersion.version_number)).where(DeliverableVersion.deliverable_id.in_(ids))
                .group_by(DeliverableVersion.deliverable_id)).all())
            out: dict[str, tuple[DeliverableVersion, bool]] = {}
            for did, trigger, strategy in wanted:
                if did in existing:
                    existing[did].run_id = run_id
                    out[did] = (existing[did], True)
                    continue
                version = DeliverableVersion(
                    deliverable_id=did, version_number=(tops.get(did) or 0) + 1, status="generating",
                    run_id=run_id, root_run_id=root_run_id, trigger=trigger, strategy=strategy, steps=[])
                session.add(version)
                out[did] = (version, False)
            session.flush()
            session.expunge_all()
        return out
    except (IntegrityError, OperationalError) as exc:
        if isinstance(exc, OperationalError) and "locked" not in str(exc).lower():
            raise
        return {did: allocate_version(session_factory, deliverable_id=did, run_id=run_id, root_run_id=root_run_id,
                                      trigger=trigger, strategy=strategy) for did, trigger, strategy in wanted}


def lineage_started(session: Session, deliverable_id: str, root_run_id: str) -> bool:
    """The run lineage already has a version: a re-execution resumes it (the freshness gate must not skip it)."""
    return session.scalar(select(DeliverableVersion.id).where(
        DeliverableVersion.deliverable_id == deliverable_id,
        DeliverableVersion.root_run_id == root_run_id).limit(1)) is not None


def mark_ran(session: Session, deliverable_id: str, now: dt.datetime) -> None:
    """The deliverable produced a version at ``now`` (the freshness gate compares content with it)."""
    d = session.get(Deliverable, deliverable_id)
    if d is not None:
        d.last_run_at = now


#: What a version's status may become. ``generating`` is allocated; ``generated``/``empty`` are the
#: stored text (the checkpoint a resumed run starts from); ``delivered``/``empty``/``failed`` end a run.
#: A resumed run may repeat a status or recover a failed one; ``delivered`` can still fail after the
#: send (a later step), and a recipe delivers straight from ``generating``.
VERSION_TRANSITIONS: dict[str, frozenset[str]] = {
    "generating": frozenset({"generated", "empty", "failed", "delivered"}),
    "generated": frozenset({"generated", "delivered", "failed"}),
    "empty": frozenset({"empty", "failed"}),
    "failed": frozenset({"generated", "empty", "delivered", "failed"}),
    # a replayed recipe step may store a delivered version's text again (the outbox still sends it once)
    "delivered": frozenset({"delivered", "failed", "generated"}),
}


class InvalidTransition(ValueError):
    """A status change the version's lifecycle does not allow (a bug in the caller)."""


@dataclass(frozen=True)
class VersionState:
    """The version's control-plane state after a transition: what the gold row copies."""

    status: str
    delivery_status: str | None
    delivery_error: str | None
    delivered_at: dt.datetime | None
    generated_at: dt.datetime | None

    def gold_fields(self) -> dict[str, Any]:
        return {"status": self.status, "delivery_status": self.delivery_status,
                "delivery_error": self.delivery_error, "delivered_at": self.delivered_at}


def settle_version(
    session: Session,
    version_id: str,
    status: str,
    *,
    now: dt.datetime | None = None,
    steps: list[dict[str, Any]] | None = None,
    delivery_status: str | None = None,
    delivery_error: str | None = None,
    error: str | None = None,
    generated: bool = False,
) -> VersionState:
    """The one place a version's status changes.

    ``generated=True`` (the text was just stored) stamps ``generated_at``; a delivery outcome
    (``delivery_status``) is recorded with its error and, when delivered, ``delivered_at`` (first
    time only); ``error`` is kept for ``failed`` and cleared otherwise; ``steps`` replaces the list.
    """
    if status not in VERSION_TRANSITIONS:
        raise InvalidTransition(f"unknown version status {status!r}")
    now = now or utcnow()
    v = session.get(DeliverableVersion, version_id)
    if v is None:
        raise InvalidTransition(f"no version {version_id!r}")
    current = v.status or "generating"
    if status not in VERSION_TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"version {version_id}: {current} -> {status} is not allowed")
    v.status = status
    if generated or (status == "delivered" and v.generated_at is None):
        v.generated_at = now
    if delivery_status is not None:
        v.delivery_status, v.delivery_error = delivery_status, delivery_error
        if delivery_status == "delivered":
            v.delivered_at = v.delivered_at or now
    v.error = error if status == "failed" else None
    if steps is not None:
        v.steps = steps
    return VersionState(status=v.status, delivery_status=v.delivery_status, delivery_error=v.delivery_error,
                        delivered_at=v.delivered_at, generated_at=v.generated_at)
