"""Ingest assets: export files -> bronze raw objects -> silver platform_content.

Both assets are partitioned by (ingest day × platform). Bronze lands the import jobs of its
partition; silver re-reads that bronze partition (whatever wrote it: imports or syncs) and merges.
Re-materializing either is idempotent, so a backfill is always safe.
"""


import datetime as dt
import traceback
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from control_plane.models import ImportJob, utcnow
from io_managers.predicates import In, all_of
from resources.control_plane import ControlPlane
from resources.input_limits import InputLimits
from resources.warehouse import Warehouse
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.core.partitions import ingest_partitions
from yarn_assets.core.tables import PLATFORM_CONTENT, REJECTS
from yarn_assets.ingest import bronze, import_jobs, silver
from yarn_assets.ingest.objects import RawObject, Reject
from yarn_assets.ingest.readers import reader_for, sample_bytes
from yarn_assets.ingest.sources import BRONZE_IMPORTS, BRONZE_SOURCES, SILVER_CONTENT

INGEST_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def partition_parts(context: AssetExecutionContext) -> tuple[str, str]:
    key = context.partition_key
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["date"], dims["platform"]
    day, platform = str(key).split("|")
    return day, platform


def preview(df: pl.DataFrame, columns: list[str], n: int = 5) -> dg.MetadataValue:
    cols = [c for c in columns if c in df.columns]
    if df.is_empty() or not cols:
        return dg.MetadataValue.md("_no rows_")
    head = df.select(cols).head(n).with_columns(
        [pl.col(c).cast(pl.Utf8).str.slice(0, 60).str.replace_all(r"[|\n\r]", " ") for c in cols]
    )
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v) for v in row) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def _read_export(job: ImportJob, limits: InputLimits) -> tuple[list[RawObject], list[Reject]]:
    objects: list[RawObject] = []
    rejects: list[Reject] = []
    for out in reader_for(job.provider)(Path(job.stored_path), limits):
        (objects if isinstance(out, RawObject) else rejects).append(out)
    return objects, rejects


@dg.asset(
    key=BRONZE_IMPORTS,
    partitions_def=ingest_partitions,
    group_name="ingest",
    kinds={"deltalake", "polars"},
    owners=["team:data-platform"],
    retry_policy=INGEST_RETRY,
    description=(
        "Raw objects read from export files (Slack export zip, mbox/.eml, .ics, Notion export), exactly "
        "as read, in bronze/platform_items; unreadable parts go to bronze/rejects with the reason."
    ),
    check_specs=[
        dg.AssetCheckSpec("import_jobs_settled", asset=BRONZE_IMPORTS,
                          description="Every import job of the partition ended completed or failed."),
    ],
)
def bronze_imported_items(
    context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane, input_limits: InputLimits
) -> dg.MaterializeResult:
    day, platform = partition_parts(context)
    ingest_date = dt.date.fromisoformat(day)
    store = warehouse.store
    run_id = context.run.run_id
    with control_plane.session() as session:
        jobs = import_jobs.jobs_in_partition(session, day, platform)
        claimed = [j.id for j in jobs if j.status == "pending" and import_jobs.claim(session, j.id, run_id)]
    with control_plane.session() as session:
        jobs = import_jobs.jobs_in_partition(session, day, platform)
    if claimed:
        to_land = [j for j in jobs if j.id in claimed]
        mode = "new"
    else:  # a replay (manual re-materialization or backfill): land everything again, idempotently
        to_land = [j for j in jobs if j.status in ("completed", "failed") and Path(j.stored_path).exists()]
        mode = "replay"

    totals = {"jobs": 0, "objects": 0, "rejected": 0, "failed_jobs": 0, "bytes": 0}
    events: list[ActivityEvent] = []
    landed_frames: list[pl.DataFrame] = []
    for job in to_land:
        totals["jobs"] += 1
        fetched_at = _landing_time(job)
        batch = bronze.BatchInfo(
            user_id=job.user_id, platform=platform, ingest_date=ingest_date, source_kind="import",
            provider=job.provider, batch_id=job.id, fetched_at=fetched_at, run_id=run_id,
        )
        try:
            objects, rejects = _read_export(job, input_limits)
            if not objects and not rejects:
                raise ValueError(f"no {job.provider} items found in {job.original_name}")
        except Exception as exc:  # the whole file is unreadable: keep it as a reject, land the rest
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            reason = f"{job.provider} export unreadable: {detail}"
            raw = sample_bytes(Path(job.stored_path), input_limits.import_reject_sample_bytes)
            bronze.write_batch(store, bronze.bronze_frame([], batch), batch)
            bronze.write_rejects(
                store, bronze.reject_frame([Reject(reason=reason, raw=raw, location=job.original_name)],
                                           stage="bronze", batch=batch, rejected_at=fetched_at),
                stage="bronze", platform=platform, ingest_date=ingest_date, batch_ids=[job.id],
            )
            _finish(control_plane, job.id, status="failed", error=reason,
                    result={"objects": 0, "rejected": 1, "fetched_at": fetched_at.isoformat()})
            totals["failed_jobs"] += 1
            totals["rejected"] += 1
            events.append(_event(job, "import_failed", f"Import of {job.original_name} failed: {reason}",
                                 {"error": reason}, fetched_at))
            context.log.error(f"import job {job.id} ({job.original_name}) failed: {reason}")
            continue
        frame = bronze.bronze_frame(objects, batch)
        bronze.write_batch(store, frame, batch)
        bronze.write_rejects(
            store, bronze.reject_frame(rejects, stage="bronze", batch=batch, rejected_at=fetched_at),
            stage="bronze", platform=platform, ingest_date=ingest_date, batch_ids=[job.id],
        )
        landed_frames.append(frame)
        totals["objects"] += len(objects)
        totals["rejected"] += len(rejects)
        totals["bytes"] += int(frame["raw_size"].sum() or 0)
        result = {
            "objects": len(objects),
            "rejected": len(rejects),
            "object_types": dict(frame.group_by("object_type").len().iter_rows()) if len(objects) else {},
            "fetched_at": fetched_at.isoformat(),
        }
        _finish(control_plane, job.id, status="completed", error=None, result=result)
        events.append(_event(
            job, "import_completed",
            f"Imported {len(objects)} {platform} objects from {job.original_name}"
            + (f" ({len(rejects)} rejected)" if rejects else ""),
            {"platform": platform, "provider": job.provider, **result}, fetched_at,
        ))
    inserted_events = write_events(store, events, run_id=run_id)

    with control_plane.session() as session:
        unsettled = [j.id for j in import_jobs.jobs_in_partition(session, day, platform)
                     if j.status in ("pending", "processing") and j.id in {x.id for x in to_land}]
    sample = pl.concat(landed_frames) if landed_frames else bronze.bronze_frame([], _dummy_batch(platform, ingest_date))
    return dg.MaterializeResult(
        metadata={
            "mode": mode,
            "import_jobs": totals["jobs"],
            "objects": totals["objects"],
            "rejected": totals["rejected"],
            "failed_jobs": totals["failed_jobs"],
            "raw_bytes": totals["bytes"],
            "events_written": inserted_events,
            "preview": preview(sample, ["user_id", "object_type", "resource_name", "external_id", "raw_size"]),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="import_jobs_settled", passed=not unsettled,
                metadata={"unsettled_jobs": dg.MetadataValue.json(unsettled)},
            )
        ],
    )


def _landing_time(job: ImportJob) -> dt.datetime:
    """First landing time of the job; replays reuse it so bronze and silver come out identical."""
    previous = (job.result or {}).get("fetched_at")
    if previous:
        return dt.datetime.fromisoformat(previous)
    return (job.started_at or utcnow()).astimezone(dt.UTC)


def _finish(control_plane: ControlPlane, job_id: str, *, status: str, error: str | None,
            result: dict[str, Any]) -> None:
    with control_plane.session() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        job.status = status
        job.error = error
        job.progress = 100
        job.result = result
        job.completed_at = utcnow()


def _event(job: ImportJob, event_type: str, summary: str, metadata: dict[str, Any],
           when: dt.datetime) -> ActivityEvent:
    return ActivityEvent(
        user_id=job.user_id, event_type=event_type, summary=summary, idempotency_key=f"import:{job.id}",
        metadata={"import_job_id": job.id, "file": job.original_name, **metadata}, event_ref=job.id,
        created_at=when, event_date=dt.date.fromisoformat(job.partition_date),
    )


def _dummy_batch(platform: str, ingest_date: dt.date) -> bronze.BatchInfo:
    return bronze.BatchInfo("", platform, ingest_date, "import", "", "", utcnow())


@dg.asset(
    key=SILVER_CONTENT,
    partitions_def=ingest_partitions,
    deps=list(BRONZE_SOURCES),
    group_name="ingest",
    kinds={"deltalake", "polars"},
    owners=["team:data-platform"],
    retry_policy=INGEST_RETRY,
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "One current row per item (user, platform, source, external id): plain text, UTC times, content "
        "hash, TTL by platform and the retained flag. Merged from one bronze (day, platform) partition."
    ),
    check_specs=[
        dg.AssetCheckSpec("no_duplicate_keys", asset=SILVER_CONTENT,
                          description="At most one row per (user, platform, resource, external id)."),
        dg.AssetCheckSpec("users_match_bronze", asset=SILVER_CONTENT,
                          description="Every merged row belongs to the user of its bronze batch."),
    ],
)
def silver_platform_content(
    context: AssetExecutionContext, warehouse: Warehouse, input_limits: InputLimits
) -> dg.MaterializeResult:
    day, platform = partition_parts(context)
    ingest_date = dt.date.fromisoformat(day)
    store = warehouse.store
    now = dt.datetime.now(dt.UTC)
    bronze_rows = bronze.scan_partition(store, platform, ingest_date)  # lazy: read batch by batch
    batch_cols = bronze_rows.select(["batch_id", "user_id", "provider", "fetched_at"]).unique("batch_id").collect()
    batch_meta = {row["batch_id"]: row for row in batch_cols.iter_rows(named=True)}
    norm = silver.normalize_partition(bronze_rows, input_limits)
    reject_frames = []
    for batch_id, rejects in norm.rejects.items():
        meta = batch_meta[batch_id]
        info = bronze.BatchInfo(user_id=meta["user_id"], platform=platform, ingest_date=ingest_date,
                                source_kind="", provider=meta["provider"], batch_id=batch_id,
                                fetched_at=meta["fetched_at"], run_id=context.run.run_id)
        reject_frames.append(bronze.reject_frame(rejects, stage="silver", batch=info, rejected_at=meta["fetched_at"]))
    rejected = sum(len(r) for r in norm.rejects.values())
    rejects_frame = pl.concat(reject_frames) if reject_frames else REJECTS.empty()
    bronze.write_rejects(
        store, rejects_frame,
        stage="silver", platform=platform, ingest_date=ingest_date, batch_ids=list(batch_meta),
    )

    merged = silver.merge_platform_content(store, norm.rows, now=now)
    checks = _silver_checks(store, norm.rows, batch_meta)
    return dg.MaterializeResult(
        metadata={
            "bronze_objects": norm.objects,
            "items": norm.rows.height,
            "new": merged.new,
            "updated": merged.updated,
            "deleted": merged.deleted,
            "unchanged": merged.unchanged,
            "rejected": rejected,
            "skipped_expired": merged.skipped_expired,
            "skipped_tombstoned": merged.skipped_tombstoned,
            "skipped_expired_bodies": norm.skipped_expired_bodies,
            "users": len(norm.users),
            "by_content_type": dg.MetadataValue.json(dict(norm.by_type)),
            "filtered": dg.MetadataValue.json(dict(norm.filtered)),
            "normalizer_stats": dg.MetadataValue.json(dict(norm.stats)),
            "files_scanned": merged.stats.files_scanned,
            "files_skipped": merged.stats.files_skipped,
            "commit_attempts": merged.stats.attempts,
            "table_version": store.version(PLATFORM_CONTENT) or 0,
            "preview": preview(norm.rows, ["user_id", "content_type", "resource_name", "author", "title", "content"]),
        },
        check_results=checks,
    )


def _silver_checks(store: Any, rows: pl.DataFrame, batch_meta: dict[str, dict[str, Any]]) -> list[dg.AssetCheckResult]:
    if rows.is_empty():
        return [
            dg.AssetCheckResult(check_name="no_duplicate_keys", passed=True, metadata={"rows_checked": 0}),
            dg.AssetCheckResult(check_name="users_match_bronze", passed=True, metadata={"rows_checked": 0}),
        ]
    pin = all_of(In("platform", rows["platform"].unique().to_list()),
                 In("created_day", rows["created_day"].unique().to_list()))
    keys = store.read(PLATFORM_CONTENT, pin, columns=[*silver.KEY, "batch_id"])
    dupes = keys.group_by(silver.KEY).len().filter(pl.col("len") > 1)
    mine = keys.filter(pl.col("batch_id").is_in(list(batch_meta)))
    expected = pl.DataFrame(
        {"batch_id": list(batch_meta), "expected_user": [m["user_id"] for m in batch_meta.values()]},
        schema={"batch_id": pl.Utf8, "expected_user": pl.Utf8},
    )
    wrong = mine.join(expected, on="batch_id").filter(pl.col("user_id") != pl.col("expected_user"))
    return [
        dg.AssetCheckResult(check_name="no_duplicate_keys", passed=dupes.is_empty(),
                            metadata={"rows_checked": keys.height, "duplicate_keys": dupes.height}),
        dg.AssetCheckResult(check_name="users_match_bronze", passed=wrong.is_empty(),
                            metadata={"rows_checked": mine.height, "mismatched_rows": wrong.height}),
    ]


ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(BRONZE_IMPORTS, SILVER_CONTENT),
    description="Import jobs of one (day, platform) into bronze, then silver. Backfill with "
    "`dagster job backfill -j ingest_job --partitions 2026-11-20|slack,...`.",
)
