"""Nightly rule-based activity patterns and edit feedback from activity_log."""


import datetime as dt
import json
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from control_plane.models import User, utcnow
from io_managers.predicates import Eq
from resources.control_plane import ControlPlane
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.core.activity_log import (
    EVENT_TYPES,
    NOISE_EVENT_TYPES,
    ActivityEvent,
    read_events,
    users_with_events,
    write_events,
)
from yarn_assets.core.shards import DEFAULT_SHARDS
from yarn_assets.memory import patterns, user_context
from yarn_assets.memory.assets.common import (
    ACTIVITY_LOG,
    ACTIVITY_PATTERNS_KEY,
    CODE_VERSION,
    NIGHTLY,
    OWNERS,
    RETRY,
    Shard,
    _day,
    _replace_shard,
    _run_id,
    _shard,
    _table_md,
    memory_partitions,
)
from yarn_assets.memory.tables import (
    ACTIVITY_PATTERNS,
)

# =========================================================================== gold: activity patterns
ACTIVE_DAYS = 14
#: Events the memory domain writes itself: not user activity, and some are written by sibling assets
#: of the same nightly run (in no fixed order), so reading them would make a re-run see more.
MEMORY_BOOKKEEPING = frozenset({"pattern_detected", "memory_written", "session_summary_written",
                                "conversation_analyzed", "chat_session", "weekly_digest_sent"})


def build_activity_patterns(shards: int = DEFAULT_SHARDS) -> dg.AssetsDefinition:
    """``gold/activity_patterns`` over (day × user shard) for ``shards`` shards."""

    @dg.asset(
        key=ACTIVITY_PATTERNS_KEY,
        partitions_def=memory_partitions(shards),
        deps=[ACTIVITY_LOG],
        group_name="memory",
        code_version=CODE_VERSION,
        automation_condition=NIGHTLY,
        kinds={"deltalake", "polars"},
        owners=OWNERS,
        retry_policy=RETRY,
        description=(
            "Rule-based activity patterns (day of week, time of day, type preference, edit location, formatting "
            "length; confidence 0.6) over the last 30 days of activity_log of each user active in the last 14 days "
            "(deliverables, syncs, imports, signals; not memory bookkeeping), and per-edit feedback of the day "
            "(confidence 0.7); upserted into user_context with a pattern_detected event carrying that user's "
            "counts. One run per (day, user shard): the shard's users only."
        ),
        check_specs=[dg.AssetCheckSpec("one_event_per_user", asset=ACTIVITY_PATTERNS_KEY,
                                       description="Exactly one pattern_detected event per evaluated user and day.")],
    )
    def activity_patterns(
        context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane
    ) -> dg.MaterializeResult:
        return activity_patterns_body(context, warehouse, control_plane, _shard(context, shards))

    return activity_patterns


def activity_patterns_body(context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane,
                           shard: Shard) -> dg.MaterializeResult:
    """One (day, shard): the shard's active users, their 30-day window read in one scan, grouped once."""
    day, _, end = _day(context)
    store = warehouse.store
    meaningful = sorted(EVENT_TYPES - NOISE_EVENT_TYPES - MEMORY_BOOKKEEPING)
    users = shard.users(users_with_events(store, since=end - dt.timedelta(days=ACTIVE_DAYS),
                                          until=end - dt.timedelta(microseconds=1), event_types=meaningful))
    window = read_events(store, user_ids=users or [""], since=end - dt.timedelta(days=patterns.WINDOW_DAYS),
                         until=end - dt.timedelta(microseconds=1), event_types=meaningful)
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
    _replace_shard(store, ACTIVITY_PATTERNS, keyed, Eq("pattern_day", day), shard, users)
    inserted = write_events(store, events, run_id=_run_id(context))
    # until ``end`` (the window is half-open): the events are stamped ``as_of``, the day's last microsecond
    detected_events = read_events(store, user_ids=users or [""], since=end - dt.timedelta(days=1), until=end,
                                  event_types=["pattern_detected"])
    per_user = detected_events.filter(pl.col("event_date") == dt.date.fromisoformat(day)).group_by("user_id").len()
    bad = per_user.filter(pl.col("len") != 1).height + len(set(users) - set(per_user["user_id"].to_list()))
    return dg.MaterializeResult(
        metadata={"shard": shard.label(), "users_evaluated": len(users),
                  "patterns": int((keyed["source"] == "pattern").sum()),
                  "feedback": int((keyed["source"] == "feedback").sum()), "events_written": inserted,
                  "counts_by_user": dg.MetadataValue.json(counts_by_user),
                  "patterns_by_decision": md.counts(keyed, "source", "decision"), "columns": md.schema(keyed),
                  **_table_md(store, ACTIVITY_PATTERNS, partition_rows=keyed.height)},
        check_results=[dg.AssetCheckResult(check_name="one_event_per_user", passed=bad == 0,
                                           metadata={"users": len(users), "violations": bad})],
    )


#: The asset with the default shard count (tests, tools); ``definitions()`` builds it from the setting.
activity_patterns = build_activity_patterns()
