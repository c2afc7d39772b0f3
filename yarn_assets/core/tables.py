"""The warehouse's shared tables: names, schemas, physical partitioning and keys.

Layout under the warehouse root::

    bronze/platform_items   raw objects exactly as read (append-only per batch)
    bronze/rejects          what could not be read or normalized, with the reason and raw bytes
    silver/platform_content one current row per item (merge by key)
    silver/activity_log     typed events from every subsystem

Physical partitioning is chosen for the write paths: bronze by (platform, ingest_date) so a
Dagster partition maps to exactly one folder; silver by (platform, created_day), where
``created_day`` is the item's immutable creation day at the source ("undated" when the source
does not say), so an incremental merge touches only the days its items were created on.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from io_managers.delta_store import TableSpec

UTC_TS = pl.Datetime("us", "UTC")

PLATFORMS = ("calendar", "gmail", "notion", "slack")

#: Time-to-live of non-retained content, per platform (ADR-077; the import path must use these too).
TTL = {
    "slack": dt.timedelta(days=14),
    "gmail": dt.timedelta(days=30),
    "notion": dt.timedelta(days=90),
    "calendar": dt.timedelta(days=2),
}

#: Stored content is capped (the hash covers the full text).
CONTENT_MAX_CHARS = 10_000

UNDATED = "undated"

BRONZE_ITEMS = TableSpec(
    name="bronze/platform_items",
    description="Every raw object as fetched or imported; immutable, one batch per import job or sync.",
    schema={
        "user_id": pl.Utf8,
        "platform": pl.Utf8,
        "ingest_date": pl.Date,
        "source_kind": pl.Utf8,  # import | sync
        "provider": pl.Utf8,  # slack_export | mbox | eml | ics | notion_export | slack_api | ...
        "connection_id": pl.Utf8,
        "batch_id": pl.Utf8,  # import job id or sync batch id
        "seq": pl.Int64,  # order within the batch
        "object_type": pl.Utf8,  # see yarn_assets.ingest.objects
        "resource_id": pl.Utf8,
        "resource_name": pl.Utf8,
        "external_id": pl.Utf8,
        "raw": pl.Binary,
        "raw_sha256": pl.Utf8,
        "raw_size": pl.Int64,
        "context": pl.Utf8,  # JSON: what the reader knew beside the raw bytes (channel, label, path)
        "is_tombstone": pl.Boolean,  # the source says the item was deleted/cancelled
        "fetched_at": UTC_TS,
        "run_id": pl.Utf8,
        "body_expired_at": UTC_TS,  # set when the TTL cleared ``raw`` (metadata is kept)
    },
    partition_by=("platform", "ingest_date"),
    keys=("batch_id", "seq"),
    plain_columns=("external_id", "raw", "raw_sha256", "seq", "raw_size"),
)

REJECTS = TableSpec(
    name="bronze/rejects",
    description="Objects that failed to read (stage=bronze) or to normalize (stage=silver).",
    schema={
        "user_id": pl.Utf8,
        "platform": pl.Utf8,
        "ingest_date": pl.Date,
        "stage": pl.Utf8,
        "provider": pl.Utf8,
        "batch_id": pl.Utf8,
        "object_type": pl.Utf8,
        "external_id": pl.Utf8,
        "location": pl.Utf8,  # file/member path or API resource
        "reason": pl.Utf8,
        "raw": pl.Binary,
        "raw_sha256": pl.Utf8,
        "rejected_at": UTC_TS,
        "run_id": pl.Utf8,
    },
    partition_by=("platform", "ingest_date"),
)

PLATFORM_CONTENT = TableSpec(
    name="silver/platform_content",
    description="One current row per item: normalized text, UTC times, TTL and retention.",
    schema={
        "user_id": pl.Utf8,
        "platform": pl.Utf8,
        "created_day": pl.Utf8,  # partition: YYYY-MM-DD of source creation, or "undated"
        "resource_id": pl.Utf8,
        "resource_name": pl.Utf8,
        "external_id": pl.Utf8,
        "content_type": pl.Utf8,  # message | thread_reply | email | page | database_row | event
        "thread_id": pl.Utf8,
        "title": pl.Utf8,
        "author": pl.Utf8,
        "author_id": pl.Utf8,
        "participants": pl.List(pl.Utf8),
        "content": pl.Utf8,
        "content_hash": pl.Utf8,  # sha256 of the full normalized content
        "content_chars": pl.Int64,
        "occurred_at": UTC_TS,  # when it happened: message time, mail date, page edit, event start
        "ends_at": UTC_TS,  # events only
        "source_updated_at": UTC_TS,  # last edit at the source, when known
        "fetched_at": UTC_TS,  # when this version was first read
        "expires_at": UTC_TS,  # fetched_at + TTL; null while retained
        "retained": pl.Boolean,
        "retained_reason": pl.Utf8,
        "retained_ref": pl.Utf8,
        "retained_at": UTC_TS,
        "metadata": pl.Utf8,  # JSON
        "source_kind": pl.Utf8,
        "connection_id": pl.Utf8,
        "batch_id": pl.Utf8,
        "ingest_date": pl.Date,
        "raw_sha256": pl.Utf8,
    },
    partition_by=("platform", "created_day"),
    keys=("user_id", "platform", "resource_id", "external_id"),
    plain_columns=("external_id", "thread_id", "content", "content_hash", "content_chars", "occurred_at",
                   "source_updated_at", "metadata", "raw_sha256"),
    # a first load spans ~90 day partitions at once: 2 048-row groups keep the writer's open buffers
    # ~170 MiB smaller at 1 M rows (benchmarks/README.md); the daily compaction rewrites to large groups
    row_group_rows=2048,
)

ACTIVITY_LOG = TableSpec(
    name="silver/activity_log",
    description="Typed events written by every subsystem (the nervous system).",
    schema={
        "event_id": pl.Utf8,  # deterministic: re-running the same work writes the same id
        "user_id": pl.Utf8,
        "event_type": pl.Utf8,
        "event_ref": pl.Utf8,
        "summary": pl.Utf8,
        "metadata": pl.Utf8,  # JSON
        "created_at": UTC_TS,
        "event_date": pl.Date,
        "run_id": pl.Utf8,
    },
    partition_by=("event_date",),
    keys=("event_id",),
)


def created_day(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).date().isoformat() if value is not None else UNDATED
TABLES = (BRONZE_ITEMS, REJECTS, PLATFORM_CONTENT, ACTIVITY_LOG)
