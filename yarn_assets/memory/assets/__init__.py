"""Memory assets: chat -> bronze/silver; nightly facts, summaries, patterns; analysis; weekly digests.

Every daily asset is partitioned by UTC day (``yarn_assets.core.partitions.ingest_days``) and
idempotent: re-materializing a day replaces that day's gold partition with the same rows, upserts
nothing new into ``user_context`` (deterministic assertion ids) and writes no new events
(deterministic event keys). See ``docs/memory.md``. One module per product, jobs here.
"""

import dagster as dg

from yarn_assets.memory.assets.chat_import import bronze_imported_chats
from yarn_assets.memory.assets.chat_silver import silver_chat
from yarn_assets.memory.assets.common import (
    ACTIVITY_LOG_SPEC,
    ACTIVITY_PATTERNS_KEY,
    BRONZE_CHATS,
    MEMORY_FACTS,
    SESSION_SUMMARIES_KEY,
    SILVER_MESSAGES,
    SILVER_SESSIONS,
    SUGGESTIONS_KEY,
    WEEKLY_DIGESTS_KEY,
    digest_hours,
    memory_days,
)
from yarn_assets.memory.assets.digests import weekly_digests
from yarn_assets.memory.assets.facts import memory_facts
from yarn_assets.memory.assets.patterns import activity_patterns
from yarn_assets.memory.assets.suggestions import deliverable_suggestions
from yarn_assets.memory.assets.summaries import session_summaries

# =========================================================================== jobs
chat_ingest_job = dg.define_asset_job(
    "chat_ingest_job",
    selection=dg.AssetSelection.assets(BRONZE_CHATS, SILVER_SESSIONS, SILVER_MESSAGES),
    description="Chat imports of one day into bronze, then silver chat sessions/messages.",
)
memory_nightly_job = dg.define_asset_job(
    "memory_nightly_job",
    selection=dg.AssetSelection.assets(SILVER_SESSIONS, SILVER_MESSAGES, MEMORY_FACTS, SESSION_SUMMARIES_KEY,
                                       ACTIVITY_PATTERNS_KEY),
    description="Nightly memory of one UTC day: chat-app sessions into silver, facts, summaries, patterns. Backfill "
    "with `dagster job backfill -j memory_nightly_job --from 2026-11-16 --to 2026-11-22`.",
)
conversation_analysis_job = dg.define_asset_job(
    "conversation_analysis_job", selection=dg.AssetSelection.assets(SUGGESTIONS_KEY),
    description="Conversation analysis of the 7 days ending on the partition day.",
)
weekly_digest_job = dg.define_asset_job(
    "weekly_digest_job", selection=dg.AssetSelection.assets(WEEKLY_DIGESTS_KEY),
    description="Weekly digests of the users due in one UTC hour.",
)

ASSETS = [bronze_imported_chats, silver_chat, memory_facts, session_summaries, activity_patterns,
          deliverable_suggestions, weekly_digests, ACTIVITY_LOG_SPEC]
JOBS = [chat_ingest_job, memory_nightly_job, conversation_analysis_job, weekly_digest_job]

__all__ = [
    "ACTIVITY_PATTERNS_KEY", "ASSETS", "BRONZE_CHATS", "JOBS", "MEMORY_FACTS", "SESSION_SUMMARIES_KEY",
    "SILVER_MESSAGES", "SILVER_SESSIONS", "SUGGESTIONS_KEY", "WEEKLY_DIGESTS_KEY", "activity_patterns",
    "bronze_imported_chats", "chat_ingest_job", "conversation_analysis_job", "deliverable_suggestions",
    "digest_hours", "memory_days", "memory_facts", "memory_nightly_job", "session_summaries", "silver_chat",
    "weekly_digest_job", "weekly_digests",
]
