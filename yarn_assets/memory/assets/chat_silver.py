"""Silver chat sessions/messages: imports and chat-app sessions merged into silver."""


import datetime as dt
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from control_plane.models import ImportJob, utcnow
from io_managers.predicates import In
from resources.control_plane import ControlPlane
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.ingest import bronze
from yarn_assets.memory import chat
from yarn_assets.memory.assets.common import (
    BRONZE_CHATS,
    CODE_VERSION,
    NIGHTLY,
    OWNERS,
    RETRY,
    SILVER_MESSAGES,
    SILVER_SESSIONS,
    _day,
    _run_id,
    _table_md,
    memory_days,
)
from yarn_assets.memory.tables import (
    CHAT_MESSAGES,
    CHAT_PLATFORM,
    CHAT_SESSIONS,
)


# =========================================================================== silver: chat sessions/messages
@dg.multi_asset(
    specs=[
        dg.AssetSpec(SILVER_SESSIONS, deps=[BRONZE_CHATS], group_name="memory", kinds={"deltalake", "polars"},
                     owners=OWNERS, code_version=CODE_VERSION, automation_condition=NIGHTLY, description=(
                         "One row per chat session (imported or written by the chat app): type, status, start/end, "
                         "message and user-message counts; physically partitioned by the UTC day it started.")),
        dg.AssetSpec(SILVER_MESSAGES, deps=[BRONZE_CHATS], group_name="memory", kinds={"deltalake", "polars"},
                     owners=OWNERS, code_version=CODE_VERSION, automation_condition=NIGHTLY, description=(
                         "One row per chat turn (user, session, sequence): role, content, UTC time. Fed by the day's "
                         "chat imports and by the chat app's chat_sessions/session_messages tables.")),
    ],
    partitions_def=memory_days,
    retry_policy=RETRY,
    check_specs=[
        dg.AssetCheckSpec("sessions_match_messages", asset=SILVER_SESSIONS,
                          description="Each merged session's counts equal its messages in silver."),
        dg.AssetCheckSpec("no_duplicate_turns", asset=SILVER_MESSAGES,
                          description="At most one row per (user, session, sequence)."),
    ],
)
def silver_chat(context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane):  # type: ignore[no-untyped-def]
    day, _, _ = _day(context)
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
        app_rows = chat.chat_app_rows(session, ingest_date)
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


