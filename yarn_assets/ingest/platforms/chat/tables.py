"""Delta tables of the chat platform: imported lines (bronze) and sessions/turns (silver).

    bronze/chat_items        raw chat JSONL lines exactly as imported (one batch per import job)
    silver/chat_sessions     one row per (user, session): type, status, times, message counts
    silver/chat_messages     one row per (user, session, sequence): role, content, time

Chat tables are physically partitioned by ``session_day`` (UTC date the session started), the
day the nightly memory reads, so a night's work touches one folder. Memory reads them through
``yarn_assets.memory.chat``.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from io_managers.delta_store import TableSpec
from yarn_assets.core.tables import BRONZE_ITEMS, UTC_TS

CHAT_PLATFORM = "chat"

#: Asset keys: bronze/imported_chats writes bronze/chat_items; the silver keys are the table names.
BRONZE_CHATS = dg.AssetKey(["bronze", "imported_chats"])
SILVER_SESSIONS = dg.AssetKey(["silver", "chat_sessions"])
SILVER_MESSAGES = dg.AssetKey(["silver", "chat_messages"])

BRONZE_CHAT_ITEMS = TableSpec(
    name="bronze/chat_items",
    description="Chat JSONL lines exactly as imported, one batch per import job (same columns as platform_items).",
    schema=dict(BRONZE_ITEMS.schema),
    partition_by=("ingest_date",),
    keys=("batch_id", "seq"),
)

CHAT_SESSIONS = TableSpec(
    name="silver/chat_sessions",
    description="One row per chat session (import or chat app): type, status, times and message counts.",
    schema={
        "user_id": pl.Utf8,
        "session_id": pl.Utf8,
        "session_day": pl.Utf8,  # partition: YYYY-MM-DD (UTC) the session started
        "session_type": pl.Utf8,
        "status": pl.Utf8,
        "started_at": UTC_TS,
        "ended_at": UTC_TS,
        "updated_at": UTC_TS,
        "first_message_at": UTC_TS,
        "last_message_at": UTC_TS,
        "message_count": pl.Int64,
        "user_message_count": pl.Int64,
        "source_kind": pl.Utf8,  # import | chat_app
        "batch_id": pl.Utf8,
    },
    partition_by=("session_day",),
    keys=("user_id", "session_id"),
)

CHAT_MESSAGES = TableSpec(
    name="silver/chat_messages",
    description="One row per chat turn: role, content, UTC time, order within the session.",
    schema={
        "user_id": pl.Utf8,
        "session_id": pl.Utf8,
        "session_day": pl.Utf8,
        "sequence": pl.Int64,
        "role": pl.Utf8,  # user | assistant | system
        "content": pl.Utf8,
        "content_hash": pl.Utf8,
        "created_at": UTC_TS,
        "session_type": pl.Utf8,
        "metadata": pl.Utf8,  # JSON
        "source_kind": pl.Utf8,
        "batch_id": pl.Utf8,
        "fetched_at": UTC_TS,  # orders versions of the same turn (a later version wins)
        "ingest_date": pl.Date,
    },
    partition_by=("session_day",),
    keys=("user_id", "session_id", "sequence"),
)

TABLES = (BRONZE_CHAT_ITEMS, CHAT_SESSIONS, CHAT_MESSAGES)
