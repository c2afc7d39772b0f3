"""Conversation analysis: deliverable suggestions from the last 7 days of chats."""


import datetime as dt
import hashlib
from collections import Counter
from functools import partial
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from control_plane.models import Deliverable, User
from io_managers.predicates import Eq, In, Window, all_of
from resources.control_plane import ControlPlane
from resources.llm_batches import BatchRequest, LLMBatches
from resources.mailer import MemoryMailer
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.memory import analysis, digest
from yarn_assets.memory.assets.common import (
    CODE_VERSION,
    OWNERS,
    RETRY,
    SILVER_MESSAGES,
    SILVER_SESSIONS,
    SUGGESTIONS_KEY,
    _day,
    _replace,
    _run_id,
    _scope,
    _table_md,
    memory_days,
)
from yarn_assets.memory.tables import (
    CHAT_MESSAGES,
    CHAT_SESSIONS,
    DELIVERABLE_SUGGESTIONS,
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
    code_version=CODE_VERSION,
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
    # every user's all-time session count in one read of one column (not one scan per user)
    counts = store.read(CHAT_SESSIONS, all_of(In("user_id", users or [""]), Window("session_day", "0000", next_day)),
                        columns=["user_id"]).group_by("user_id").len()
    session_counts = dict(zip(counts["user_id"].to_list(), counts["len"].to_list(), strict=True))
    stages: dict[str, analysis.UserStage] = {}
    requests = []
    existing: dict[str, list[Any]] = {}
    chosen: dict[str, pl.DataFrame] = {}
    for user_id in users:
        with control_plane.session() as session:
            user = session.get(User, user_id)
            if user is None or user.status != "active":
                continue
            counted = analysis.counted_deliverables(session, user_id)
            have = list(session.query(Deliverable).filter_by(user_id=user_id))
        age = (end - user.created_at).total_seconds() / 86400
        stage = analysis.stage_for(age, session_counts.get(user_id, 0), len(counted))
        stages[user_id] = stage
        existing[user_id] = have
        if stage.threshold is not None:
            chosen[user_id] = recent.filter(pl.col("user_id") == user_id).head(analysis.MAX_SESSIONS)
    # the chosen sessions' user turns of every analysed user in one read, grouped once
    ids = [sid for mine in chosen.values() for sid in mine["session_id"].to_list()]
    msgs = store.read(CHAT_MESSAGES, all_of(Window("session_day", first, next_day), In("user_id", list(chosen) or [""]),
                                            Eq("role", "user"), In("session_id", ids or [""])))
    turns = {(uid, sid): g.sort("sequence")["content"].to_list()
             for (uid, sid), g in msgs.group_by(["user_id", "session_id"])}
    for user_id, mine in chosen.items():
        have = existing[user_id]
        convo = [(r["session_day"], turns.get((user_id, r["session_id"]), [])) for r in mine.iter_rows(named=True)]
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
        **_table_md(store, DELIVERABLE_SUGGESTIONS, partition_rows=frame.height),
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


