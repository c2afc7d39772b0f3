"""Ingest assets: export files -> ``bronze/platform_items/imports`` -> ``silver/platform_content``.

Both are partitioned by (ingest day × platform). Bronze lands the import jobs its run claimed, so
an import costs what its batch costs and a run that claimed nothing does nothing; silver
(:mod:`yarn_assets.ingest.silver_asset`) merges the batches it has not merged yet. A replay run (a
backfill, or the tag ``yarnnn/replay: full``) re-lands every job of the partition, idempotently.
"""


import datetime as dt
import traceback
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from control_plane.models import ImportJob
from resources.control_plane import ControlPlane
from resources.input_limits import InputLimits
from resources.runtime import Runtime
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.core.activity_log import write_events
from yarn_assets.core.partitions import ingest_partitions
from yarn_assets.core.tables import BRONZE_ITEMS
from yarn_assets.ingest import batches, bronze, import_jobs
from yarn_assets.ingest.objects import RawObject, Reject
from yarn_assets.ingest.readers import reader_for, sample_bytes
from yarn_assets.ingest.silver_asset import silver_platform_content
from yarn_assets.ingest.sources import (
    BRONZE_IMPORTS,
    BRONZE_IMPORTS_VERSION,
    INGEST_RETRY,
    SILVER_CONTENT,
    partition_parts,
    table_metadata,
)

__all__ = ["bronze_imported_items", "ingest_job", "partition_parts", "silver_platform_content"]


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
    code_version=BRONZE_IMPORTS_VERSION,
    description=(
        "Raw objects read from export files (Slack export zip, mbox/.eml, .ics, Notion export), exactly "
        "as read, in bronze/platform_items; unreadable parts go to bronze/rejects with the reason."
    ),
    check_specs=[
        dg.AssetCheckSpec("import_jobs_settled", asset=BRONZE_IMPORTS,
                          description="Every import job the run took ended landed or failed."),
    ],
)
def bronze_imported_items(
    context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane, runtime: Runtime,
    input_limits: InputLimits,
) -> dg.MaterializeResult:
    day, platform = partition_parts(context)
    ingest_date = dt.date.fromisoformat(day)
    store = warehouse.store
    run_id = context.run.run_id
    tags = context.run.tags
    parents = import_jobs.retry_parents(tags)
    with control_plane.session() as session:
        jobs = import_jobs.jobs_in_partition(session, day, platform)
        claimed = [
            j.id for j in jobs
            if (j.status == "pending" or (j.status == "processing" and j.run_id in parents))
            and import_jobs.claim(session, j.id, run_id, inherit_from=parents, max_attempts=runtime.import_max_attempts)
        ]
    with control_plane.session() as session:
        jobs = import_jobs.jobs_in_partition(session, day, platform)
        for j in jobs:
            session.expunge(j)
    if claimed:
        to_land, mode = [j for j in jobs if j.id in claimed], "new"
    elif import_jobs.is_replay(tags):  # a parser fix: land every job again, idempotently
        to_land = [j for j in jobs if j.status in ("landed", "completed", "failed") and Path(j.stored_path).exists()]
        mode = "replay"
    else:  # nothing pending (another run took it, or it is done): nothing to re-read
        to_land, mode = [], "nothing_pending"

    totals = {"jobs": 0, "objects": 0, "rejected": 0, "failed_jobs": 0, "bytes": 0, "events": 0}
    landed_types: dict[str, int] = {}
    for job in to_land:
        totals["jobs"] += 1
        outcome = _land(context, store, control_plane, job, platform, ingest_date, run_id, input_limits)
        totals["objects"] += outcome["objects"]
        totals["rejected"] += outcome["rejected"]
        totals["bytes"] += outcome.get("bytes", 0)
        totals["events"] += outcome.get("events", 0)
        totals["failed_jobs"] += int(outcome["failed"])
        for k, v in outcome.get("object_types", {}).items():
            landed_types[k] = landed_types.get(k, 0) + v

    with control_plane.session() as session:
        mine = {j.id for j in to_land}
        unsettled = [j.id for j in import_jobs.jobs_in_partition(session, day, platform)
                     if j.id in mine and j.status in ("pending", "processing")]
    return dg.MaterializeResult(
        metadata={
            "mode": mode,
            "import_jobs": totals["jobs"],
            "job_ids": md.ids(j.id for j in to_land),
            "objects": totals["objects"],
            "object_types": dg.MetadataValue.json(landed_types),
            "rejected": totals["rejected"],
            "failed_jobs": totals["failed_jobs"],
            "raw_bytes": totals["bytes"],
            "events_written": totals["events"],
            **table_metadata(store, BRONZE_ITEMS, platform=platform, ingest_date=day),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="import_jobs_settled", passed=not unsettled,
                metadata={"unsettled_jobs": dg.MetadataValue.json(unsettled)},
            )
        ],
    )


def _land(context: AssetExecutionContext, store: Any, control_plane: ControlPlane, job: ImportJob, platform: str,
          ingest_date: dt.date, run_id: str, limits: InputLimits) -> dict[str, Any]:
    """Read one export and land it as its bronze batch; the job ends ``landed`` or ``failed``.

    Order matters for crash recovery: the bronze commit comes first, then (one control-plane
    transaction) the job's ``landed`` status and the batch's ledger row. A crash in between
    leaves the job ``processing``; its retry re-lands the same batch (a replace, never a duplicate).
    """
    fetched_at = import_jobs.landing_time(job)
    batch = bronze.BatchInfo(
        user_id=job.user_id, platform=platform, ingest_date=ingest_date, source_kind="import",
        provider=job.provider, batch_id=job.id, fetched_at=fetched_at, run_id=run_id,
    )
    try:
        objects, rejects = _read_export(job, limits)
        if not objects and not rejects:
            raise ValueError(f"no {job.provider} items found in {job.original_name}")
    except Exception as exc:  # the whole file is unreadable: keep it as a reject, land the rest
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        reason = f"{job.provider} export unreadable: {detail}"
        raw = sample_bytes(Path(job.stored_path), limits.import_reject_sample_bytes)
        objects, rejects = [], [Reject(reason=reason, raw=raw, location=job.original_name)]
    if objects:
        frame = bronze.bronze_frame(objects, batch)
        bronze.write_batch(store, frame, batch)
    else:
        frame = None
        bronze.write_batch(store, bronze.bronze_frame([], batch), batch)  # clears an earlier landing
    bronze.write_rejects(
        store, bronze.reject_frame(rejects, stage="bronze", batch=batch, rejected_at=fetched_at),
        stage="bronze", platform=platform, ingest_date=ingest_date, batch_ids=[job.id],
    )
    reasons = import_jobs.reject_summary(rejects)
    result: dict[str, Any] = {
        "objects": len(objects), "rejected": len(rejects), "reject_reasons": reasons,
        "fetched_at": fetched_at.isoformat(),
    }
    if frame is None:  # nothing landed: the job has failed, and says why
        error = reasons[0] if len(rejects) == 1 and "unreadable" in reasons[0] else (
            f"every object of {job.original_name} was rejected ({len(rejects)}): {reasons[0]}")
        event = import_jobs.job_event(job, "import_failed", f"Import of {job.original_name} failed: {error}",
                                      {"error": error, "rejected": len(rejects)}, fetched_at)
        written = write_events(store, [event], run_id=run_id)
        with control_plane.session() as session:
            import_jobs.mark_failed(session, job.id, error, result)
        context.log.error(f"import job {job.id} ({job.original_name}) failed: {error}")
        return {"objects": 0, "rejected": len(rejects), "failed": True, "events": written}
    result["object_types"] = dict(frame.group_by("object_type").len().iter_rows())
    with control_plane.session() as session:
        import_jobs.mark_landed(session, job.id, run_id, result)
        batches.record_landed(session, batch, rows=frame.height)
    return {"objects": len(objects), "rejected": len(rejects), "failed": False,
            "bytes": int(frame["raw_size"].sum() or 0), "object_types": result["object_types"]}


ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(BRONZE_IMPORTS, SILVER_CONTENT),
    description="Pending import jobs of one (day, platform) into bronze, then silver. A backfill "
    "(`dagster job backfill -j ingest_job --partitions 2026-11-20|slack,...`) or the run tag "
    '`yarnnn/replay: full` re-lands and re-normalizes the whole partition (after a parser fix).',
)
