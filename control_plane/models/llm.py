"""LLM usage accounting and Message Batches bookkeeping."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.models.base import Base, UTCDateTime, new_id, utcnow


class LlmUsage(Base):
    """One row per LLM call: who, what for, which model, tokens and cost (budget enforcement reads it)."""

    __tablename__ = "llm_usage"
    __table_args__ = (Index("ix_llm_usage_user_day", "user_id", "usage_date"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(80))
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    run_id: Mapped[str | None] = mapped_column(String(64))
    asset_key: Mapped[str | None] = mapped_column(String(200))
    partition_key: Mapped[str | None] = mapped_column(String(200))
    usage_date: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)




class LlmBatch(Base):
    """A Message Batches API batch this platform created, so a retried run resumes it instead of paying twice.

    ``fingerprint`` hashes every request of the batch; ``usage_recorded_at`` is set once the
    results' tokens are in ``llm_usage`` (a resumed run does not count them again).
    """

    __tablename__ = "llm_batches"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # the API's batch id
    task: Mapped[str] = mapped_column(String(40))
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    request_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # in_progress | ended | canceled | failed
    run_id: Mapped[str | None] = mapped_column(String(64))
    asset_key: Mapped[str | None] = mapped_column(String(200))
    partition_key: Mapped[str | None] = mapped_column(String(200))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    usage_recorded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
