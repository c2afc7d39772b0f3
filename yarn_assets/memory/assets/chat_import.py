"""Bronze chat imports: chat JSONL import jobs of a day into bronze/chat_items."""


import datetime as dt
import json
from collections import Counter

import dagster as dg
from dagster import AssetExecutionContext

from io_managers.predicates import Eq, In, all_of
from resources.control_plane import ControlPlane
from resources.input_limits import InputLimits
from resources.runtime import Runtime
from resources.warehouse import Warehouse
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.ingest import bronze, import_jobs, landing
from yarn_assets.ingest.objects import RawObject
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
    to_land, mode = landing.take_jobs(control_plane.session, day, CHAT_PLATFORM, _run_id(context), context.run.tags,
                                      max_attempts=runtime.import_max_attempts, replayable=("completed", "failed"))
    totals: Counter[str] = Counter()
    events: list[ActivityEvent] = []
    for job in to_land:
        fetched_at = landing.landing_time(job)
        batch = bronze.BatchInfo(user_id=job.user_id, platform=CHAT_PLATFORM, ingest_date=ingest_date,
                                 source_kind="import", provider=job.provider, batch_id=job.id, fetched_at=fetched_at,
                                 run_id=_run_id(context))
        scope = all_of(Eq("ingest_date", ingest_date), In("batch_id", [job.id]))
        assert scope is not None
        objects, rejects, unreadable = landing.read_or_reject(job, input_limits, what="chat lines")
        frame = bronze.bronze_frame(objects, batch) if objects else BRONZE_CHAT_ITEMS.empty()
        store.replace(BRONZE_CHAT_ITEMS, frame, scope)  # an unreadable file clears an earlier landing
        bronze.write_rejects(store, bronze.reject_frame(rejects, stage="bronze", batch=batch, rejected_at=fetched_at),
                             stage="bronze", platform=CHAT_PLATFORM, ingest_date=ingest_date, batch_ids=[job.id])
        if unreadable:  # kept as a reject, the other jobs land
            reason = rejects[0].reason
            with control_plane.session() as session:
                import_jobs.mark_failed(session, job.id, reason, {"objects": 0, "rejected": 1,
                                                                  "fetched_at": fetched_at.isoformat()})
            totals["failed_jobs"] += 1
            totals["rejected"] += 1
            events.append(landing.import_event(job, "import_failed",
                                               f"Chat import of {job.original_name} failed: {reason}",
                                               {"error": reason}, fetched_at))
            context.log.error(f"chat import job {job.id} failed: {reason}")
            continue
        days = _session_days(objects)
        result = {"objects": len(objects), "rejected": len(rejects), "session_days": days,
                  "fetched_at": fetched_at.isoformat()}
        with control_plane.session() as session:
            landing.mark_completed(session, job.id, result)
        totals["jobs"] += 1
        totals["lines"] += len(objects)
        totals["rejected"] += len(rejects)
        events.append(landing.import_event(
            job, "import_completed",
            f"Imported {len(objects)} chat messages from {job.original_name}"
            + (f" ({len(rejects)} rejected)" if rejects else ""),
            {"platform": CHAT_PLATFORM, "provider": job.provider, **result}, fetched_at,
        ))
    inserted = write_events(store, events, run_id=_run_id(context))
    unsettled = landing.unsettled(control_plane.session, day, CHAT_PLATFORM, to_land)
    return dg.MaterializeResult(
        metadata={"mode": mode, "import_jobs": totals["jobs"], "failed_jobs": totals["failed_jobs"],
                  "lines": totals["lines"], "rejected": totals["rejected"], "events_written": inserted,
                  **_table_md(store, BRONZE_CHAT_ITEMS, partition_rows=totals["lines"])},
        check_results=[dg.AssetCheckResult(check_name="import_jobs_settled", passed=not unsettled,
                                           metadata={"unsettled_jobs": dg.MetadataValue.json(unsettled)})],
    )


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

