"""Delta tables of the memory domain: the memory products (gold). Memory starts at silver chats.

Layout under the warehouse root::

    gold/memory_facts                every fact extracted per night with its decision (kept / junk reason)
    gold/session_summaries           2–4 sentence summaries of sessions with >= 5 user messages
    gold/activity_patterns           rule-based patterns detected per user and day
    gold/deliverable_suggestions     conversation-analysis suggestions and what became of them
    gold/weekly_digests              the weekly digest of each user and ISO week (sent or skipped)

The chat tables (bronze/chat_items, silver/chat_sessions, silver/chat_messages) belong to the chat
ingest platform (``yarn_assets.ingest.platforms.chat.tables``). The current memory
(``user_context``) and its history live in the control plane: see ``yarn_assets.memory.user_context``.
"""

from __future__ import annotations

import polars as pl

from io_managers.delta_store import TableSpec
from yarn_assets.core.tables import UTC_TS
from yarn_assets.ingest.platforms.chat.tables import (  # noqa: F401  (memory reads these; re-exported)
    BRONZE_CHAT_ITEMS,
    CHAT_MESSAGES,
    CHAT_PLATFORM,
    CHAT_SESSIONS,
)

FACT_CANDIDATES = TableSpec(
    name="gold/memory_facts",
    description="Every fact extracted from a night's sessions, with the junk-filter or upsert decision.",
    schema={
        "candidate_id": pl.Utf8,  # = the history assertion id when kept
        "user_id": pl.Utf8,
        "session_day": pl.Utf8,
        "session_id": pl.Utf8,
        "key": pl.Utf8,
        "value": pl.Utf8,
        "source": pl.Utf8,
        "confidence": pl.Float64,
        "observed_at": UTC_TS,
        "decision": pl.Utf8,  # inserted | replaced | upgraded | outranked | unchanged | rejected
        "reason": pl.Utf8,  # junk reason when rejected
        "extractor": pl.Utf8,  # model name or "offline-rules"
        "offline": pl.Boolean,
    },
    partition_by=("session_day",),
    keys=("candidate_id",),
)

SESSION_SUMMARIES = TableSpec(
    name="gold/session_summaries",
    description="Summaries (2–4 sentences, past tense, third person) of sessions with >= 5 user messages.",
    schema={
        "user_id": pl.Utf8,
        "session_id": pl.Utf8,
        "session_day": pl.Utf8,
        "summary": pl.Utf8,  # "[YYYY-MM-DD] …"
        "user_message_count": pl.Int64,
        "last_message_at": UTC_TS,
        "model": pl.Utf8,
        "offline": pl.Boolean,
    },
    partition_by=("session_day",),
    keys=("user_id", "session_id"),
)

ACTIVITY_PATTERNS = TableSpec(
    name="gold/activity_patterns",
    description="Rule-based activity patterns (confidence 0.6) per user, detected over 30 days of activity_log.",
    schema={
        "user_id": pl.Utf8,
        "pattern_day": pl.Utf8,
        "key": pl.Utf8,
        "value": pl.Utf8,
        "confidence": pl.Float64,
        "source": pl.Utf8,  # pattern | feedback
        "evidence": pl.Utf8,  # JSON counts behind the rule
        "decision": pl.Utf8,
    },
    partition_by=("pattern_day",),
    keys=("user_id", "pattern_day", "key"),
)

DELIVERABLE_SUGGESTIONS = TableSpec(
    name="gold/deliverable_suggestions",
    description="Conversation-analysis suggestions per user and day, and whether each became a deliverable.",
    schema={
        "user_id": pl.Utf8,
        "analysis_day": pl.Utf8,
        "stage": pl.Utf8,
        "deliverable_type": pl.Utf8,
        "platform": pl.Utf8,  # "" for cross-platform types
        "title": pl.Utf8,
        "confidence": pl.Float64,
        "threshold": pl.Float64,
        "decision": pl.Utf8,  # created | below_threshold | duplicate
        "deliverable_id": pl.Utf8,
        "reason": pl.Utf8,
        "model": pl.Utf8,
        "offline": pl.Boolean,
    },
    partition_by=("analysis_day",),
    keys=("user_id", "analysis_day", "deliverable_type", "platform"),
)

WEEKLY_DIGESTS = TableSpec(
    name="gold/weekly_digests",
    description="One weekly digest per user and ISO week: the week's counts and whether it was sent.",
    schema={
        "user_id": pl.Utf8,
        "iso_week": pl.Utf8,  # partition: 2026-W47 (the ISO week of the user's local send time)
        "scheduled_for": UTC_TS,
        "period_start": UTC_TS,
        "period_end": UTC_TS,
        "versions_delivered": pl.Int64,
        "new_memory": pl.Int64,
        "syncs": pl.Int64,
        "status": pl.Utf8,  # sent | skipped_empty | already_sent | failed
        "recipient": pl.Utf8,
        "transport": pl.Utf8,  # smtp | outbox
        "message_id": pl.Utf8,
    },
    partition_by=("iso_week",),
    keys=("user_id", "iso_week"),
)

MEMORY_TABLES = (
    FACT_CANDIDATES,
    SESSION_SUMMARIES,
    ACTIVITY_PATTERNS,
    DELIVERABLE_SUGGESTIONS,
    WEEKLY_DIGESTS,
)

TABLES = MEMORY_TABLES
