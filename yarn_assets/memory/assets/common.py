"""Shared pieces of the memory assets: asset keys, partitions, retry policies, context helpers."""


import datetime as dt
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from resources.llm import LLMScope
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

