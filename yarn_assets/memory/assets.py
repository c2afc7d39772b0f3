"""Memory assets: chat -> bronze/silver; nightly facts, summaries, patterns; analysis; weekly digests.

Every daily asset is partitioned by UTC day (``yarn_assets.core.partitions.ingest_days``) and
idempotent: re-materializing a day replaces that day's gold partition with the same rows, upserts
nothing new into ``user_context`` (deterministic assertion ids) and writes no new events
(deterministic event keys). See ``docs/memory.md``.
"""


import datetime as dt
import hashlib
import json
import traceback
from collections import Counter, defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from control_plane.models import Deliverable, ImportJob, User, UserContextHistory, utcnow
from io_managers.predicates import Eq, In, Window, all_of
from resources.control_plane import ControlPlane
from resources.input_limits import InputLimits
from resources.llm import LLMScope
from resources.llm_batches import BatchRequest, LLMBatches
from resources.runtime import Runtime
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.core.activity_log import EVENT_TYPES, NOISE_EVENT_TYPES, ActivityEvent, read_events, write_events
from yarn_assets.core.partitions import ingest_days
from yarn_assets.ingest import bronze, import_jobs
from yarn_assets.ingest.objects import RawObject, Reject
from yarn_assets.ingest.readers import reader_for, sample_bytes
from yarn_assets.memory import analysis, chat, digest, nightly, patterns, user_context
from yarn_assets.memory.extraction import FactExtraction, SessionSummary
from yarn_assets.memory.mailer import MemoryMailer
from yarn_assets.memory.tables import (
    ACTIVITY_PATTERNS,
    BRONZE_CHAT_ITEMS,
    CHAT_MESSAGES,
    CHAT_PLATFORM,
    CHAT_SESSIONS,
    DELIVERABLE_SUGGESTIONS,
    FACT_CANDIDATES,
    SESSION_SUMMARIES,
    WEEKLY_DIGESTS,
)

BRONZE_CHATS = dg.AssetKey(["bronze", "imported_chats"])
SILVER_SESSIONS = dg.AssetKey(["silver", "chat_sessions"])
SILVER_MESSAGES = dg.AssetKey(["silver", "chat_messages"])
MEMORY_FACTS = dg.AssetKey(["gold", "memory_facts"])
SESSION_SUMMARIES_KEY = dg.AssetKey(["gold", "session_summaries"])
ACTIVITY_PATTERNS_KEY = dg.AssetKey(["gold", "activity_patterns"])
SUGGESTIONS_KEY = dg.AssetKey(["gold", "deliverable_suggestions"])
WEEKLY_DIGESTS_KEY = dg.AssetKey(["gold", "weekly_digests"])

memory_days = ingest_days
#: ``end_offset=1``: the schedule's tick at HH:00 runs the hour that starts then (users due at HH local).
digest_hours = dg.HourlyPartitionsDefinition(start_date="2024-01-01-00:00", timezone="UTC", end_offset=1)

RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
#: Mail: a refused or dropped SMTP connection is worth retrying soon (the ledger prevents a double send).
MAIL_RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)
OWNERS = ["team:data-platform"]


def _day(context: AssetExecutionContext) -> tuple[str, dt.datetime, dt.datetime]:
    window = context.partition_time_window
    return context.partition_key, window.start.astimezone(dt.UTC), window.end.astimezone(dt.UTC)


def _run_id(context: AssetExecutionContext) -> str:
    return context.run.run_id


def _replace(store: Any, spec: Any, frame: pl.DataFrame, predicate: Any) -> int:
    """Replace one partition of a gold table (created empty first, so it exists even with no rows)."""
    store.ensure(spec)
    return store.replace(spec, frame, predicate)


# =========================================================================== bronze: chat imports
@dg.asset(
    key=BRONZE_CHATS,
    partitions_def=memory_days,
    group_name="memory",
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
                  "lines": totals["lines"], "rejected": totals["rejected"], "events_written": inserted},
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


# =========================================================================== silver: chat sessions/messages
@dg.multi_asset(
    specs=[
        dg.AssetSpec(SILVER_SESSIONS, deps=[BRONZE_CHATS], group_name="memory", kinds={"deltalake", "polars"},
                     owners=OWNERS, description=(
                         "One row per chat session (imported or written by the chat app): type, status, start/end, "
                         "message and user-message counts; physically partitioned by the UTC day it started.")),
        dg.AssetSpec(SILVER_MESSAGES, deps=[BRONZE_CHATS], group_name="memory", kinds={"deltalake", "polars"},
                     owners=OWNERS, description=(
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
                  "sessions_by_type": md.counts(mine, "session_type"), "columns": md.schema(mine)},
    )
    yield dg.MaterializeResult(
        asset_key=SILVER_MESSAGES,
        metadata={**common, "messages": merged.message_rows, "new": merged.messages.inserted,
                  "updated": merged.messages.updated, "from_imports": len(rows), "from_chat_app": len(app_rows),
                  "rejected": rejected,
                  "messages_by_role": md.counts(frame, "role"), "columns": md.schema(frame)},
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


# =========================================================================== gold: facts
def _scope(context: AssetExecutionContext, key: dg.AssetKey) -> LLMScope:
    return LLMScope.from_context(context, asset_key=key.to_user_string())


@dg.asset(
    key=MEMORY_FACTS,
    partitions_def=memory_days,
    deps=[SILVER_SESSIONS, SILVER_MESSAGES],
    group_name="memory",
    kinds={"deltalake", "polars", "anthropic"},
    owners=OWNERS,
    pool="llm",
    retry_policy=RETRY,
    description=(
        "Facts, preferences and instructions extracted nightly from the user turns of the day's sessions with >= 3 "
        "user messages, screened by the junk filter and upserted into the control-plane user_context (history "
        "kept). gold/memory_facts holds every candidate with its decision and junk reason."
    ),
    check_specs=[
        dg.AssetCheckSpec("extraction_succeeded", asset=MEMORY_FACTS,
                          description="Every due session got an extraction (an LLM failure is a warning)."),
        dg.AssetCheckSpec("kept_facts_in_user_context", asset=MEMORY_FACTS,
                          description="Every kept candidate is in the user's history (nothing silently lost)."),
    ],
)
def memory_facts(
    context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane, llm_batches: LLMBatches
) -> dg.MaterializeResult:
    day, _, _ = _day(context)
    store = warehouse.store
    due = nightly.due_sessions(store, day, nightly.MIN_USER_MESSAGES_FACTS)
    requests = []
    for s in due:
        system, prompt = nightly.facts_request_parts(s)
        requests.append(BatchRequest(custom_id=f"facts-{s.custom_id}", user_id=s.user_id, system=system, prompt=prompt,
                                     output=FactExtraction, offline=partial(nightly.offline_facts_for, s),
                                     max_tokens=nightly.FACTS_MAX_TOKENS))
    results, run = llm_batches.run(task="memory", requests=requests, scope=_scope(context, MEMORY_FACTS))
    by_user: dict[str, list[tuple[nightly.DueSession, FactExtraction]]] = defaultdict(list)
    errors: dict[str, str] = {}
    extractor, offline = "-", llm_batches.llm.is_offline
    for s in due:
        res = results[f"facts-{s.custom_id}"]
        extractor, offline = res.model, res.offline
        if res.value is None:
            errors[s.session_id] = res.error or "no answer"
            context.log.warning(f"fact extraction failed for session {s.session_id} of {s.user_id}: {res.error}")
            continue
        by_user[s.user_id].append((s, res.value))
    rows: list[dict[str, Any]] = []
    events: list[ActivityEvent] = []
    decisions: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    now = utcnow()
    for user_id in sorted(by_user):
        with control_plane.session() as session:
            out = nightly.apply_facts(session, day, user_id, by_user[user_id], extractor=extractor, offline=offline,
                                      now=now)
        rows.extend(out.rows)
        events.extend(out.events)
        decisions.update(out.decisions)
        rejected.update(out.rejected)
    frame = nightly.candidates_frame(rows)
    _replace(store, FACT_CANDIDATES, frame, Eq("session_day", day))
    inserted = write_events(store, events, run_id=_run_id(context))
    kept_ids = [r["candidate_id"] for r in rows if r["decision"] in ("kept", "outranked")]
    with control_plane.session() as session:
        found = {h.id for h in session.query(UserContextHistory.id).filter(UserContextHistory.id.in_(kept_ids))}
    missing = [cid for cid in kept_ids if cid not in found]
    users = len({s.user_id for s in due})
    total = len(rows)
    return dg.MaterializeResult(
        metadata={
            "sessions_due": len(due), "users": users, "candidates": total,
            "kept": decisions["kept"], "outranked": decisions["outranked"], "rejected": decisions["rejected"],
            "rejected_by_reason": dg.MetadataValue.json(dict(sorted(rejected.items()))),
            "junk_rate": dg.MetadataValue.float(round(decisions["rejected"] / total, 3) if total else 0.0),
            "extraction_errors": len(errors), "events_written": inserted, "extractor": extractor,
            "tokens_per_user_night": (run.usage.total_tokens // users) if users else 0,
            **run.as_metadata(),
            "facts_by_decision": md.counts(frame, "source", "decision"), "columns": md.schema(frame),
        },
        check_results=[
            dg.AssetCheckResult(check_name="extraction_succeeded", passed=not errors,
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"failed_sessions": dg.MetadataValue.json(errors)}),
            dg.AssetCheckResult(check_name="kept_facts_in_user_context", passed=not missing,
                                metadata={"checked": len(kept_ids), "missing": len(missing)}),
        ],
    )


# =========================================================================== gold: session summaries
@dg.asset(
    key=SESSION_SUMMARIES_KEY,
    partitions_def=memory_days,
    deps=[SILVER_SESSIONS, SILVER_MESSAGES],
    group_name="memory",
    kinds={"deltalake", "polars", "anthropic"},
    owners=OWNERS,
    pool="llm",
    retry_policy=RETRY,
    description=(
        "2–4 sentence, past-tense, third-person summaries of the day's sessions with >= 5 user messages, stored as "
        "'[YYYY-MM-DD] …' in gold/session_summaries and written back to the chat app's chat_sessions.summary."
    ),
    check_specs=[dg.AssetCheckSpec("every_long_session_summarized", asset=SESSION_SUMMARIES_KEY,
                                   description="Each session with >= 5 user messages has a summary.")],
)
def session_summaries(
    context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane, llm_batches: LLMBatches
) -> dg.MaterializeResult:
    day, _, _ = _day(context)
    store = warehouse.store
    due = nightly.due_sessions(store, day, nightly.MIN_USER_MESSAGES_SUMMARY)
    requests = []
    for s in due:
        system, prompt = nightly.summary_request_parts(s)
        requests.append(BatchRequest(custom_id=f"summary-{s.custom_id}", user_id=s.user_id, system=system,
                                     prompt=prompt, output=SessionSummary,
                                     offline=partial(nightly.offline_summary_for, s),
                                     max_tokens=nightly.SUMMARY_MAX_TOKENS))
    results, run = llm_batches.run(task="memory", requests=requests, scope=_scope(context, SESSION_SUMMARIES_KEY))
    rows, errors = [], {}
    for s in due:
        res = results[f"summary-{s.custom_id}"]
        if res.value is None:
            errors[s.session_id] = res.error or "no answer"
            continue
        rows.append(nightly.summary_row(s, res.value.summary, res.model, res.offline))
    frame = nightly.summaries_frame(rows)
    _replace(store, SESSION_SUMMARIES, frame, Eq("session_day", day))
    with control_plane.session() as session:
        written_back = nightly.write_back_summaries(session, rows)
    inserted = write_events(store, [nightly.summary_event(r) for r in rows], run_id=_run_id(context))
    return dg.MaterializeResult(
        metadata={"sessions_due": len(due), "summaries": len(rows), "written_back": written_back,
                  "errors": len(errors), "events_written": inserted, **run.as_metadata(),
                  "session_ids": md.ids(frame["session_id"] if frame.height else []), "columns": md.schema(frame)},
        check_results=[dg.AssetCheckResult(check_name="every_long_session_summarized", passed=not errors,
                                           severity=dg.AssetCheckSeverity.WARN,
                                           metadata={"failed_sessions": dg.MetadataValue.json(errors)})],
    )


# =========================================================================== gold: activity patterns
ACTIVE_DAYS = 14
#: Events the memory domain writes itself: not user activity, and some are written by sibling assets
#: of the same nightly run (in no fixed order), so reading them would make a re-run see more.
MEMORY_BOOKKEEPING = frozenset({"pattern_detected", "memory_written", "session_summary_written",
                                "conversation_analyzed", "chat_session", "weekly_digest_sent"})


@dg.asset(
    key=ACTIVITY_PATTERNS_KEY,
    partitions_def=memory_days,
    group_name="memory",
    kinds={"deltalake", "polars"},
    owners=OWNERS,
    retry_policy=RETRY,
    description=(
        "Rule-based activity patterns (day of week, time of day, type preference, edit location, formatting length; "
        "confidence 0.6) over the last 30 days of activity_log of each user active in the last 14 days (deliverables, "
        "syncs, imports, signals; not memory bookkeeping), and per-edit feedback of the day "
        "(confidence 0.7); upserted into user_context with a pattern_detected event carrying that user's counts."
    ),
    check_specs=[dg.AssetCheckSpec("one_event_per_user", asset=ACTIVITY_PATTERNS_KEY,
                                   description="Exactly one pattern_detected event per evaluated user and day.")],
)
def activity_patterns(
    context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane
) -> dg.MaterializeResult:
    day, _, end = _day(context)
    store = warehouse.store
    meaningful = sorted(EVENT_TYPES - NOISE_EVENT_TYPES - MEMORY_BOOKKEEPING)
    recent = read_events(store, since=end - dt.timedelta(days=ACTIVE_DAYS), until=end - dt.timedelta(microseconds=1),
                         event_types=meaningful)
    users = sorted(recent["user_id"].unique().to_list())
    window = read_events(store, user_ids=users, since=end - dt.timedelta(days=patterns.WINDOW_DAYS),
                         until=end - dt.timedelta(microseconds=1), event_types=meaningful) if users \
        else recent.head(0)
    rows: list[dict[str, Any]] = []
    events: list[ActivityEvent] = []
    as_of = end - dt.timedelta(microseconds=1)
    with control_plane.session() as session:
        zones = {u.id: u.timezone for u in session.query(User).filter(User.id.in_(users))} if users else {}
    counts_by_user: dict[str, dict[str, Any]] = {}
    by_user = {str(k[0]): v for k, v in window.partition_by("user_id", as_dict=True).items()}  # one pass, not U
    for user_id in users:
        mine = by_user.get(user_id, window.head(0))
        found = patterns.detect(user_id, mine, zones.get(user_id, "UTC"), as_of=as_of)
        todays_edits = mine.filter(pl.col("event_date") == dt.date.fromisoformat(day))
        feedback = patterns.edit_feedback(user_id, todays_edits)
        found.detected.extend(feedback)
        with control_plane.session() as session:
            for d in found.detected:
                ref = f"activity:{day}" if d.source == "pattern" else f"edit:{d.evidence.get('event_id')}"
                outcome = user_context.upsert(session, user_context.Assertion(
                    user_id=user_id, key=d.key, value=d.value, source=d.source, confidence=d.confidence,
                    observed_at=d.observed_at, source_ref=ref), now=utcnow())
                status = outcome.history_status if outcome.action == "replayed" else outcome.action
                decision = {"current": "kept", "superseded": "kept", "retracted": "kept", "outranked": "outranked",
                            "inserted": "kept", "replaced": "kept", "upgraded": "kept"}.get(status or "", "unchanged")
                rows.append({"user_id": user_id, "pattern_day": day, "key": d.key, "value": d.value,
                             "confidence": d.confidence, "source": d.source,
                             "evidence": json.dumps(d.evidence, sort_keys=True, default=str), "decision": decision})
                if outcome.changed:
                    events.append(ActivityEvent(
                        user_id=user_id, event_type="memory_written", summary=f"Noted: {d.value[:60]}",
                        idempotency_key=outcome.assertion_id, event_ref=outcome.assertion_id, created_at=d.observed_at,
                        event_date=dt.date.fromisoformat(day),
                        metadata={"key": d.key, "source": d.source, "confidence": d.confidence},
                    ))
        counts = found.counts()
        counts_by_user[user_id] = counts
        events.append(ActivityEvent(
            user_id=user_id, event_type="pattern_detected",
            summary=f"Activity patterns: {len(counts['patterns'])} found over {found.runs} deliverable runs",
            idempotency_key=f"patterns:{day}", created_at=as_of, event_date=dt.date.fromisoformat(day),
            metadata=counts,
        ))
    frame = ACTIVITY_PATTERNS.conform(pl.DataFrame(rows, schema=dict(ACTIVITY_PATTERNS.schema))) if rows \
        else ACTIVITY_PATTERNS.empty()
    keyed = frame.unique(["user_id", "pattern_day", "key"], keep="last", maintain_order=True)
    _replace(store, ACTIVITY_PATTERNS, keyed, Eq("pattern_day", day))
    inserted = write_events(store, events, run_id=_run_id(context))
    detected_events = read_events(store, since=end - dt.timedelta(days=1), until=as_of,
                                  event_types=["pattern_detected"])
    per_user = detected_events.filter(pl.col("event_date") == dt.date.fromisoformat(day)).group_by("user_id").len()
    bad = per_user.filter(pl.col("len") != 1).height + len(set(users) - set(per_user["user_id"].to_list()))
    return dg.MaterializeResult(
        metadata={"users_evaluated": len(users), "patterns": int((keyed["source"] == "pattern").sum()),
                  "feedback": int((keyed["source"] == "feedback").sum()), "events_written": inserted,
                  "counts_by_user": dg.MetadataValue.json(counts_by_user),
                  "patterns_by_decision": md.counts(keyed, "source", "decision"), "columns": md.schema(keyed)},
        check_results=[dg.AssetCheckResult(check_name="one_event_per_user", passed=bad == 0,
                                           metadata={"users": len(users), "violations": bad})],
    )


# =========================================================================== gold: conversation analysis
@dg.asset(
    key=SUGGESTIONS_KEY,
    partitions_def=memory_days,
    ins={
        "sessions": dg.AssetIn(SILVER_SESSIONS, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-6),
                               dagster_type=dg.Nothing),
        "messages": dg.AssetIn(SILVER_MESSAGES, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-6),
                               dagster_type=dg.Nothing),
    },
    group_name="memory",
    kinds={"deltalake", "polars", "anthropic"},
    owners=OWNERS,
    pool="llm",
    retry_policy=RETRY,
    description=(
        "Conversation analysis over the last 7 days of chats of each user (stage thresholds of the original): "
        "kept suggestions become paused analyst_suggested deliverables (never duplicating a type+platform the user "
        "has), with one suggestion email; gold/deliverable_suggestions records every suggestion and its fate."
    ),
    check_specs=[dg.AssetCheckSpec("no_duplicate_deliverables", asset=SUGGESTIONS_KEY,
                                   description="No user has two deliverables of the same type and platform.")],
)
def deliverable_suggestions(
    context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane, llm_batches: LLMBatches,
    memory_mailer: MemoryMailer,
) -> dg.MaterializeResult:
    day, _, end = _day(context)
    store = warehouse.store
    first = (dt.date.fromisoformat(day) - dt.timedelta(days=analysis.LOOKBACK_DAYS - 1)).isoformat()
    next_day = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    recent = store.read(CHAT_SESSIONS, Window("session_day", first, next_day)).sort(
        ["started_at", "session_id"], descending=True)
    users = sorted(recent["user_id"].unique().to_list())
    stages: dict[str, analysis.UserStage] = {}
    requests = []
    existing: dict[str, list[Any]] = {}
    for user_id in users:
        with control_plane.session() as session:
            user = session.get(User, user_id)
            if user is None or user.status != "active":
                continue
            counted = analysis.counted_deliverables(session, user_id)
            have = list(session.query(Deliverable).filter_by(user_id=user_id))
        all_sessions = store.read(CHAT_SESSIONS, all_of(Eq("user_id", user_id), Window("session_day", "0000",
                                                                                          next_day)),
                                  columns=["session_id"]).height
        age = (end - user.created_at).total_seconds() / 86400
        stage = analysis.stage_for(age, all_sessions, len(counted))
        stages[user_id] = stage
        existing[user_id] = have
        if stage.threshold is None:
            continue
        mine = recent.filter(pl.col("user_id") == user_id).head(analysis.MAX_SESSIONS)
        msgs = store.read(CHAT_MESSAGES, all_of(Window("session_day", first, next_day), Eq("user_id", user_id),
                                                Eq("role", "user"), In("session_id", mine["session_id"].to_list())))
        by_session = {sid: g.sort("sequence")["content"].to_list()
                      for (sid,), g in msgs.group_by(["session_id"])}
        convo = [(r["session_day"], by_session.get(r["session_id"], [])) for r in mine.iter_rows(named=True)]
        requests.append(BatchRequest(
            custom_id=f"analysis-{_cid(user_id)}", user_id=user_id,
            system=analysis.ANALYSIS_SYSTEM, prompt=analysis.analysis_prompt(convo, have),
            output=analysis.AnalysisResult, offline=partial(analysis.offline_analysis, convo),
            max_tokens=analysis.ANALYSIS_MAX_TOKENS,
        ))
    results, run = llm_batches.run(task="analysis", requests=requests, scope=_scope(context, SUGGESTIONS_KEY))
    by_user = {r.user_id: results[r.custom_id] for r in requests}
    rows: list[dict[str, Any]] = []
    events: list[ActivityEvent] = []
    emails: Counter[str] = Counter()
    errors: dict[str, str] = {}
    for user_id, stage in stages.items():
        res = by_user.get(user_id)
        created: list[analysis.Decision] = []
        with control_plane.session() as session:
            user = session.get(User, user_id)
            assert user is not None
            if res is not None and res.value is not None:
                decisions = analysis.decide(session, user, day, stage, res.value, model=res.model,
                                            offline=res.offline, now=end)
                for d in decisions:
                    rows.append({"user_id": user_id, "analysis_day": day, "stage": stage.stage,
                                 "deliverable_type": d.suggestion.deliverable_type, "platform": d.platform,
                                 "title": d.suggestion.title, "confidence": d.suggestion.confidence,
                                 "threshold": stage.threshold, "decision": d.decision,
                                 "deliverable_id": d.deliverable_id, "reason": d.suggestion.reason,
                                 "model": res.model, "offline": res.offline})
                created = [d for d in decisions if d.decision == "created"]
            elif res is not None:
                errors[user_id] = res.error or "no answer"
            emails[_analysis_email(session, memory_mailer, user, day, stage, created, context)] += 1
        events.append(ActivityEvent(
            user_id=user_id, event_type="conversation_analyzed",
            summary=f"Conversation analysis ({stage.stage}): {len(created)} deliverable(s) suggested",
            idempotency_key=f"analysis:{day}", created_at=end - dt.timedelta(microseconds=1),
            event_date=dt.date.fromisoformat(day),
            metadata={"stage": stage.stage, "threshold": stage.threshold, "sessions": stage.sessions,
                      "deliverables": stage.deliverables, "suggested": len(created)},
        ))
    frame = DELIVERABLE_SUGGESTIONS.conform(pl.DataFrame(rows, schema=dict(DELIVERABLE_SUGGESTIONS.schema))) \
        if rows else DELIVERABLE_SUGGESTIONS.empty()
    _replace(store, DELIVERABLE_SUGGESTIONS, frame, Eq("analysis_day", day))
    inserted = write_events(store, events, run_id=_run_id(context))
    with control_plane.session() as session:
        owned = session.query(Deliverable).filter(Deliverable.user_id.in_(list(stages)),
                                                  Deliverable.status != "archived").all()
    pairs = Counter((d.user_id, d.deliverable_type, analysis.platform_of(d)) for d in owned)
    doubled = sorted(f"{u}:{t}/{p or '-'}" for (u, t, p), n in pairs.items() if n > 1)
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(
        check_name="no_duplicate_deliverables", passed=not doubled, severity=dg.AssetCheckSeverity.WARN,
        metadata={"users_checked": len(stages), "duplicates": dg.MetadataValue.json(doubled)},
    )], metadata={
        "users_with_chats": len(users),
        "stages": dg.MetadataValue.json(dict(Counter(s.stage for s in stages.values()))),
        "suggestions": len(rows), "created": int((frame["decision"] == "created").sum()) if rows else 0,
        "duplicates": int((frame["decision"] == "duplicate").sum()) if rows else 0,
        "emails": dg.MetadataValue.json(dict(emails)), "errors": dg.MetadataValue.json(errors),
        "events_written": inserted, **run.as_metadata(),
        "suggestions_by_type": md.counts(frame, "stage", "deliverable_type", "decision"),
    })


def _cid(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:32]


def _analysis_email(session: Any, mailer: MemoryMailer, user: User, day: str, stage: analysis.UserStage,
                    created: list[analysis.Decision], context: AssetExecutionContext) -> str:
    """One suggestion email per user and day, or one cold-start email per ISO week; at most once each."""
    prefs = user.preferences or {}
    if created:
        if prefs.get("email_suggestion_created", True) is False:
            return "opted_out"
        kind, period = "analysis_suggestions", day
        subject, text = analysis.suggestion_email(user, created)
    elif stage.threshold is not None and stage.deliverables == 0:
        kind, period = "analysis_cold_start", digest.iso_week(dt.datetime.fromisoformat(day))
        subject, text = analysis.cold_start_email(user)
    else:
        return "none"
    row_id = digest.claim(session, user, period, subject, kind=kind)
    if row_id is None:
        return "already_sent"
    try:
        sent = mailer.send(user_id=user.id, to=user.email, subject=subject, text=text,
                           idempotency_key=f"{kind}.{user.id}.{period}")
    except Exception as exc:  # recorded; the claim stays retryable
        digest.settle(session, row_id, ok=False, error=str(exc)[:500])
        context.log.error(f"{kind} email to user {user.id} failed: {exc}")
        return "failed"
    digest.settle(session, row_id, ok=True, message_id=sent.message_id, details={"transport": sent.transport})
    return kind


# =========================================================================== gold: weekly digests
@dg.asset(
    key=WEEKLY_DIGESTS_KEY,
    partitions_def=digest_hours,
    group_name="memory",
    kinds={"deltalake", "polars", "email"},
    owners=OWNERS,
    retry_policy=MAIL_RETRY,
    description=(
        "Weekly digests of the users due in this UTC hour (their local digest_day/digest_hour): the week's "
        "deliverables delivered, new memories and syncs, mailed to that user; skipped when empty; at most once per "
        "user and ISO week (notification_log claim)."
    ),
)
def weekly_digests(
    context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane, memory_mailer: MemoryMailer
) -> dg.MaterializeResult:
    hour = context.partition_time_window.start.astimezone(dt.UTC)
    start = hour - dt.timedelta(days=7)
    store = warehouse.store
    rows: list[dict[str, Any]] = []
    events: list[ActivityEvent] = []
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    with control_plane.session() as session:
        users = digest.due_users(session, hour)
        for user in users:
            week = digest.iso_week(hour.astimezone(digest.local_zone(user)))
            if digest.status_of(session, user.id, week) in ("sent", "sending"):
                outcomes["already_sent"] += 1
                continue
            counts = digest.week_counts(session, store, user.id, start, hour)
            row = {"user_id": user.id, "iso_week": week, "scheduled_for": hour, "period_start": start,
                   "period_end": hour, "versions_delivered": counts.versions_delivered,
                   "new_memory": counts.new_memory, "syncs": counts.syncs, "recipient": user.email}
            if counts.empty:
                rows.append({**row, "status": "skipped_empty"})
                outcomes["skipped_empty"] += 1
                continue
            subject, text, html = digest.render(user, counts, start, hour)
            claim = digest.claim(session, user, week, subject)
            if claim is None:
                outcomes["already_sent"] += 1
                continue
            try:
                sent = memory_mailer.send(user_id=user.id, to=user.email, subject=subject, text=text, html=html,
                                          idempotency_key=f"digest.{user.id}.{week}")
            except Exception as exc:
                digest.settle(session, claim, ok=False, error=str(exc)[:500])
                rows.append({**row, "status": "failed"})
                failures.append(f"{user.id}: {exc}")
                outcomes["failed"] += 1
                continue
            digest.settle(session, claim, ok=True, message_id=sent.message_id,
                          details={"transport": sent.transport, **counts.__dict__})
            rows.append({**row, "status": "sent", "transport": sent.transport, "message_id": sent.message_id})
            outcomes["sent"] += 1
            events.append(ActivityEvent(
                user_id=user.id, event_type="weekly_digest_sent", summary=f"Weekly digest sent: {subject}",
                idempotency_key=f"digest:{week}", created_at=hour, event_date=hour.date(),
                metadata={"iso_week": week, **counts.__dict__, "transport": sent.transport},
            ))
    if rows:
        frame = WEEKLY_DIGESTS.conform(pl.DataFrame(rows, schema=dict(WEEKLY_DIGESTS.schema)))
        store.merge(WEEKLY_DIGESTS, frame, update_when="t.status <> 'sent'")
    inserted = write_events(store, events, run_id=_run_id(context))
    if failures:
        raise dg.Failure(description=f"{len(failures)} weekly digest(s) failed to send (retryable)",
                         metadata={"failures": dg.MetadataValue.json(failures)})
    return dg.MaterializeResult(metadata={
        "users_due": len(users), "outcomes": dg.MetadataValue.json(dict(outcomes)), "sent": outcomes["sent"],
        "skipped_empty": outcomes["skipped_empty"], "already_sent": outcomes["already_sent"],
        "events_written": inserted,
    })


# =========================================================================== jobs
chat_ingest_job = dg.define_asset_job(
    "chat_ingest_job",
    selection=dg.AssetSelection.assets(BRONZE_CHATS, SILVER_SESSIONS, SILVER_MESSAGES),
    description="Chat imports of one day into bronze, then silver chat sessions/messages.",
)
memory_nightly_job = dg.define_asset_job(
    "memory_nightly_job",
    selection=dg.AssetSelection.assets(SILVER_SESSIONS, SILVER_MESSAGES, MEMORY_FACTS, SESSION_SUMMARIES_KEY,
                                       ACTIVITY_PATTERNS_KEY),
    description="Nightly memory of one UTC day: chat-app sessions into silver, facts, summaries, patterns. Backfill "
    "with `dagster job backfill -j memory_nightly_job --from 2026-11-16 --to 2026-11-22`.",
)
conversation_analysis_job = dg.define_asset_job(
    "conversation_analysis_job", selection=dg.AssetSelection.assets(SUGGESTIONS_KEY),
    description="Conversation analysis of the 7 days ending on the partition day.",
)
weekly_digest_job = dg.define_asset_job(
    "weekly_digest_job", selection=dg.AssetSelection.assets(WEEKLY_DIGESTS_KEY),
    description="Weekly digests of the users due in one UTC hour.",
)

ASSETS = [bronze_imported_chats, silver_chat, memory_facts, session_summaries, activity_patterns,
          deliverable_suggestions, weekly_digests]
JOBS = [chat_ingest_job, memory_nightly_job, conversation_analysis_job, weekly_digest_job]
