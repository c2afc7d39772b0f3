"""Deliverables, their versions, deliveries, run requests and the signal history that triggers them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.models.base import Base, Timestamps, UTCDateTime, new_id, utcnow


class Deliverable(Timestamps, Base):
    __tablename__ = "deliverables"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    deliverable_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | paused | archived
    origin: Mapped[str] = mapped_column(String(24), default="user_configured")
    trigger_type: Mapped[str] = mapped_column(String(16), default="schedule")  # schedule | event | manual
    type_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sources: Mapped[list[Any]] = mapped_column(JSON, default=list)
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    destination: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recipient_context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    platform_variant: Mapped[str | None] = mapped_column(String(40))
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_triggered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    signal_ref: Mapped[str | None] = mapped_column(String(300))


class DeliverableVersion(Base):
    """Version numbering and delivery state; the drafts themselves live in the gold Delta table."""

    __tablename__ = "deliverable_versions"
    __table_args__ = (UniqueConstraint("deliverable_id", "version_number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    deliverable_id: Mapped[str] = mapped_column(ForeignKey("deliverables.id", ondelete="CASCADE"), index=True)
    version_number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="generating")
    run_id: Mapped[str | None] = mapped_column(String(64))
    delivery_status: Mapped[str | None] = mapped_column(String(16))  # pending|delivered|failed|skipped
    delivery_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The first run of a retry/re-execution lineage: a re-executed run resumes this version.
    root_run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    trigger: Mapped[str | None] = mapped_column(String(16))  # schedule | signal | manual | request
    strategy: Mapped[str | None] = mapped_column(String(16))
    steps: Mapped[list[Any] | None] = mapped_column(JSON, default=list)  # [{name, status, ms, detail}] as they run
    generated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class DeliverableDelivery(Base):
    """Delivery outbox: one row per (version, channel, target); the idempotency key is UNIQUE.

    A row is inserted (``sending``) and committed before the send and marked ``sent`` after it, so
    a retried or re-executed run never sends a version twice. A row left in ``sending`` means an
    earlier attempt died mid-send: it is not resent automatically (``yarnnn deliverables resend``).
    """

    __tablename__ = "deliverable_deliveries"
    __table_args__ = (UniqueConstraint("idempotency_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    version_id: Mapped[str] = mapped_column(ForeignKey("deliverable_versions.id", ondelete="CASCADE"), index=True)
    deliverable_id: Mapped[str] = mapped_column(String(36), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # email | slack | file
    target: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="sending")  # sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    external_id: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SignalHistory(Base):
    __tablename__ = "signal_history"
    __table_args__ = (UniqueConstraint("user_id", "signal_type", "signal_ref"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    signal_type: Mapped[str] = mapped_column(String(40))
    signal_ref: Mapped[str] = mapped_column(String(300))
    last_triggered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    deliverable_id: Mapped[str | None] = mapped_column(ForeignKey("deliverables.id", ondelete="SET NULL"))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)




class DeliverableRunRequest(Base):
    """A request to generate a deliverable now.

    Signals write one when they create a deliverable (``reason='signal_emergent'``); the
    deliverables domain turns pending requests into runs of its asset and moves them to
    ``launched`` (with the run id), then ``completed`` or ``failed``. ``idempotency_key`` makes a
    re-run of the same work a no-op.
    """

    __tablename__ = "deliverable_run_requests"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_deliverable_run_requests_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    deliverable_id: Mapped[str] = mapped_column(ForeignKey("deliverables.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(32))  # signal_emergent | signal_trigger | manual
    requested_by: Mapped[str] = mapped_column(String(120))  # e.g. "signals:2026-11-23-10:00"
    idempotency_key: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|launched|completed|failed|cancelled
    run_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    launched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
