"""Deliverable definitions and run bookkeeping in the control plane.

Used by the CLI, the demo, the sensors, the asset and other domains (signals call
:func:`request_generation` and :func:`create_deliverable`). Every function takes a session and
leaves committing to the caller, except :func:`allocate_version`, which owns its transactions
because it must retry on a lost race.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from control_plane.models import (
    Deliverable,
    DeliverableRunRequest,
    DeliverableVersion,
    User,
    new_id,
    utcnow,
)
from yarn_assets.deliverables import schedule as sched
from yarn_assets.deliverables.delivery.base import parse_destination
from yarn_assets.deliverables.sources import normalize_sources
from yarn_assets.deliverables.types import binding_of, get_type

STATUSES = ("active", "paused", "archived")
ORIGINS = ("user_configured", "analyst_suggested", "signal_emergent")
TRIGGERS = ("schedule", "signal", "manual", "request")

SessionFactory = Callable[[], AbstractContextManager[Session]]


class DeliverableError(ValueError):
    """Invalid deliverable configuration or an unknown deliverable/user."""


def _user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise DeliverableError(f"unknown user {user_id!r}")
    return user


def get_deliverable(session: Session, deliverable_id: str) -> Deliverable:
    """By id or unique id prefix (the CLI shows 8 characters)."""
    d = session.get(Deliverable, deliverable_id)
    if d is None:
        matches = list(session.scalars(select(Deliverable).where(Deliverable.id.startswith(deliverable_id))))
        if len(matches) != 1:
            raise DeliverableError(f"no deliverable {deliverable_id!r}" if not matches
                                   else f"ambiguous deliverable id prefix {deliverable_id!r}")
        d = matches[0]
    return d


def _validate_recipient(recipient: dict[str, Any] | None) -> dict[str, Any]:
    r = dict(recipient or {})
    unknown = set(r) - {"name", "role", "priorities", "notes"}
    if unknown:
        raise DeliverableError(f"unknown recipient_context fields: {', '.join(sorted(unknown))}")
    if "priorities" in r and not isinstance(r["priorities"], list):
        raise DeliverableError("recipient_context.priorities must be a list")
    return r


def check_sources_fit(deliverable_type: str, sources: list[dict[str, Any]],
                      type_config: dict[str, Any] | None = None) -> None:
    """A platform-bound type reads one platform: a source of another one is refused, naming what fits.

    (A ``slack_channel_digest`` with ``gmail:INBOX`` would otherwise be created and then read
    nothing of what its user asked for.) Cross-platform, research and hybrid types take any platform.
    """
    dtype = get_type(deliverable_type)
    primary = dtype.primary_platform
    if binding_of(dtype.name, type_config) != "platform_bound" or primary is None:
        return
    wrong = [s for s in sources if s.get("platform") != primary]
    if wrong:
        shown = ", ".join(f"{s['platform']}:{s['resource_id']}" if s.get("resource_id") else str(s["platform"])
                          for s in wrong)
        raise DeliverableError(f"{dtype.name} reads {primary} only; {shown} does not fit "
                               f"(allowed platforms: {primary})")


def create_deliverable(
    session: Session,
    *,
    user_id: str,
    deliverable_type: str,
    title: str,
    sources: list[Any] | None = None,
    schedule: dict[str, Any] | None = None,
    destination: dict[str, Any] | None = None,
    recipient_context: dict[str, Any] | None = None,
    type_config: dict[str, Any] | None = None,
    description: str | None = None,
    origin: str = "user_configured",
    trigger_type: str = "schedule",
    signal_ref: str | None = None,
    run_now: bool = False,
    now: dt.datetime | None = None,
) -> Deliverable:
    """Validate and insert; ``next_run_at`` comes from the timezone-aware rule (or now, if ``run_now``)."""
    now = now or utcnow()
    user = _user(session, user_id)
    try:
        dtype = get_type(deliverable_type)
    except ValueError as exc:
        raise DeliverableError(str(exc)) from None
    if origin not in ORIGINS:
        raise DeliverableError(f"unknown origin {origin!r}")
    if not title.strip():
        raise DeliverableError("a deliverable needs a title")
    try:
        norm_schedule = sched.normalize(schedule or dict(dtype.default_schedule), user.timezone)
        dest = parse_destination(destination)
        norm_sources = normalize_sources(sources)
    except ValueError as exc:
        raise DeliverableError(str(exc)) from None
    check_sources_fit(dtype.name, norm_sources, type_config)
    d = Deliverable(
        user_id=user_id,
        title=title.strip()[:300],
        description=description,
        deliverable_type=dtype.name,
        origin=origin,
        trigger_type=trigger_type,
        type_config=dict(type_config or {}),
        sources=norm_sources,
        schedule=norm_schedule,
        destination=dest.as_dict(),
        recipient_context=_validate_recipient(recipient_context),
        signal_ref=signal_ref,
        status="active",
        next_run_at=now if run_now else sched.next_run_at(norm_schedule, now, user_timezone=user.timezone),
        created_at=now,
        updated_at=now,
    )
    session.add(d)
    session.flush()
    return d


EDITABLE = ("title", "description", "sources", "schedule", "destination", "recipient_context", "type_config")


def update_deliverable(session: Session, deliverable_id: str, *, now: dt.datetime | None = None,
                       **changes: Any) -> Deliverable:
    """Edit sources, schedule, destination, recipient context, title or type config (validated)."""
    now = now or utcnow()
    d = get_deliverable(session, deliverable_id)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise DeliverableError(f"cannot edit {', '.join(sorted(unknown))}")
    user = _user(session, d.user_id)
    try:
        if "sources" in changes:
            sources = normalize_sources(changes["sources"])
            check_sources_fit(d.deliverable_type, sources, changes.get("type_config", d.type_config))
            d.sources = sources
        if "destination" in changes:
            d.destination = parse_destination(changes["destination"]).as_dict()
        if "schedule" in changes:
            d.schedule = sched.normalize(changes["schedule"], user.timezone)
            if d.status == "active":
                d.next_run_at = sched.next_run_at(d.schedule, now, user_timezone=user.timezone)
    except ValueError as exc:
        raise DeliverableError(str(exc)) from None
    if "recipient_context" in changes:
        d.recipient_context = _validate_recipient(changes["recipient_context"])
    if "type_config" in changes:
        d.type_config = dict(changes["type_config"] or {})
    if "title" in changes:
        d.title = str(changes["title"]).strip()[:300]
    if "description" in changes:
        d.description = changes["description"]
    d.updated_at = now
    return d


def set_status(session: Session, deliverable_id: str, status: str, *, now: dt.datetime | None = None) -> Deliverable:
    """Pause, resume (next run recomputed from now) or archive."""
    if status not in STATUSES:
        raise DeliverableError(f"unknown status {status!r}")
    now = now or utcnow()
    d = get_deliverable(session, deliverable_id)
    if status == "active" and d.status != "active":
        user = _user(session, d.user_id)
        d.next_run_at = sched.next_run_at(d.schedule, now, user_timezone=user.timezone)
    d.status = status
    d.updated_at = now
    return d


#: request reasons (the shared ``deliverable_run_requests.reason``) -> the run's trigger tag
REQUEST_TRIGGERS = {"signal_emergent": "signal", "signal_trigger": "signal", "manual": "manual"}


def request_generation(session: Session, deliverable_id: str, reason: str = "manual", *,
                       requested_by: str = "cli", note: str | None = None,
                       idempotency_key: str | None = None, now: dt.datetime | None = None) -> DeliverableRunRequest:
    """Ask for a generation now (signals, CLI, API); the requests sensor launches it within 30 s.

    ``reason`` is ``signal_emergent`` | ``signal_trigger`` | ``manual``; a request while another is
    still pending is folded into it (no double runs); ``idempotency_key`` makes a replayed caller a no-op.
    """
    now = now or utcnow()
    d = get_deliverable(session, deliverable_id)
    if d.status == "archived":
        raise DeliverableError(f"deliverable {d.id} is archived")
    if idempotency_key is not None:
        same = session.scalars(select(DeliverableRunRequest)
                               .where(DeliverableRunRequest.idempotency_key == idempotency_key)).first()
        if same is not None:
            return same
    pending = session.scalars(
        select(DeliverableRunRequest).where(DeliverableRunRequest.deliverable_id == d.id,
                                            DeliverableRunRequest.status == "pending")
    ).first()
    if pending is not None:
        return pending
    req = DeliverableRunRequest(
        user_id=d.user_id, deliverable_id=d.id, reason=reason[:32], requested_by=requested_by[:120],
        idempotency_key=(idempotency_key or f"{reason}|{d.id}|{now.isoformat()}|{new_id()}")[:300],
        details={"note": note} if note else {}, status="pending", requested_at=now,
    )
    d.last_triggered_at = now
    session.add(req)
    session.flush()
    return req


def due_deliverables(session: Session, now: dt.datetime) -> list[Deliverable]:
    """Active deliverables whose ``next_run_at`` has come (the original's 5-minute due query)."""
    return list(session.scalars(
        select(Deliverable).where(Deliverable.status == "active", Deliverable.next_run_at.is_not(None),
                                  Deliverable.next_run_at <= now).order_by(Deliverable.next_run_at)
    ))


def pending_requests(session: Session) -> list[DeliverableRunRequest]:
    return list(session.scalars(
        select(DeliverableRunRequest).where(DeliverableRunRequest.status == "pending")
        .order_by(DeliverableRunRequest.requested_at)
    ))


def advance_schedule(session: Session, deliverable_id: str, now: dt.datetime) -> dt.datetime | None:
    """Consume a due slot: ``next_run_at`` moves to the rule's next time after ``now``.

    Called when a run starts (so a failing or skipped run still advances, and a crash never
    leaves the deliverable due forever); a slot still in the future is left alone (manual runs).
    """
    d = get_deliverable(session, deliverable_id)
    if d.next_run_at is None or d.next_run_at > now:
        return d.next_run_at
    if d.trigger_type != "schedule":  # event/manual deliverables (e.g. signal-emergent) have no recurrence
        d.next_run_at = None
        return None
    user = _user(session, d.user_id)
    try:
        d.next_run_at = sched.next_run_at(d.schedule, now, user_timezone=user.timezone, previous=d.next_run_at)
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


def previous_versions(session: Session, deliverable_id: str, limit: int = 20) -> list[DeliverableVersion]:
    return list(session.scalars(
        select(DeliverableVersion).where(DeliverableVersion.deliverable_id == deliverable_id)
        .order_by(DeliverableVersion.version_number.desc()).limit(limit)
    ))
