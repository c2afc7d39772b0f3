"""Exactly-once delivery per version through the ``deliverable_deliveries`` outbox table.

Protocol: insert (or re-arm a failed) row keyed by ``version:channel:target`` in state
``sending`` and commit *before* the send; mark ``sent`` (with the external id) or ``failed``
(with the error) after it. Hence:

* a retried step or a re-executed run finds ``sent`` and does not send again;
* two concurrent attempts race on the UNIQUE key and only one sends;
* a row still ``sending`` means an earlier attempt died mid-send: whether the message left is
  unknown, so it is not resent automatically (except to the file outbox, whose write is
  idempotent) and the version is marked failed with that explanation; an operator resends with
  ``yarnnn deliverables resend``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane.models import DeliverableDelivery, utcnow
from yarn_assets.deliverables.delivery.base import DeliveryError, Destination

#: channels whose send can be repeated without a second copy reaching anyone
IDEMPOTENT_CHANNELS = frozenset({"file"})

SessionFactory = Callable[[], AbstractContextManager[Session]]


@dataclass
class DeliveryOutcome:
    status: str  # delivered | failed
    channel: str
    target: str
    external_id: str | None = None
    error: str | None = None
    duplicate: bool = False  # an earlier attempt had already delivered this version
    attempts: int = 0


def idempotency_key(version_id: str, dest: Destination) -> str:
    return f"{version_id}:{dest.channel}:{dest.target}"[:200]


def deliver_once(
    session_factory: SessionFactory,
    *,
    version_id: str,
    deliverable_id: str,
    dest: Destination,
    send: Callable[[], str],
    run_id: str | None = None,
    force: bool = False,
) -> DeliveryOutcome:
    """Run ``send`` at most once per (version, destination) unless ``force`` re-arms the row."""
    key = idempotency_key(version_id, dest)
    with session_factory() as session:
        row = session.scalars(select(DeliverableDelivery).where(DeliverableDelivery.idempotency_key == key)).first()
        if row is not None and row.status == "sent" and not force:
            return DeliveryOutcome("delivered", dest.channel, dest.target, row.external_id, duplicate=True,
                                   attempts=row.attempts)
        if (row is not None and row.status == "sending" and not force
                and dest.channel not in IDEMPOTENT_CHANNELS):
            return DeliveryOutcome(
                "failed", dest.channel, dest.target, error=(
                    "an earlier delivery attempt was interrupted mid-send (started "
                    f"{row.updated_at.isoformat()}); not resent automatically to avoid a duplicate"),
                attempts=row.attempts)
        if row is None:
            row = DeliverableDelivery(idempotency_key=key, version_id=version_id, deliverable_id=deliverable_id,
                                      channel=dest.channel, target=dest.target, status="sending", attempts=1,
                                      run_id=run_id)
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                return DeliveryOutcome("failed", dest.channel, dest.target,
                                       error="another run is delivering this version right now")
        else:
            row.status, row.attempts, row.run_id, row.error = "sending", row.attempts + 1, run_id, None
        attempts = row.attempts
    try:
        external_id = send()
    except DeliveryError as exc:
        _finish(session_factory, key, status="failed", error=str(exc))
        return DeliveryOutcome("failed", dest.channel, dest.target, error=str(exc), attempts=attempts)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        _finish(session_factory, key, status="failed", error=error)
        return DeliveryOutcome("failed", dest.channel, dest.target, error=error, attempts=attempts)
    _finish(session_factory, key, status="sent", external_id=external_id)
    return DeliveryOutcome("delivered", dest.channel, dest.target, external_id, attempts=attempts)


def _finish(session_factory: SessionFactory, key: str, *, status: str, error: str | None = None,
            external_id: str | None = None) -> None:
    with session_factory() as session:
        row = session.scalars(select(DeliverableDelivery).where(DeliverableDelivery.idempotency_key == key)).one()
        row.status, row.error = status, error
        if external_id is not None:
            row.external_id = external_id[:300]
        if status == "sent":
            row.sent_at = utcnow()
