"""The deliverables domain's service: the only way other code writes deliverables' control-plane rows.

Used by the CLI, the demo, the sensors, the asset and other domains: signals call
:func:`create_from_signal`, :func:`request_generation` and :func:`trigger_now`; the memory
analyst calls :func:`create_suggested`. Reads for other domains are :func:`find`,
:func:`list_for_user`, :func:`active_count`, :func:`due_deliverables` and :func:`pending_requests`.
Every function takes a session and leaves committing to the caller, except
:func:`allocate_version` (re-exported from :mod:`run_state`), which owns its transactions because
it must retry on a lost race.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_plane.models import Deliverable, DeliverableRunRequest, DeliverableVersion, User, new_id, utcnow
from yarn_assets.deliverables import schedule as sched
from yarn_assets.deliverables.delivery.base import parse_destination
from yarn_assets.deliverables.run_state import advance_schedule as advance_schedule
from yarn_assets.deliverables.run_state import allocate_version as allocate_version
from yarn_assets.deliverables.run_state import claim_requests as claim_requests
from yarn_assets.deliverables.run_state import finish_requests as finish_requests
from yarn_assets.deliverables.sources import normalize_sources
from yarn_assets.deliverables.types import active_limit, binding_of, get_type, is_known, signal_classification

STATUSES = ("active", "paused", "archived")
ORIGINS = ("user_configured", "analyst_suggested", "signal_emergent")
TRIGGERS = ("schedule", "signal", "manual", "request")


class DeliverableError(ValueError):
    """Invalid deliverable configuration or an unknown deliverable/user."""


class DeliverableLimitReached(DeliverableError):
    """The user's tier allows no more active deliverables."""


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
                       idempotency_key: str | None = None, details: dict[str, Any] | None = None,
                       now: dt.datetime | None = None) -> DeliverableRunRequest:
    """Ask for a generation now (signals, CLI, API); the requests sensor launches it within 30 s.

    ``reason`` is ``signal_emergent`` | ``signal_trigger`` | ``manual``; a request while another is
    still pending is folded into it (no double runs); ``idempotency_key`` makes a replayed caller a no-op.
    ``details`` (ids and counts, never content) is kept on the request; ``note`` is added to it.
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
        details={**(details or {}), **({"note": note} if note else {})}, status="pending", requested_at=now,
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


def previous_versions(session: Session, deliverable_id: str, limit: int = 20) -> list[DeliverableVersion]:
    return list(session.scalars(
        select(DeliverableVersion).where(DeliverableVersion.deliverable_id == deliverable_id)
        .order_by(DeliverableVersion.version_number.desc()).limit(limit)
    ))


# ---- reads for other domains -----------------------------------------------------------------

def find(session: Session, deliverable_id: str) -> Deliverable | None:
    """By exact id, or None: ids that come from another domain (or a model) are never prefix-matched."""
    return session.get(Deliverable, deliverable_id)


def list_for_user(session: Session, user_id: str) -> list[Deliverable]:
    """Every deliverable of the user, any status."""
    return list(session.scalars(select(Deliverable).where(Deliverable.user_id == user_id)))


def active_count(session: Session, user_id: str) -> int:
    return int(session.scalar(select(func.count()).select_from(Deliverable).where(
        Deliverable.user_id == user_id, Deliverable.status == "active")) or 0)


# ---- writes for other domains ----------------------------------------------------------------

def create_from_signal(
    session: Session,
    *,
    deliverable_id: str,
    user_id: str,
    tier: str,
    deliverable_type: str,
    title: str,
    description: str | None,
    sources: list[dict[str, Any]],
    signal_ref: str,
    signal: dict[str, Any],
    now: dt.datetime,
) -> Deliverable:
    """A one-off ``signal_emergent`` deliverable, due now (signals' ``create_signal_emergent``).

    The id is the caller's deterministic one (a re-run cannot insert a second deliverable); an
    unknown type becomes ``custom``; ``type_config`` carries the original's classification and the
    ``signal`` provenance. Raises :class:`DeliverableLimitReached` when the tier is at its limit.
    """
    limit = active_limit(tier)
    if limit is not None and active_count(session, user_id) >= limit:
        raise DeliverableLimitReached(f"deliverable_limit: {tier} allows {limit} active deliverables")
    dtype = deliverable_type if is_known(deliverable_type) else "custom"
    d = Deliverable(
        id=deliverable_id, user_id=user_id, title=(title or dtype.replace("_", " ").title())[:300],
        description=description or None, deliverable_type=dtype, status="active",
        origin="signal_emergent", trigger_type="manual", schedule={}, destination={}, recipient_context={},
        sources=list(sources), type_config={"classification": signal_classification(dtype), "signal": signal},
        signal_ref=signal_ref, next_run_at=now, last_triggered_at=now,
    )
    session.add(d)
    session.flush()
    return d


def trigger_now(session: Session, deliverable_id: str, *, now: dt.datetime) -> Deliverable:
    """Make a deliverable due now (signals' ``trigger_existing``); the due sensor runs it on its next tick."""
    d = session.get(Deliverable, deliverable_id)
    if d is None:
        raise DeliverableError(f"no deliverable {deliverable_id!r}")
    if d.next_run_at is None or d.next_run_at > now:
        d.next_run_at = now
    d.last_triggered_at = now
    return d


SUGGESTED_SCHEDULE = {"frequency": "weekly", "day": "monday", "time": "09:00"}


def create_suggested(
    session: Session,
    *,
    deliverable_id: str,
    user_id: str,
    deliverable_type: str,
    title: str,
    description: str | None,
    platform: str,
    suggestion: dict[str, Any],
    now: dt.datetime,
) -> Deliverable:
    """A paused ``analyst_suggested`` deliverable (the memory analyst's kept suggestion).

    Nothing runs until the user turns it on: weekly on Monday 09:00 in the user's timezone, mailed
    to the user, reading ``platform`` (all of it) when the type has one.
    """
    user = _user(session, user_id)
    dtype = get_type(deliverable_type).name
    d = Deliverable(
        id=deliverable_id, user_id=user_id, title=title, description=description,
        deliverable_type=dtype, status="paused", origin="analyst_suggested", trigger_type="schedule",
        type_config={"suggestion": suggestion},
        sources=[{"type": "integration_import", "provider": platform, "scope": "auto"}] if platform else [],
        schedule={**SUGGESTED_SCHEDULE, "timezone": user.timezone or "UTC"},
        destination={"platform": "email", "target": user.email, "format": "send"},
        created_at=now, updated_at=now,
    )
    session.add(d)
    session.flush()
    return d
