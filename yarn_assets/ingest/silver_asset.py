"""``silver/platform_content``: the bronze batches of one (day, platform) partition, normalized and merged.

Silver normalizes and merges the partition's bronze batches it has not merged yet (the
``bronze_batches`` ledger, :mod:`yarn_assets.ingest.batches`), whatever wrote them: imports or
syncs. A batch left unmerged by a crash is merged by the next silver run of its partition (the
catch-up sensor requests one). A replay run (a backfill, or the tag ``yarnnn/replay: full``)
re-normalizes every batch, idempotently: the path after a parser fix, which bumps silver's
``code_version`` (:mod:`yarn_assets.ingest.sources`) so the catalog shows the partitions stale.
"""


import datetime as dt
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext
from sqlalchemy import select

from control_plane.models import ImportJob, utcnow
from io_managers.predicates import In, all_of
from resources.control_plane import ControlPlane
from resources.input_limits import InputLimits
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.core.partitions import ingest_partitions
from yarn_assets.core.tables import PLATFORM_CONTENT, REJECTS
from yarn_assets.ingest import batches, bronze, import_jobs, silver
from yarn_assets.ingest.sources import (
    BRONZE_SOURCES,
    INGEST_RETRY,
    SILVER_CONTENT,
    partition_parts,
    silver_code_version,
    table_metadata,
)

#: Silver follows any update of a bronze partition it was not materialized with (e.g. a bronze-only
#: backfill, or a sync run that failed after landing part of its data), in any day partition.
SILVER_AUTOMATION = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("bronze_updated")



@dg.asset(
    key=SILVER_CONTENT,
    partitions_def=ingest_partitions,
    deps=list(BRONZE_SOURCES),
    group_name="ingest",
    kinds={"deltalake", "polars"},
    owners=["team:data-platform"],
    retry_policy=INGEST_RETRY,
    automation_condition=SILVER_AUTOMATION,
    code_version=silver_code_version(),
    description=(
        "One current row per item (user, platform, source, external id): plain text, UTC times, content "
        "hash, TTL by platform and the retained flag. Merges the bronze batches of one (day, platform) "
        "partition it has not merged yet (all of them in a replay run)."
    ),
    check_specs=[
        dg.AssetCheckSpec("no_duplicate_keys", asset=SILVER_CONTENT,
                          description="At most one row per (user, platform, resource, external id)."),
        dg.AssetCheckSpec("users_match_bronze", asset=SILVER_CONTENT,
                          description="Every merged row belongs to the user of its bronze batch."),
    ],
)
def silver_platform_content(
    context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane, input_limits: InputLimits
) -> dg.MaterializeResult:
    day, platform = partition_parts(context)
    ingest_date = dt.date.fromisoformat(day)
    store = warehouse.store
    run_id = context.run.run_id
    replay = import_jobs.is_replay(context.run.tags)
    now = dt.datetime.now(dt.UTC)
    facts = batches.bronze_facts(store, platform, ingest_date)
    with control_plane.session() as session:
        todo = {b: facts[b] for b in batches.to_merge(session, platform, day, facts, full=replay)}
        closed = batches.close_settled(session, platform, day, facts)

    norm = silver.NormalizedPartition(rows=silver.empty_rows())
    merged: silver.SilverMergeResult | None = None
    if todo:  # read, normalize and merge only these batches (lazily, one batch at a time)
        rows = bronze.scan_partition(store, platform, ingest_date).filter(pl.col("batch_id").is_in(list(todo)))
        norm = silver.normalize_partition(rows, input_limits)
        reject_frames = []
        for batch_id, rejects in norm.rejects.items():
            fact = todo[batch_id]
            info = bronze.BatchInfo(user_id=fact.user_id, platform=platform, ingest_date=ingest_date,
                                    source_kind=fact.source_kind, provider=fact.provider, batch_id=batch_id,
                                    fetched_at=fact.fetched_at, run_id=run_id)
            reject_frames.append(bronze.reject_frame(rejects, stage="silver", batch=info, rejected_at=fact.fetched_at))
        bronze.write_rejects(
            store, pl.concat(reject_frames) if reject_frames else REJECTS.empty(),
            stage="silver", platform=platform, ingest_date=ingest_date, batch_ids=list(todo),
        )
        merged = silver.merge_platform_content(store, norm.rows, now=now)
    jobs = _settle_imports(store, control_plane, platform, day, todo, norm, run_id)

    checks = _silver_checks(store, norm.rows, todo)
    stats = merged.stats if merged else None
    return dg.MaterializeResult(
        metadata={
            "mode": "replay" if replay else "incremental",
            "batches_in_partition": len(facts),
            "batches_merged": len(todo),
            "batch_ids": md.ids(todo),
            "settled_batches_closed": closed,
            "bronze_objects": norm.objects,
            "items": norm.rows.height,
            "new": merged.new if merged else 0,
            "updated": merged.updated if merged else 0,
            "deleted": merged.deleted if merged else 0,
            "unchanged": merged.unchanged if merged else 0,
            "rejected": sum(len(r) for r in norm.rejects.values()),
            "skipped_expired": merged.skipped_expired if merged else 0,
            "skipped_tombstoned": merged.skipped_tombstoned if merged else 0,
            "skipped_expired_bodies": norm.skipped_expired_bodies,
            "users": len(norm.users),
            "import_jobs_completed": jobs["completed"],
            "import_jobs_failed": jobs["failed"],
            "by_content_type": dg.MetadataValue.json(dict(norm.by_type)),
            "filtered": dg.MetadataValue.json(dict(norm.filtered)),
            "normalizer_stats": dg.MetadataValue.json(dict(norm.stats)),
            "files_scanned": stats.files_scanned if stats else 0,
            "files_skipped": stats.files_skipped if stats else 0,
            "commit_attempts": stats.attempts if stats else 0,
            "table_version": store.version(PLATFORM_CONTENT) or 0,
            **table_metadata(store, PLATFORM_CONTENT),
        },
        check_results=checks,
    )


def _settle_imports(store: Any, control_plane: ControlPlane, platform: str, day: str,
                    todo: dict[str, batches.BronzeFacts], norm: silver.NormalizedPartition,
                    run_id: str) -> dict[str, int]:
    """After the merge committed: the import jobs whose landing was merged end ``completed`` (or
    ``failed`` when every object was rejected), with their events; then the ledger records the
    merged signatures. Events go first (idempotent): a crash before the ledger commit only means
    the batch is merged once more (a no-op) and its event is not written twice."""
    items = dict(norm.rows.group_by("batch_id").len().iter_rows()) if norm.rows.height else {}
    with control_plane.session() as session:
        jobs = list(session.scalars(select(ImportJob).where(ImportJob.id.in_(list(todo)))))
        for j in jobs:
            session.expunge(j)
    done: dict[str, tuple[str, str | None, dict[str, Any]]] = {}
    events: list[ActivityEvent] = []
    for job in jobs:
        if job.status != "landed" or job.run_id != todo[job.id].run_id:
            continue  # not this landing (a replay is re-landing it), or already settled
        result = dict(job.result or {})
        n_items, silver_rejects = int(items.get(job.id, 0)), norm.rejects.get(job.id, [])
        reasons = (result.get("reject_reasons") or []) + import_jobs.reject_summary(silver_rejects)
        rejected = int(result.get("rejected", 0)) + len(silver_rejects)
        result.update(items=n_items, silver_rejected=len(silver_rejects), reject_reasons=reasons[:3])
        when = dt.datetime.fromisoformat(result["fetched_at"]) if result.get("fetched_at") else utcnow()
        if n_items == 0 and rejected:
            error = f"every object of {job.original_name} was rejected ({rejected}): {reasons[0]}"
            done[job.id] = ("failed", error, result)
            events.append(import_jobs.job_event(job, "import_failed", f"Import of {job.original_name} failed: {error}",
                                 {"error": error, "rejected": rejected}, when))
        else:
            done[job.id] = ("completed", None, result)
            events.append(import_jobs.job_event(
                job, "import_completed",
                f"Imported {n_items} {platform} items from {job.original_name}"
                + (f" ({rejected} rejected)" if rejected else ""),
                {"platform": platform, "provider": job.provider, "objects": result.get("objects", 0),
                 "items": n_items, "rejected": rejected}, when,
            ))
    write_events(store, events, run_id=run_id)
    with control_plane.session() as session:
        batches.record_merged(session, platform, day, list(todo.values()))
        now = utcnow()
        for job_id, (status, error, result) in done.items():
            job = session.get(ImportJob, job_id)
            if job is not None and job.status == "landed":
                job.status, job.error, job.result, job.progress, job.completed_at = status, error, result, 100, now
    statuses = [status for status, _, _ in done.values()]
    return {"completed": statuses.count("completed"), "failed": statuses.count("failed")}


def _silver_checks(store: Any, rows: pl.DataFrame, todo: dict[str, batches.BronzeFacts]) -> list[dg.AssetCheckResult]:
    if rows.is_empty():
        return [
            dg.AssetCheckResult(check_name="no_duplicate_keys", passed=True, metadata={"rows_checked": 0}),
            dg.AssetCheckResult(check_name="users_match_bronze", passed=True, metadata={"rows_checked": 0}),
        ]
    pin = all_of(In("platform", rows["platform"].unique().to_list()),
                 In("created_day", rows["created_day"].unique().to_list()))
    keys = store.read(PLATFORM_CONTENT, pin, columns=[*silver.KEY, "batch_id"])
    dupes = keys.group_by(silver.KEY).len().filter(pl.col("len") > 1)
    mine = keys.filter(pl.col("batch_id").is_in(list(todo)))
    expected = pl.DataFrame(
        {"batch_id": list(todo), "expected_user": [f.user_id for f in todo.values()]},
        schema={"batch_id": pl.Utf8, "expected_user": pl.Utf8},
    )
    wrong = mine.join(expected, on="batch_id").filter(pl.col("user_id") != pl.col("expected_user"))
    return [
        dg.AssetCheckResult(check_name="no_duplicate_keys", passed=dupes.is_empty(),
                            metadata={"rows_checked": keys.height, "duplicate_keys": dupes.height}),
        dg.AssetCheckResult(check_name="users_match_bronze", passed=wrong.is_empty(),
                            metadata={"rows_checked": mine.height, "mismatched_rows": wrong.height}),
    ]
