"""Hourly signal processing as one multi-asset: ``gold/signal_summaries`` and ``gold/signal_actions``.

One op computes both (the summaries feed the decisions in the same pass, and an hour must be
written as a whole). It runs in the ``llm`` pool, retries transient failures, and reports tokens,
cost, calls and skips per pass in the metadata of both assets.
"""


import datetime as dt
from collections import Counter
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext
from pydantic import Field

from resources.control_plane import ControlPlane
from resources.llm import LLM, LLMScope
from resources.signal_policy import SignalPolicy
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.core.shards import DEFAULT_SHARDS, SHARD_DIMENSION, shard_in_key, shard_keys, shard_partitions
from yarn_assets.deliverables import service as deliverables
from yarn_assets.ingest.sources import SILVER_CONTENT
from yarn_assets.signals.actions import dedup_window
from yarn_assets.signals.processing import HourSpec, Policy, run_hour
from yarn_assets.signals.tables import (
    ACTIONS_KEY,
    PASSES,
    SIGNAL_ACTIONS,
    SIGNAL_SUMMARIES,
    SUMMARIES_KEY,
    signal_hours,
)

TRIGGERS = ("schedule", "manual")
#: bump when what the pass computes changes (windows, limits, rules, prompt): the hours then show as stale
CODE_VERSION = "1"
SIGNALS_RETRY = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


class SignalRunConfig(dg.Config):
    """Narrow a run (manual trigger, debugging); the schedule uses the defaults."""

    user_ids: list[str] = Field(default_factory=list, description="Only these users (default: every eligible one).")
    passes: list[str] = Field(default_factory=lambda: list(PASSES), description="calendar_only and/or non_calendar.")
    ignore_wake_gate: bool = Field(default=False, description="Evaluate even when nothing changed (manual runs).")
    execute: bool = Field(default=True, description="False: record decisions without creating or triggering.")
    trigger: str = Field(default="schedule", description="schedule | manual (manual rows sit beside scheduled ones).")


def signal_passes_body(
    context: AssetExecutionContext,
    config: SignalRunConfig,
    warehouse: Warehouse,
    control_plane: ControlPlane,
    llm: LLM,
    signal_policy: SignalPolicy,
    shards: int,
):
    """One (hour, shard) partition: the passes of the shard's users, written as that part of the hour."""
    unknown = sorted(set(config.passes) - set(PASSES))
    if unknown or not config.passes:
        raise dg.Failure(f"unknown signal pass(es) {unknown or config.passes}; expected {', '.join(PASSES)}",
                         allow_retries=False)
    if config.trigger not in TRIGGERS:
        raise dg.Failure(f"unknown trigger {config.trigger!r}; expected {' or '.join(TRIGGERS)}", allow_retries=False)
    window = context.partition_time_window
    now = dt.datetime.now(dt.UTC)
    shard = shard_in_key(context.partition_key)
    spec = HourSpec.for_window(str(context.partition_key), window.start.astimezone(dt.UTC),
                               window.end.astimezone(dt.UTC), now, trigger=config.trigger)
    store = warehouse.store
    policy = Policy(
        excluded_tiers=tuple(signal_policy.excluded_tiers), wake_gate=signal_policy.wake_gate,
        followup_days=signal_policy.followup_days, min_items=signal_policy.min_items,
        min_confidence=signal_policy.min_confidence,
    )
    result, events_written = run_hour(
        store=store, session_factory=control_plane.session, llm=llm, spec=spec, policy=policy,
        scope=LLMScope.from_context(context, asset_key=ACTIONS_KEY.to_user_string()),
        user_ids=config.user_ids or None, passes=config.passes, ignore_wake_gate=config.ignore_wake_gate,
        execute=config.execute, shard=(shard, shards),
        on_failure=lambda p: context.log.error(f"signal pass {p.user_id}/{p.pass_name} failed: {p.error}"),
    )
    if result.ignored_users:
        context.log.warning(f"not eligible for signals (inactive, unknown or excluded tier): {result.ignored_users}")

    summaries, actions = result.summary_frame(), result.action_frame()
    usage = result.usage
    failed = result.failed
    common = {
        "partition_as_of": spec.as_of.isoformat(),
        "shard": f"{shard} of {shards}",
        "trigger": spec.trigger,
        "users": len(result.users),
        "passes": len(result.passes),
        "evaluated": result.count("evaluated"),
        "skipped_too_few_items": result.count("skipped", "too_few_items"),
        "skipped_wake_gate": result.count("skipped", "wake_gate"),
        "evaluated_from_deferred": sum(1 for p in result.passes if p.summary_row.get("engine") == "deferred"),
        "content_loaded": sum(1 for p in result.passes if p.summary_row.get("content_summary") is not None),
        "skipped_budget": result.count("skipped", "budget_exhausted"),
        "failed": len(failed),
        **usage.as_metadata(),
    }
    yield dg.MaterializeResult(
        asset_key=SUMMARIES_KEY,
        metadata={
            **common,
            "rows": summaries.height,
            "items_total": int(summaries["items_total"].sum() or 0) if summaries.height else 0,
            "failed_passes": dg.MetadataValue.json([{"user": p.user_id, "pass": p.pass_name, "error": p.error}
                                                    for p in failed]),
            "passes_by_status": md.counts(summaries, "pass", "status", "skip_reason"),
            **md.table_metadata_of(store, SIGNAL_SUMMARIES, partition_rows=summaries.height),
        },
        check_results=_summary_checks(summaries, failed),
    )
    dispositions = Counter(actions["disposition"].to_list()) if actions.height else Counter()
    dropped = Counter(r.split(":")[0] for r in actions.filter(pl.col("disposition") == "dropped")["reason"].to_list())
    executed = actions.filter(pl.col("disposition") == "executed")
    yield dg.MaterializeResult(
        asset_key=ACTIONS_KEY,
        metadata={
            **common,
            "rows": actions.height,
            "actions_proposed": int(actions.filter(pl.col("action_type") != "no_action").height),
            "executed": dispositions.get("executed", 0),
            "dropped": dispositions.get("dropped", 0),
            "dropped_by_reason": dg.MetadataValue.json(dict(sorted(dropped.items()))),
            "deliverables_created": int(executed.filter(pl.col("action_type") == "create_signal_emergent").height),
            "deliverables_triggered": int(executed.filter(pl.col("action_type") == "trigger_existing").height),
            "replayed": sum(p.replayed for p in result.passes),
            "events_written": events_written,
            "actions_by_type": md.counts(actions, "action_type", "deliverable_type", "disposition"),
            **md.table_metadata_of(store, SIGNAL_ACTIONS, partition_rows=actions.height),
        },
        check_results=_action_checks(control_plane, actions),
    )
    if result.should_retry:
        raise dg.Failure(
            f"every signal decision of {context.partition_key} failed transiently (API unavailable?); retrying",
            metadata={"failed_passes": len(failed)},
        )



def build_signal_passes(shards: int = DEFAULT_SHARDS) -> dg.AssetsDefinition:
    """The hourly signal multi-asset over (hour × user shard) for ``shards`` shards."""

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                SUMMARIES_KEY,
                deps=[dg.AssetDep(SILVER_CONTENT, partition_mapping=dg.AllPartitionMapping())],
                description=(
                    "Per hour, user and pass (calendar_only, non_calendar): the deterministic summary of the user's "
                    "silver content under the original's windows and limits, the wake-gate fingerprint, and what the "
                    "pass did (evaluated / skipped and why / failed), with LLM tokens and cost."
                ),
                group_name="signals", kinds={"deltalake", "polars"}, owners=["team:data-platform"],
                code_version=CODE_VERSION,
            ),
            dg.AssetSpec(
                ACTIONS_KEY,
                deps=[SUMMARIES_KEY],
                description=(
                    "Every action a signal pass proposed (create_signal_emergent, trigger_existing, no_action) "
                    "with its disposition: executed (deliverable created + generation requested, or next_run_at "
                    "set to now), dropped with the reason (confidence, type exists, history dedup, per-pass cap...), "
                    "or recorded. Executed actions write control/deliverables through the deliverables service."
                ),
                group_name="signals", kinds={"deltalake", "polars", "anthropic"}, owners=["team:data-platform"],
                code_version=CODE_VERSION,
            ),
        ],
        partitions_def=signal_partitions(shards),
        pool="llm",
        retry_policy=SIGNALS_RETRY,
        check_specs=[
            dg.AssetCheckSpec("one_row_per_user_pass", asset=SUMMARIES_KEY,
                              description="Each (user, pass) appears once in the hour."),
            dg.AssetCheckSpec("no_failed_passes", asset=SUMMARIES_KEY,
                              description="No user's pass failed (failures are isolated and listed here)."),
            dg.AssetCheckSpec("no_duplicate_action_per_dedup_key", asset=ACTIONS_KEY,
                              description="No two executed actions share a dedup key (user|signal type|ref)."),
            dg.AssetCheckSpec("one_deliverable_per_signal", asset=ACTIONS_KEY,
                              description="Each executed create has exactly one signal deliverable within its window."),
            dg.AssetCheckSpec("deliverables_belong_to_user", asset=ACTIONS_KEY,
                              description="Every created or triggered deliverable belongs to the pass's user."),
        ],
    )
    def signal_passes(
        context: AssetExecutionContext,
        config: SignalRunConfig,
        warehouse: Warehouse,
        control_plane: ControlPlane,
        llm: LLM,
        signal_policy: SignalPolicy,
    ):
        yield from signal_passes_body(context, config, warehouse, control_plane, llm, signal_policy, shards)

    return signal_passes


def _summary_checks(summaries: pl.DataFrame, failed: list[Any]) -> list[dg.AssetCheckResult]:
    dupes = summaries.group_by(["user_id", "pass"]).len().filter(pl.col("len") > 1) if summaries.height else None
    return [
        dg.AssetCheckResult(check_name="one_row_per_user_pass", asset_key=SUMMARIES_KEY,
                            passed=dupes is None or dupes.is_empty(),
                            metadata={"rows": summaries.height, "duplicates": 0 if dupes is None else dupes.height}),
        dg.AssetCheckResult(
            check_name="no_failed_passes", asset_key=SUMMARIES_KEY, passed=not failed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"failed": len(failed), "users": dg.MetadataValue.json(sorted({p.user_id for p in failed}))},
        ),
    ]


def _action_checks(control_plane: ControlPlane, actions: pl.DataFrame) -> list[dg.AssetCheckResult]:
    executed = actions.filter(pl.col("disposition") == "executed") if actions.height else actions
    dupes = executed.group_by("dedup_key").len().filter(pl.col("len") > 1) if executed.height else executed
    creates = executed.filter(pl.col("action_type") == "create_signal_emergent") if executed.height else executed
    multiple: list[str] = []
    foreign: list[str] = []
    with control_plane.session() as session:
        for row in creates.iter_rows(named=True):
            mine = deliverables.find(session, row["deliverable_id"])
            if mine is None:
                multiple.append(f"{row['user_id']}|{row['signal_ref']}: deliverable {row['deliverable_id']} missing")
                continue
            window = dedup_window(row["signal_type"] or "")
            n = deliverables.signal_deliverables_near(session, mine, window)
            if n != 1:
                multiple.append(f"{row['user_id']}|{row['signal_ref']}: {n} deliverables within {window}")
        ids = [r for r in executed["deliverable_id"].drop_nulls().unique().to_list()] if executed.height else []
        owners = deliverables.owners(session, ids)
        for row in executed.iter_rows(named=True):
            if row["deliverable_id"] and owners.get(row["deliverable_id"]) != row["user_id"]:
                foreign.append(f"{row['user_id']} -> {row['deliverable_id']}")
    return [
        dg.AssetCheckResult(check_name="no_duplicate_action_per_dedup_key", asset_key=ACTIONS_KEY,
                            passed=dupes.is_empty(), metadata={"executed": executed.height,
                                                               "duplicate_keys": dupes.height}),
        dg.AssetCheckResult(check_name="one_deliverable_per_signal", asset_key=ACTIONS_KEY, passed=not multiple,
                            metadata={"creates": creates.height, "violations": dg.MetadataValue.json(multiple)}),
        dg.AssetCheckResult(check_name="deliverables_belong_to_user", asset_key=ACTIONS_KEY, passed=not foreign,
                            metadata={"checked": executed.height, "violations": dg.MetadataValue.json(foreign)}),
    ]


def build_signals_job(shards: int = DEFAULT_SHARDS) -> Any:
    return dg.define_asset_job(
        "signals_job",
        selection=dg.AssetSelection.assets(SUMMARIES_KEY, ACTIONS_KEY),
        description="One hour of signal processing for one shard of the eligible users (both passes); the "
        "schedule requests every shard of the hour. Backfill a range with `yarnnn signals backfill --from "
        "2026-11-23-00:00 --to 2026-11-23-23:00` or `dagster job backfill -j signals_job`.",
    )


def signal_partitions(shards: int) -> dg.MultiPartitionsDefinition:
    """(hour × user shard); keys read ``2026-11-23-13:00|0`` (dimensions in name order: hour, shard)."""
    return dg.MultiPartitionsDefinition({"hour": signal_hours, SHARD_DIMENSION: shard_partitions(shards)})


def hour_key(moment: dt.datetime, shard: str | None = None) -> str:
    """The partition key of ``moment``'s hour and ``shard`` (default: the first shard)."""
    hour = moment.astimezone(dt.UTC).strftime("%Y-%m-%d-%H:00")
    return str(dg.MultiPartitionKey({"hour": hour, SHARD_DIMENSION: shard if shard is not None else "0"}))


def hour_keys(moment: dt.datetime, shards: int) -> list[str]:
    """Every shard's partition key of ``moment``'s hour."""
    return [hour_key(moment, s) for s in shard_keys(shards)]


#: The graph with the default shard count (tests, tools); ``definitions()`` builds it from the setting
#: (the schedule, in ``schedules/signals.py``, reads the same setting through the ``signal_policy`` resource).
signal_passes = build_signal_passes()
signals_job = build_signals_job()
