"""Chat-app sessions and messages, user memory (user_context and its history), notification log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.models.base import Base, Timestamps, UTCDateTime, new_id, utcnow


class ChatSession(Timestamps, Base):
    """A chat session as the assistant's chat application writes it (the original's ``chat_sessions``).

    ``updated_at`` is bumped on every message; the nightly memory run lands these rows in
    ``silver/chat_sessions`` and writes ``summary`` back for sessions it summarized.
    """

    __tablename__ = "chat_sessions"
    __table_args__ = (
        Index("ix_chat_sessions_started_at", "started_at"),
        Index("ix_chat_sessions_updated_at", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_type: Mapped[str] = mapped_column(String(32), default="thinking_partner")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | completed | archived
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    summary: Mapped[str | None] = mapped_column(Text)
    compaction_summary: Mapped[str | None] = mapped_column(Text)


class SessionMessage(Base):
    """One chat turn; ``sequence_number`` orders the turns of a session."""

    __tablename__ = "session_messages"
    __table_args__ = (UniqueConstraint("session_id", "sequence_number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # user | assistant | system
    content: Mapped[str] = mapped_column(Text)
    sequence_number: Mapped[int] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserContext(Timestamps, Base):
    """The current value of each memory key of a user (what prompts read).

    Every value ever asserted, including superseded and outranked ones, is kept in
    :class:`UserContextHistory`; this table is its projection of the current winners.
    """

    __tablename__ = "user_context"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))  # fact:… | preference:… | instruction:… | pattern:…
    value: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # user_stated | conversation | feedback | pattern
    confidence: Mapped[float] = mapped_column(Float, default=1.0)
    source_ref: Mapped[str | None] = mapped_column(String(300))
    valid_from: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # when the user said it (world time)
    assertion_id: Mapped[str] = mapped_column(String(36))  # the history row holding this value


class UserContextHistory(Base):
    """Every assertion of a memory key, bi-temporal (as graphiti's edges).

    ``valid_from``/``valid_to`` are world time (when the value was said / replaced),
    ``recorded_at``/``expired_at`` system time. ``status``: current | superseded (was current,
    replaced by ``superseded_by``) | outranked (a contradiction that lost to a higher-ranked
    value, never current) | retracted (the user removed it). Ids are deterministic, so replaying
    a night inserts nothing.
    """

    __tablename__ = "user_context_history"
    __table_args__ = (Index("ix_user_context_history_user_key", "user_id", "key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    source_ref: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    valid_to: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    superseded_by: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str | None] = mapped_column(Text)


class NotificationLog(Base):
    """At-most-once ledger of user notifications (weekly digests, suggestion emails).

    A sender claims ``(user, kind, period_key)`` before sending; the unique key makes a second
    claim for the same period fail, whatever ran it (schedule tick, retry, backfill).
    """

    __tablename__ = "notification_log"
    __table_args__ = (UniqueConstraint("user_id", "kind", "period_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # weekly_digest | analysis_suggestions
    period_key: Mapped[str] = mapped_column(String(40))  # 2026-W47 | 2026-11-23
    status: Mapped[str] = mapped_column(String(16))  # sending | sent | failed
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(300))
    message_id: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
