"""Users, their platform connections, API rate budgets and sync cursors."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.models.base import Base, Timestamps, UTCDateTime, new_id, utcnow


class User(Timestamps, Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(16), default="free")  # free | starter | pro
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    status: Mapped[str] = mapped_column(String(16), default="active")
    digest_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    digest_day: Mapped[int] = mapped_column(Integer, default=1)  # 0 = Sunday, as in the original
    digest_hour: Mapped[int] = mapped_column(Integer, default=9)
    signal_last_manual_trigger_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PlatformConnection(Timestamps, Base):
    """One connection per user and platform; credentials are a Fernet token, never plaintext."""

    __tablename__ = "platform_connections"
    __table_args__ = (UniqueConstraint("user_id", "platform"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))  # slack | gmail | notion | calendar
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|expired|revoked|error|paused
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    account_label: Mapped[str | None] = mapped_column(String(200))  # e.g. workspace name, email
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    landscape: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    landscape_discovered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    selected_sources: Mapped[list[Any] | None] = mapped_column(JSON)  # None = auto-selection
    selection_overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    last_synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Sync lease: one run syncs a connection at a time; the owner renews it while working.
    sync_lease_owner: Mapped[str | None] = mapped_column(String(200))
    sync_lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ApiRateBudget(Base):
    """Request budget per (connection, API method), shared by every run (GCRA: one "theoretical
    arrival time" per key, reserved atomically by a single UPDATE)."""

    __tablename__ = "api_rate_budgets"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    tat: Mapped[float] = mapped_column(Float, default=0.0)  # epoch seconds
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SyncRegistry(Timestamps, Base):
    """Where each (user, platform, resource) sync left off. Cursors advance only after bronze commits."""

    __tablename__ = "sync_registry"
    __table_args__ = (UniqueConstraint("user_id", "platform", "resource_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(String(300))
    resource_name: Mapped[str | None] = mapped_column(String(300))
    platform_cursor: Mapped[str | None] = mapped_column(Text)
    last_synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    source_latest_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
