"""Pending OAuth consents of the connection flows (yarn_assets.connect)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.models.base import Base, UTCDateTime, utcnow


class OAuthState(Base):
    """A pending OAuth consent: the CSRF ``state`` (stored as its SHA-256), who started it, and the
    PKCE verifier (encrypted). Single use (``used_at``), expiring."""

    __tablename__ = "oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))  # slack | google | notion
    platforms: Mapped[list[Any]] = mapped_column(JSON, default=list)
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    verifier_encrypted: Mapped[str | None] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(32))  # connected | refused:<reason>
