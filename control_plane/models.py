"""Control-plane schema: mutable configuration and state that needs transactions.

Content never lives here (it is in the Delta warehouse); these tables hold who the users are,
how to reach their platforms, where each sync left off, which deliverables exist and when they
are due. SQLite by default, PostgreSQL in production; the schema is managed by Alembic
(``control_plane/migrations``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC on the way in and out, on SQLite (naive storage) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the control plane stores UTC-aware times only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


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


class PeopleDecision(Base):
    """A user's own merge or split of contacts; the identity pass applies the active ones.

    ``merge``: identifiers ``identifier`` and ``others[0]`` are one person (a manual link, confidence 1).
    ``split``: ``identifier`` is never the same person as any of ``others`` (a cannot-link constraint
    that vetoes whatever links would join them). Revoking a decision (``revoked_at``) undoes it; the
    evidence links stay in gold/identity_links either way.
    """

    __tablename__ = "people_decisions"
    __table_args__ = (Index("ix_people_decisions_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # merge | split
    identifier: Mapped[str] = mapped_column(String(400))
    others: Mapped[list[Any]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DeliverableReview(Base):
    """A user's verdict on a version (``yarn_assets.deliverables.feedback``): approved, rejected or edited.

    Ids and counts only: the edited text and its diff are content and live in the gold Delta table
    ``gold/deliverable_feedback``. A rejection of a signal-created deliverable carries its signal
    (type, ref) and ``blocked_until``: the signal passes do not propose that signal again before then.
    """

    __tablename__ = "deliverable_reviews"
    __table_args__ = (Index("ix_deliverable_reviews_signal", "user_id", "signal_type", "signal_ref"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    deliverable_id: Mapped[str] = mapped_column(ForeignKey("deliverables.id", ondelete="CASCADE"), index=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("deliverable_versions.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # approved | rejected | edited
    chars_before: Mapped[int | None] = mapped_column(Integer)
    chars_after: Mapped[int | None] = mapped_column(Integer)
    signal_type: Mapped[str | None] = mapped_column(String(40))
    signal_ref: Mapped[str | None] = mapped_column(String(300))
    blocked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
