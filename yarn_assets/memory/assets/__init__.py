"""Memory assets: from silver chats (the chat ingest platform) and activity_log to facts, summaries,
patterns; analysis; weekly digests.

The nightly per-user assets (facts, summaries, patterns) are partitioned by (UTC day × user shard)
(``common.memory_partitions``, shards from the ``user_shards`` setting) and idempotent per (day,
shard): re-materializing one replaces the shard's users' rows of that day's gold partition with the
same rows (other shards' rows untouched), upserts nothing new into ``user_context`` (deterministic
assertion ids) and writes no new events (deterministic event keys). Conversation analysis is per
day. See ``docs/memory.md``. One module per product, jobs here.
"""

import dagster as dg

from yarn_assets.core.shards import DEFAULT_SHARDS
from yarn_assets.memory.assets.common import (
    ACTIVITY_LOG_SPEC,
    ACTIVITY_PATTERNS_KEY,
    MEMORY_FACTS,
    SESSION_SUMMARIES_KEY,
    SUGGESTIONS_KEY,
    WEEKLY_DIGESTS_KEY,
    day_key,
    day_keys,
    digest_hours,
    memory_days,
    memory_partitions,
)
from yarn_assets.memory.assets.digests import weekly_digests
from yarn_assets.memory.assets.facts import build_memory_facts, memory_facts
from yarn_assets.memory.assets.patterns import activity_patterns, build_activity_patterns
from yarn_assets.memory.assets.suggestions import deliverable_suggestions
from yarn_assets.memory.assets.summaries import build_session_summaries, session_summaries

# =========================================================================== jobs
#: The nightly per-user memory of one (day, user shard). Its partitions come from the assets, so one job object
#: serves every shard count (the chat-import sensor targets it too). Silver chats (one day, every user) are
#: not in it: a job holds one partitions definition, and the chat platform lands them (import runs, the
#: 00:00 automation) before facts and summaries follow them.
memory_nightly_job = dg.define_asset_job(
    "memory_nightly_job",
    selection=dg.AssetSelection.assets(MEMORY_FACTS, SESSION_SUMMARIES_KEY, ACTIVITY_PATTERNS_KEY),
    description="Nightly memory of one UTC day and user shard: facts, summaries, patterns of the shard's users "
    "(partition keys `2026-11-22|0`; a night is every shard of the day). Backfill every shard of a week with "
    "`yarnnn backfill --select gold/memory_facts,gold/session_summaries,gold/activity_patterns --dates "
    "2026-11-16..2026-11-22 --shards all`.",
)
conversation_analysis_job = dg.define_asset_job(
    "conversation_analysis_job", selection=dg.AssetSelection.assets(SUGGESTIONS_KEY),
    description="Conversation analysis of the 7 days ending on the partition day.",
)
weekly_digest_job = dg.define_asset_job(
    "weekly_digest_job", selection=dg.AssetSelection.assets(WEEKLY_DIGESTS_KEY),
    description="Weekly digests of the users due in one UTC hour.",
)


def build_assets(shards: int = DEFAULT_SHARDS) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """The memory assets, the nightly ones over ``shards`` user shards."""
    return [build_memory_facts(shards), build_session_summaries(shards), build_activity_patterns(shards),
            deliverable_suggestions, weekly_digests, ACTIVITY_LOG_SPEC]


ASSETS = [memory_facts, session_summaries, activity_patterns,
          deliverable_suggestions, weekly_digests, ACTIVITY_LOG_SPEC]
JOBS = [memory_nightly_job, conversation_analysis_job, weekly_digest_job]

__all__ = [
    "ACTIVITY_PATTERNS_KEY", "ASSETS", "JOBS", "MEMORY_FACTS", "SESSION_SUMMARIES_KEY",
    "SUGGESTIONS_KEY", "WEEKLY_DIGESTS_KEY", "activity_patterns", "build_assets",
    "conversation_analysis_job", "day_key", "day_keys", "deliverable_suggestions",
    "digest_hours", "memory_days", "memory_facts", "memory_nightly_job", "memory_partitions", "session_summaries",
    "weekly_digest_job", "weekly_digests",
]
