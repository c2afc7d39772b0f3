"""Bronze chat imports: chat JSONL import jobs of a day into bronze/chat_items."""


import datetime as dt
import json
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from control_plane.models import ImportJob, utcnow
from io_managers.predicates import Eq, In, all_of
from resources.control_plane import ControlPlane
from resources.input_limits import InputLimits
from resources.runtime import Runtime
from resources.warehouse import Warehouse
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.ingest import bronze, import_jobs
from yarn_assets.ingest.objects import RawObject, Reject
from yarn_assets.ingest.readers import reader_for, sample_bytes
from yarn_assets.memory.assets.common import (
    BRONZE_CHATS,
    CODE_VERSION,
    OWNERS,
    RETRY,
    _day,
    _run_id,
    _table_md,
    memory_days,
)
from yarn_assets.memory.tables import (
    BRONZE_CHAT_ITEMS,
    CHAT_PLATFORM,
)


# =========================================================================== bronze: chat imports
@dg.asset(
    key=BRONZE_CHATS,
    partitions_def=memory_days,
    group_name="memory",
    code_version=CODE_VERSION,
    kinds={"deltalake", "polars"},
    owners=OWNERS,
    retry_policy=RETRY,
    description=(
        "Chat JSONL import jobs of the day (provider chat_jsonl), each line exactly as imported, in "
        "bronze/chat_items; unreadable lines go to bronze/rejects (platform=chat) with the reason."
    ),
    check_specs=[dg.AssetCheckSpec("import_jobs_settled", asset=BRONZE_CHATS,
                                   description="Every chat import job of the day ended completed or failed.")],
)
def bronze_imported_chats(
    context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane, runtime: Runtime,
    input_limits: InputLimits,
) -> dg.MaterializeResult:
    day, _, _ = _day(context)
    ingest_date = dt.date.fromisoformat(day)
    store = warehouse.store
    parents = import_jobs.retry_parents(context.run.tags)
    with control_plane.session() as session:
        jobs = import_jobs.jobs_in_partition(session, day, CHAT_PLATFORM)
        claimed = [j.id for j in jobs
                   if (j.status == "pending" or (j.status == "processing" and j.run_id in parents))
                   and import_jobs.claim(session, j.id, _run_id(context), inherit_from=parents,
                                         max_attempts=runtime.import_max_attempts)]
    with control_plane.session() as session:
        jobs = import_jobs.jobs_in_partition(session, day, CHAT_PLATFORM)
    if claimed:
        to_land, mode = [j for j in jobs if j.id in claimed], "new"
    elif import_jobs.is_replay(context.run.tags):  # a backfill: land everything again, idempotently
        to_land = [j for j in jobs if j.status in ("completed", "failed") and Path(j.stored_path).exists()]
        mode = "replay"
    else:  # nothing pending (another run took it, or it is done)
        to_land, mode = [], "nothing_pending"
    totals: Counter[str] = Counter()
    events: list[ActivityEvent] = []
    for job in to_land:
        fetched_at = _landing_time(job)
        batch = bronze.BatchInfo(user_id=job.user_id, platform=CHAT_PLATFORM, ingest_date=ingest_date,
                                 source_kind="import", provider=job.provider, batch_id=job.id, fetched_at=fetched_at,
                                 run_id=_run_id(context))
        scope = all_of(Eq("ingest_date", ingest_date), In("batch_id", [job.id]))
        assert scope is not None
        try:
            objects: list[RawObject] = []
            rejects: list[Reject] = []
            for out in reader_for(job.provider)(Path(job.stored_path), input_limits):
                (objects if isinstance(out, RawObject) else rejects).append(out)
            if not objects and not rejects:
                raise ValueError(f"no chat lines found in {job.original_name}")
        except Exception as exc:  # the file is unreadable: keep it as a reject, the other jobs land
            reason = f"{job.provider} file unreadable: {traceback.format_exception_only(type(exc), exc)[-1].strip()}"
            raw = sample_bytes(Path(job.stored_path), input_limits.import_reject_sample_bytes)
            store.replace(BRONZE_CHAT_ITEMS, BRONZE_CHAT_ITEMS.empty(), scope)
            unreadable = [Reject(reason=reason, raw=raw, location=job.original_name)]
            bronze.write_rejects(store, bronze.reject_frame(unreadable, stage="bronze", batch=batch,
                                                            rejected_at=fetched_at),
                                 stage="bronze", platform=CHAT_PLATFORM, ingest_date=ingest_date, batch_ids=[job.id])
            _finish(control_plane, job.id, "failed", reason, {"objects": 0, "rejected": 1,
                                                              "fetched_at": fetched_at.isoformat()})
            totals["failed_jobs"] += 1
            totals["rejected"] += 1
            events.append(_import_event(job, "import_failed", f"Chat import of {job.original_name} failed: {reason}",
                                        {"error": reason}, fetched_at))
            context.log.error(f"chat import job {job.id} failed: {reason}")
            continue
        frame = bronze.bronze_frame(objects, batch)
        store.replace(BRONZE_CHAT_ITEMS, frame, scope)
        bronze.write_rejects(store, bronze.reject_frame(rejects, stage="bronze", batch=batch, rejected_at=fetched_at),
                             stage="bronze", platform=CHAT_PLATFORM, ingest_date=ingest_date, batch_ids=[job.id])
        days = _session_days(objects)
        result = {"objects": len(objects), "rejected": len(rejects), "session_days": days,
                  "fetched_at": fetched_at.isoformat()}
        _finish(control_plane, job.id, "completed", None, result)
        totals["jobs"] += 1
        totals["lines"] += len(objects)
        totals["rejected"] += len(rejects)
        events.append(_import_event(
            job, "import_completed",
            f"Imported {len(objects)} chat messages from {job.original_name}"
            + (f" ({len(rejects)} rejected)" if rejects else ""),
            {"platform": CHAT_PLATFORM, "provider": job.provider, **result}, fetched_at,
        ))
    inserted = write_events(store, events, run_id=_run_id(context))
    with control_plane.session() as session:
        landed = {j.id for j in to_land}
        unsettled = [j.id for j in import_jobs.jobs_in_partition(session, day, CHAT_PLATFORM)
                     if j.id in landed and j.status in ("pending", "processing")]
    return dg.MaterializeResult(
        metadata={"mode": mode, "import_jobs": totals["jobs"], "failed_jobs": totals["failed_jobs"],
                  "lines": totals["lines"], "rejected": totals["rejected"], "events_written": inserted,
                  **_table_md(store, BRONZE_CHAT_ITEMS, partition_rows=totals["lines"])},
        check_results=[dg.AssetCheckResult(check_name="import_jobs_settled", passed=not unsettled,
                                           metadata={"unsettled_jobs": dg.MetadataValue.json(unsettled)})],
    )


def _landing_time(job: ImportJob) -> dt.datetime:
    previous = (job.result or {}).get("fetched_at")
    if previous:
        return dt.datetime.fromisoformat(previous)
    return (job.started_at or utcnow()).astimezone(dt.UTC)


def _finish(control_plane: ControlPlane, job_id: str, status: str, error: str | None, result: dict[str, Any]) -> None:
    with control_plane.session() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        job.status, job.error, job.progress, job.result, job.completed_at = status, error, 100, result, utcnow()


def _import_event(job: ImportJob, event_type: str, summary: str, metadata: dict[str, Any],
                  when: dt.datetime) -> ActivityEvent:
    return ActivityEvent(user_id=job.user_id, event_type=event_type, summary=summary,
                         idempotency_key=f"import:{job.id}", event_ref=job.id, created_at=when,
                         event_date=dt.date.fromisoformat(job.partition_date),
                         metadata={"import_job_id": job.id, "file": job.original_name, **metadata})


def _session_days(objects: list[RawObject]) -> list[str]:
    """UTC days the imported sessions started on (the nightly partitions the import feeds)."""
    starts: dict[str, str] = {}
    for obj in objects:
        try:
            data = json.loads(obj.raw)
            when = dt.datetime.fromisoformat(str(data.get("session_started_at") or data["created_at"]))
        except (ValueError, KeyError, TypeError):
            continue
        if when.tzinfo is None:
            continue
        day = when.astimezone(dt.UTC).date().isoformat()
        session_id = str(data.get("session_id"))
        starts[session_id] = min(starts.get(session_id, day), day)
    return sorted(set(starts.values()))

