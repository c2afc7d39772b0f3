"""Import jobs and the bronze batch ledger of the ingest domain."""

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

from control_plane.models.base import Base, Timestamps, UTCDateTime, new_id


class ImportJob(Timestamps, Base):
    """An export file to land in bronze; registered by the CLI or by dropping it in the inbox."""

    __tablename__ = "import_jobs"
    __table_args__ = (
        UniqueConstraint("user_id", "provider", "file_sha256"),
        Index("ix_import_jobs_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))  # slack_export | mbox | eml | ics | notion_export
    original_name: Mapped[str] = mapped_column(String(500))
    stored_path: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    partition_date: Mapped[str] = mapped_column(String(10))  # ingest day (UTC) this job lands in
    # pending -> processing -> landed (bronze committed) -> completed (silver merged) | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims so far; capped (settings.import_max_attempts)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    progress_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    landed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class BronzeBatch(Timestamps, Base):
    """One bronze batch (an import job or one sync of one connection) and whether silver merged it.

    The ledger silver works from: a batch is merged when silver's recorded signature (the run that
    wrote the batch's bronze rows, and their count) equals what bronze holds. A sync batch is
    ``landing`` while its run appends; a batch is ``landed`` once its writer finished (or died:
    what it committed is what it has); ``failed`` after the catch-up gave up on it.
    """

    __tablename__ = "bronze_batches"
    __table_args__ = (
        Index("ix_bronze_batches_partition", "platform", "ingest_date"),
        Index("ix_bronze_batches_status", "status"),
    )

    batch_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    ingest_date: Mapped[str] = mapped_column(String(10))
    source_kind: Mapped[str] = mapped_column(String(8))  # import | sync
    status: Mapped[str] = mapped_column(String(16), default="landing")  # landing | landed | merged | failed
    writer_run_id: Mapped[str | None] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    landed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    merged_run_id: Mapped[str | None] = mapped_column(String(64))  # writer run of the bronze rows merged
    merged_rows: Mapped[int | None] = mapped_column(Integer)
    merged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    merge_requests: Mapped[int] = mapped_column(Integer, default=0)  # catch-up runs requested for it
    error: Mapped[str | None] = mapped_column(Text)
