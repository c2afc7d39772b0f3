"""Gold tables of the signals domain and the hourly partitions that write them.

Both tables are physically partitioned by ``signal_date`` (the UTC day of the partition hour), and
an hourly run replaces exactly its hour (``signal_date = d AND partition_hour = h``, narrowed to the
users and passes it processed), so re-running an hour rewrites that hour and nothing else. Rows
carry no run id or wall-clock time: re-running a past hour on unchanged inputs writes identical rows
(the run is linked through the materialization metadata and ``llm_usage``).
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from io_managers.delta_store import TableSpec
from yarn_assets.core.partitions import PARTITIONS_START
from yarn_assets.core.tables import UTC_TS

SUMMARIES_KEY = dg.AssetKey(["gold", "signal_summaries"])
ACTIONS_KEY = dg.AssetKey(["gold", "signal_actions"])

#: ``end_offset=1``: the current hour exists, for manual triggers and the demo.
signal_hours = dg.HourlyPartitionsDefinition(
    start_date=f"{PARTITIONS_START}-00:00", timezone="UTC", end_offset=1
)

PASSES = ("calendar_only", "non_calendar")

SIGNAL_SUMMARIES = TableSpec(
    name="gold/signal_summaries",
    description="One row per (hour, user, pass): what was extracted from silver, and what the pass did.",
    schema={
        "signal_date": pl.Date,
        "partition_hour": UTC_TS,
        "user_id": pl.Utf8,
        "pass": pl.Utf8,  # calendar_only | non_calendar
        "trigger": pl.Utf8,  # schedule | manual (a manual pass of the hour is kept beside the scheduled one)
        "as_of": UTC_TS,  # the pass's notion of "now": the hour's end, or the run time for the current hour
        "items_total": pl.Int64,
        "calendar_items": pl.Int64,
        "gmail_items": pl.Int64,
        "slack_items": pl.Int64,
        "notion_items": pl.Int64,
        "platforms_queried": pl.List(pl.Utf8),
        "content_summary": pl.Utf8,  # the deterministic summary (first 10 per platform, as the original)
        "refs": pl.List(pl.Utf8),  # signal refs the decision may cite
        "fingerprint": pl.Utf8,  # wake gate: content + time-sensitive candidates
        "new_items": pl.Int64,  # items fetched since the previous evaluated pass
        "previous_pass_hour": UTC_TS,
        "status": pl.Utf8,  # evaluated | skipped | failed
        "skip_reason": pl.Utf8,  # too_few_items | wake_gate | budget_exhausted
        "error": pl.Utf8,
        "engine": pl.Utf8,  # model name, or offline-rules
        "offline": pl.Boolean,
        "llm_calls": pl.Int64,
        "input_tokens": pl.Int64,
        "output_tokens": pl.Int64,
        "cache_read_tokens": pl.Int64,
        "cache_write_tokens": pl.Int64,
        "cost_usd": pl.Float64,
        "actions_proposed": pl.Int64,
        "actions_executed": pl.Int64,
        "deliverables_created": pl.Int64,
        "deliverables_triggered": pl.Int64,
        "deferred": pl.Int64,  # kept actions held back by the one-per-type rule (wakes the next pass)
        "wake_at": UTC_TS,  # earliest time a new time-sensitive candidate can appear (rules.next_wake)
        "wake_key": pl.Utf8,  # digest of the pass's gate inputs besides content and time (wake.wake_key)
        "reasoning": pl.Utf8,
    },
    partition_by=("signal_date",),
    keys=("partition_hour", "user_id", "pass", "trigger"),
)

SIGNAL_ACTIONS = TableSpec(
    name="gold/signal_actions",
    description="Every action a pass proposed, with its disposition (executed, dropped + reason, recorded).",
    schema={
        "signal_date": pl.Date,
        "partition_hour": UTC_TS,
        "user_id": pl.Utf8,
        "pass": pl.Utf8,
        "trigger": pl.Utf8,
        "seq": pl.Int64,
        "action_type": pl.Utf8,  # create_signal_emergent | trigger_existing | no_action
        "deliverable_type": pl.Utf8,
        "signal_type": pl.Utf8,
        "signal_ref": pl.Utf8,
        "title": pl.Utf8,
        "description": pl.Utf8,
        "confidence": pl.Float64,
        "disposition": pl.Utf8,  # executed | dropped | recorded
        "reason": pl.Utf8,  # why dropped, or what execution did
        "dedup_key": pl.Utf8,  # user|signal_type|signal_ref for creates and triggers
        "deliverable_id": pl.Utf8,  # created or triggered deliverable
        "sources": pl.Utf8,  # JSON
        "signal_context": pl.Utf8,  # JSON: what the action is about (a deferred action is executed from it)
        "engine": pl.Utf8,
        "offline": pl.Boolean,
        "reasoning": pl.Utf8,
        "as_of": UTC_TS,
    },
    partition_by=("signal_date",),
    keys=("partition_hour", "user_id", "pass", "trigger", "seq"),
)

TABLES = (SIGNAL_SUMMARIES, SIGNAL_ACTIONS)
