"""Chat import assets: chat JSONL files land through ingest's import machinery into bronze, then silver.

    bronze/imported_chats   (table bronze/chat_items)   import jobs of the day, lines exactly as imported
    silver/chat_sessions, silver/chat_messages         imported lines and the chat app's sessions of the day

Both are partitioned by ingest day. Silver is also the head of the nightly memory chain: on the 00:00
UTC tick it merges the chat app's sessions of the day that ended (memory's facts and summaries follow
it eagerly). Memory starts at silver (``yarn_assets.memory``).
"""

import datetime as dt
import json
from collections import Counter
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from control_plane.models import ImportJob, utcnow
from io_managers.predicates import Eq, In, all_of
from resources.control_plane import ControlPlane
from resources.input_limits import InputLimits
from resources.runtime import Runtime
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.core.automation import NIGHTLY_CRON, on_cron_for_yesterday
from yarn_assets.core.partitions import ingest_days
from yarn_assets.ingest import bronze, import_jobs, landing
from yarn_assets.ingest.objects import RawObject
from yarn_assets.ingest.platforms.chat import api
from yarn_assets.ingest.platforms.chat import normalize as chat
from yarn_assets.ingest.platforms.chat.tables import (
    BRONZE_CHAT_ITEMS,
    BRONZE_CHATS,
    CHAT_MESSAGES,
    CHAT_PLATFORM,
    CHAT_SESSIONS,
    SILVER_MESSAGES,
    SILVER_SESSIONS,
)

OWNERS = ["team:data-platform"]
GROUP = "ingest"
CODE_VERSION = "1"
RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
#: Silver's nightly tick: the chat app's sessions of the day that ended, the head of the memory chain.
NIGHTLY = on_cron_for_yesterday(NIGHTLY_CRON)
chat_days = ingest_days


def _day(context: AssetExecutionContext) -> str:
    return context.partition_key


def _run_id(context: AssetExecutionContext) -> str:
    return context.run.run_id


def _table_md(store: Any, spec: Any, partition_rows: int | None = None) -> dict[str, Any]:
    return md.table_metadata_of(store, spec, partition_rows=partition_rows)


# =========================================================================== bronze: chat imports
@dg.asset(
    key=BRONZE_CHATS,
    partitions_def=chat_days,
    group_name=GROUP,
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
    day = _day(context)
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



# =========================================================================== silver: chat sessions/messages
@dg.multi_asset(
    specs=[
        dg.AssetSpec(SILVER_SESSIONS, deps=[BRONZE_CHATS], group_name=GROUP, kinds={"deltalake", "polars"},
                     owners=OWNERS, code_version=CODE_VERSION, automation_condition=NIGHTLY, description=(
                         "One row per chat session (imported or written by the chat app): type, status, start/end, "
                         "message and user-message counts; physically partitioned by the UTC day it started.")),
        dg.AssetSpec(SILVER_MESSAGES, deps=[BRONZE_CHATS], group_name=GROUP, kinds={"deltalake", "polars"},
                     owners=OWNERS, code_version=CODE_VERSION, automation_condition=NIGHTLY, description=(
                         "One row per chat turn (user, session, sequence): role, content, UTC time. Fed by the day's "
                         "chat imports and by the chat app's chat_sessions/session_messages tables.")),
    ],
    partitions_def=chat_days,
    retry_policy=RETRY,
    check_specs=[
        dg.AssetCheckSpec("sessions_match_messages", asset=SILVER_SESSIONS,
                          description="Each merged session's counts equal its messages in silver."),
        dg.AssetCheckSpec("no_duplicate_turns", asset=SILVER_MESSAGES,
                          description="At most one row per (user, session, sequence)."),
    ],
)
def silver_chat(context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane):  # type: ignore[no-untyped-def]
    day = _day(context)
    ingest_date = dt.date.fromisoformat(day)
    store = warehouse.store
    bronze_rows, parsed = chat.read_import_rows(store, ingest_date)
    rows: list[dict[str, Any]] = []
    reject_frames = []
    meta = {r["batch_id"]: r for r in bronze_rows.select(["batch_id", "user_id", "provider", "fetched_at"])
            .unique("batch_id").iter_rows(named=True)}
    for batch_id, batch in parsed.items():
        rows.extend(batch.rows)
        if batch.rejects:
            m = meta[batch_id]
            info = bronze.BatchInfo(user_id=m["user_id"], platform=CHAT_PLATFORM, ingest_date=ingest_date,
                                    source_kind="import", provider=m["provider"], batch_id=batch_id,
                                    fetched_at=m["fetched_at"], run_id=_run_id(context))
            reject_frames.append(bronze.reject_frame(batch.rejects, stage="silver", batch=info,
                                                     rejected_at=m["fetched_at"]))
    rejected = sum(len(b.rejects) for b in parsed.values())
    if meta:
        bronze.write_rejects(store, pl.concat(reject_frames) if reject_frames else bronze.REJECTS.empty(),
                             stage="silver", platform=CHAT_PLATFORM, ingest_date=ingest_date, batch_ids=list(meta))
    with control_plane.session() as session:
        app_rows = api.chat_app_rows(session, ingest_date)
    frame = chat.assign_session_days(store, chat.message_frame([*rows, *app_rows]))
    merged = chat.merge_chat(store, frame)
    _mark_merged(control_plane, list(parsed))
    events = _chat_session_events(store, frame)
    inserted = write_events(store, events, run_id=_run_id(context))

    sessions = store.read(CHAT_SESSIONS, In("session_day", merged.session_days)) if merged.session_days \
        else CHAT_SESSIONS.empty()
    keys = frame.select(["user_id", "session_id"]).unique() if frame.height else None
    mine = sessions.join(keys, on=["user_id", "session_id"], how="semi") if keys is not None else sessions.head(0)
    stored = store.read(CHAT_MESSAGES, In("session_day", merged.session_days),
                        columns=["user_id", "session_id", "sequence"]) if merged.session_days \
        else CHAT_MESSAGES.empty().select(["user_id", "session_id", "sequence"])
    per_session = stored.group_by(["user_id", "session_id"]).len()
    mismatched = mine.join(per_session, on=["user_id", "session_id"], how="left").filter(
        pl.col("len").fill_null(0) != pl.col("message_count"))
    dupes = stored.group_by(["user_id", "session_id", "sequence"]).len().filter(pl.col("len") > 1)
    common = {"session_days": dg.MetadataValue.json(merged.session_days), "users": len(merged.users)}
    yield dg.MaterializeResult(
        asset_key=SILVER_SESSIONS,
        metadata={**common, "sessions": merged.session_rows, "new": merged.sessions.inserted,
                  "updated": merged.sessions.updated, "events_written": inserted,
                  "sessions_by_type": md.counts(mine, "session_type"), "columns": md.schema(mine),
                  **_table_md(store, CHAT_SESSIONS, partition_rows=merged.session_rows)},
    )
    yield dg.MaterializeResult(
        asset_key=SILVER_MESSAGES,
        metadata={**common, "messages": merged.message_rows, "new": merged.messages.inserted,
                  "updated": merged.messages.updated, "from_imports": len(rows), "from_chat_app": len(app_rows),
                  "rejected": rejected,
                  "messages_by_role": md.counts(frame, "role"), "columns": md.schema(frame),
                  **_table_md(store, CHAT_MESSAGES, partition_rows=merged.message_rows)},
    )
    yield dg.AssetCheckResult(check_name="sessions_match_messages", asset_key=SILVER_SESSIONS,
                              passed=mismatched.is_empty(),
                              metadata={"sessions_checked": mine.height, "mismatched": mismatched.height})
    yield dg.AssetCheckResult(check_name="no_duplicate_turns", asset_key=SILVER_MESSAGES, passed=dupes.is_empty(),
                              metadata={"rows_checked": stored.height, "duplicates": dupes.height})


def _mark_merged(control_plane: ControlPlane, job_ids: list[str]) -> None:
    """Tell the chat-import sensor these jobs are in silver (it then runs their session days' memory)."""
    if not job_ids:
        return
    with control_plane.session() as session:
        for job in session.query(ImportJob).filter(ImportJob.id.in_(job_ids)):
            if job.status == "completed" and not (job.result or {}).get("silver_merged_at"):
                job.result = {**(job.result or {}), "silver_merged_at": utcnow().isoformat()}


def _chat_session_events(store: Any, frame: pl.DataFrame) -> list[ActivityEvent]:
    if frame.is_empty():
        return []
    out = []
    firsts = frame.sort("created_at").group_by(["user_id", "session_id"], maintain_order=True).agg(
        pl.col("created_at").first(), pl.col("session_day").first(), pl.col("session_type").first())
    for row in firsts.iter_rows(named=True):
        out.append(ActivityEvent(
            user_id=row["user_id"], event_type="chat_session",
            summary=f"Chat session ({row['session_type']}) started", idempotency_key=f"chat:{row['session_id']}",
            event_ref=row["session_id"], created_at=row["created_at"],
            event_date=dt.date.fromisoformat(row["session_day"]), metadata={"session_id": row["session_id"]},
        ))
    return out




chat_ingest_job = dg.define_asset_job(
    "chat_ingest_job",
    selection=dg.AssetSelection.assets(BRONZE_CHATS, SILVER_SESSIONS, SILVER_MESSAGES),
    description="Chat imports of one day into bronze, then silver chat sessions/messages.",
)

ASSETS = [bronze_imported_chats, silver_chat]
JOBS = [chat_ingest_job]
