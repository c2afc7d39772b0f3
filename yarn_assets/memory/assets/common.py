"""Shared pieces of the memory assets: asset keys, partitions, retry policies, context helpers."""


import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from io_managers.delta_store import DeltaStore, TableSpec
from io_managers.predicates import In, Predicate, all_of
from resources.llm import LLMScope
from yarn_assets.core import metadata as md
from yarn_assets.core.automation import NIGHTLY_CRON, eager_for_yesterday, on_cron_for_yesterday
from yarn_assets.core.partitions import ingest_days
from yarn_assets.core.shards import (
    DEFAULT_SHARDS,
    SHARD_DIMENSION,
    in_shard,
    shard_in_key,
    shard_keys,
    shard_partitions,
    time_in_key,
)

# memory starts at the chat platform's silver tables
from yarn_assets.ingest.platforms.chat.tables import SILVER_MESSAGES as SILVER_MESSAGES
from yarn_assets.ingest.platforms.chat.tables import SILVER_SESSIONS as SILVER_SESSIONS

MEMORY_FACTS = dg.AssetKey(["gold", "memory_facts"])
SESSION_SUMMARIES_KEY = dg.AssetKey(["gold", "session_summaries"])
ACTIVITY_PATTERNS_KEY = dg.AssetKey(["gold", "activity_patterns"])
SUGGESTIONS_KEY = dg.AssetKey(["gold", "deliverable_suggestions"])
WEEKLY_DIGESTS_KEY = dg.AssetKey(["gold", "weekly_digests"])

memory_days = ingest_days
DAY_DIMENSION = "date"
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

#: The nightly chain: its heads (silver chats, patterns) on the 00:00 UTC tick, facts and summaries eager.
NIGHTLY = on_cron_for_yesterday(NIGHTLY_CRON)
NIGHTLY_EAGER = eager_for_yesterday()


def memory_partitions(shards: int = DEFAULT_SHARDS) -> dg.MultiPartitionsDefinition:
    """(UTC day × user shard) of the nightly per-user assets; keys read ``2026-11-22|0`` (dimensions in
    name order: date, shard), like ingest's ``2026-11-22|slack``."""
    return dg.MultiPartitionsDefinition({DAY_DIMENSION: memory_days, SHARD_DIMENSION: shard_partitions(shards)})


def day_key(day: str, shard: str | None = None) -> str:
    """The partition key of ``day`` (``YYYY-MM-DD``) and ``shard`` (default: the first shard)."""
    return str(dg.MultiPartitionKey({DAY_DIMENSION: day, SHARD_DIMENSION: shard if shard is not None else "0"}))


def day_keys(day: str, shards: int) -> list[str]:
    """Every shard's partition key of ``day``: what a night, a re-run or a backfill of one day runs."""
    return [day_key(day, s) for s in shard_keys(shards)]


@dataclass(frozen=True)
class Shard:
    """The user shard a (day, shard) run works on: ``key`` of ``count`` shards."""

    key: str = "0"
    count: int = DEFAULT_SHARDS

    def users(self, user_ids: Iterable[str]) -> list[str]:
        """The shard's users among ``user_ids``, sorted (all of them with one shard)."""
        ids = sorted(set(user_ids))
        return ids if self.count == 1 else in_shard(ids, self.key, self.count)

    def label(self) -> str:
        return f"{self.key} of {self.count}"


def _shard(context: AssetExecutionContext, shards: int) -> Shard:
    return Shard(shard_in_key(context.partition_key), shards)


def _day(context: AssetExecutionContext) -> tuple[str, dt.datetime, dt.datetime]:
    """The (day, start, end) of a (date|shard) run."""
    window = context.partition_time_window
    return time_in_key(context.partition_key), window.start.astimezone(dt.UTC), window.end.astimezone(dt.UTC)


def _run_id(context: AssetExecutionContext) -> str:
    return context.run.run_id


def _replace(store: Any, spec: Any, frame: pl.DataFrame, predicate: Any) -> int:
    """Replace one partition of a gold table (created empty first, so it exists even with no rows)."""
    store.ensure(spec)
    return store.replace(spec, frame, predicate)


def _replace_shard(store: DeltaStore, spec: TableSpec, frame: pl.DataFrame, day: Predicate, shard: Shard,
                   run_users: Iterable[str]) -> int:
    """Replace the shard's part of one day of a gold table, leaving the other shards' rows alone.

    With one shard that is the whole day (``day``). Otherwise the rows of the shard's users: those of
    this run and those already in the day (a user whose rows a previous run wrote but who has nothing
    today is found in the table and hashed like the others), so a re-run of (day, shard) is idempotent.
    """
    store.ensure(spec)
    if shard.count == 1:
        return store.replace(spec, frame, day)
    lf = store.scan(spec, day)
    present = [] if lf is None else lf.select("user_id").unique().collect()["user_id"].to_list()
    users = shard.users([*present, *run_users]) or [""]
    where = all_of(day, In("user_id", users))
    assert where is not None
    return store.replace(spec, frame, where)


def _scope(context: AssetExecutionContext, key: dg.AssetKey) -> LLMScope:
    return LLMScope.from_context(context, asset_key=key.to_user_string())



def _table_md(store: DeltaStore, spec: TableSpec, partition_rows: int | None = None) -> dict[str, Any]:
    """The catalog's standard metadata (row count, columns, table name, URI) of a memory table."""
    return md.table_metadata_of(store, spec, partition_rows=partition_rows)
