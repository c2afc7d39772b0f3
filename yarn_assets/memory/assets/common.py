"""Shared pieces of the memory assets: asset keys, partitions, retry policies, context helpers."""


import datetime as dt
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from io_managers.delta_store import DeltaStore, TableSpec
from resources.llm import LLMScope
from yarn_assets.core import metadata as md
from yarn_assets.core.partitions import ingest_days

BRONZE_CHATS = dg.AssetKey(["bronze", "imported_chats"])
SILVER_SESSIONS = dg.AssetKey(["silver", "chat_sessions"])
SILVER_MESSAGES = dg.AssetKey(["silver", "chat_messages"])
MEMORY_FACTS = dg.AssetKey(["gold", "memory_facts"])
SESSION_SUMMARIES_KEY = dg.AssetKey(["gold", "session_summaries"])
ACTIVITY_PATTERNS_KEY = dg.AssetKey(["gold", "activity_patterns"])
SUGGESTIONS_KEY = dg.AssetKey(["gold", "deliverable_suggestions"])
WEEKLY_DIGESTS_KEY = dg.AssetKey(["gold", "weekly_digests"])

memory_days = ingest_days
#: ``end_offset=1``: the schedule's tick at HH:00 runs the hour that starts then (users due at HH local).
digest_hours = dg.HourlyPartitionsDefinition(start_date="2024-01-01-00:00", timezone="UTC", end_offset=1)

RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
#: Mail: a refused or dropped SMTP connection is worth retrying soon (the ledger prevents a double send).
MAIL_RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)
OWNERS = ["team:data-platform"]
#: Bump when an asset's logic changes what it writes: Dagster then shows its partitions as stale.
CODE_VERSION = "1"

#: The physical activity_log table (written by every domain through ``core.activity_log``); patterns read it.
ACTIVITY_LOG = dg.AssetKey(["silver", "activity_log"])
ACTIVITY_LOG_SPEC = dg.AssetSpec(
    ACTIVITY_LOG, group_name="core", kinds={"deltalake"},
    description="Typed events every domain writes (yarn_assets.core.activity_log): syncs, imports, signals, "
    "deliverable runs and edits, memory bookkeeping. Not materialized by an asset of its own; declared so the "
    "lineage shows what reads it (activity patterns).",
)

NIGHTLY_CRON = "0 0 * * *"
#: Yesterday's partition only. The day partitions end one day ahead (today exists, imports land in it),
#: so ``on_cron``'s "latest time window" would be today; the nightly chain works on the day that ended.
_YESTERDAY = (dg.AutomationCondition.in_latest_time_window(dt.timedelta(days=2))
              & ~dg.AutomationCondition.in_latest_time_window())
#: Chain head: the day that ended, once per 00:00 UTC tick (what on_cron does, for yesterday).
NIGHTLY = (_YESTERDAY & dg.AutomationCondition.cron_tick_passed(NIGHTLY_CRON, "UTC").since_last_handled()
           & ~dg.AutomationCondition.in_progress()).with_label(f"on_cron({NIGHTLY_CRON}, UTC) for yesterday")
#: Downstream of the head: eager (in the same run when the head is requested), for yesterday only, so an
#: import merging today's chats never extracts memory from a day that is still going on.
NIGHTLY_EAGER = (_YESTERDAY & dg.AutomationCondition.any_deps_updated().since_last_handled()
                 & ~dg.AutomationCondition.any_deps_missing() & ~dg.AutomationCondition.any_deps_in_progress()
                 & ~dg.AutomationCondition.in_progress()).with_label("eager for yesterday")


def _day(context: AssetExecutionContext) -> tuple[str, dt.datetime, dt.datetime]:
    window = context.partition_time_window
    return context.partition_key, window.start.astimezone(dt.UTC), window.end.astimezone(dt.UTC)


def _run_id(context: AssetExecutionContext) -> str:
    return context.run.run_id


def _replace(store: Any, spec: Any, frame: pl.DataFrame, predicate: Any) -> int:
    """Replace one partition of a gold table (created empty first, so it exists even with no rows)."""
    store.ensure(spec)
    return store.replace(spec, frame, predicate)


def _scope(context: AssetExecutionContext, key: dg.AssetKey) -> LLMScope:
    return LLMScope.from_context(context, asset_key=key.to_user_string())



def _table_md(store: DeltaStore, spec: TableSpec, partition_rows: int | None = None) -> dict[str, Any]:
    """The catalog's standard metadata (row count, columns, table name, URI) of a memory table."""
    return md.table_metadata_of(store, spec, partition_rows=partition_rows)
