"""Nightly fact extraction from the day's sessions into user_context and gold/memory_facts."""


from collections import Counter, defaultdict
from functools import partial
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from control_plane.models import UserContextHistory, utcnow
from io_managers.predicates import Eq
from resources.control_plane import ControlPlane
from resources.llm_batches import BatchRequest, LLMBatches
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.core.shards import DEFAULT_SHARDS
from yarn_assets.memory import nightly
from yarn_assets.memory.assets.common import (
    CODE_VERSION,
    MEMORY_FACTS,
    NIGHTLY_EAGER,
    OWNERS,
    RETRY,
    SILVER_MESSAGES,
    SILVER_SESSIONS,
    Shard,
    _day,
    _replace_shard,
    _run_id,
    _scope,
    _shard,
    _table_md,
    memory_partitions,
)
from yarn_assets.memory.extraction import FactExtraction
from yarn_assets.memory.tables import (
    FACT_CANDIDATES,
)


def build_memory_facts(shards: int = DEFAULT_SHARDS) -> dg.AssetsDefinition:
    """``gold/memory_facts`` over (day × user shard) for ``shards`` shards."""

    @dg.asset(
        key=MEMORY_FACTS,
        partitions_def=memory_partitions(shards),
        deps=[SILVER_SESSIONS, SILVER_MESSAGES],
        group_name="memory",
        code_version=CODE_VERSION,
        automation_condition=NIGHTLY_EAGER,
        kinds={"deltalake", "polars", "anthropic"},
        owners=OWNERS,
        pool="llm",
        retry_policy=RETRY,
        description=(
            "Facts, preferences and instructions extracted nightly from the user turns of the day's sessions with "
            ">= 3 user messages, screened by the junk filter and upserted into the control-plane user_context "
            "(history kept). gold/memory_facts holds every candidate with its decision and junk reason. One run "
            "per (day, user shard): the shard's users only, one Message Batch."
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
        return memory_facts_body(context, warehouse, control_plane, llm_batches, _shard(context, shards))

    return memory_facts


def memory_facts_body(context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane,
                      llm_batches: LLMBatches, shard: Shard) -> dg.MaterializeResult:
    """One (day, shard): the facts of the shard's users' sessions of the day, written as that part of the day."""
    day, _, _ = _day(context)
    store = warehouse.store
    due = nightly.due_sessions(store, day, nightly.MIN_USER_MESSAGES_FACTS, users_of=shard.users)
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
    _replace_shard(store, FACT_CANDIDATES, frame, Eq("session_day", day), shard, [s.user_id for s in due])
    inserted = write_events(store, events, run_id=_run_id(context))
    kept_ids = [r["candidate_id"] for r in rows if r["decision"] in ("kept", "outranked")]
    with control_plane.session() as session:
        found = {h.id for h in session.query(UserContextHistory.id).filter(UserContextHistory.id.in_(kept_ids))}
    missing = [cid for cid in kept_ids if cid not in found]
    users = len({s.user_id for s in due})
    total = len(rows)
    return dg.MaterializeResult(
        metadata={
            "shard": shard.label(), "sessions_due": len(due), "users": users, "candidates": total,
            "kept": decisions["kept"], "outranked": decisions["outranked"], "rejected": decisions["rejected"],
            "rejected_by_reason": dg.MetadataValue.json(dict(sorted(rejected.items()))),
            "junk_rate": dg.MetadataValue.float(round(decisions["rejected"] / total, 3) if total else 0.0),
            "extraction_errors": len(errors), "events_written": inserted, "extractor": extractor,
            "tokens_per_user_night": (run.usage.total_tokens // users) if users else 0,
            **run.as_metadata(),
            "facts_by_decision": md.counts(frame, "source", "decision"), "columns": md.schema(frame),
            **_table_md(store, FACT_CANDIDATES, partition_rows=frame.height),
        },
        check_results=[
            dg.AssetCheckResult(check_name="extraction_succeeded", passed=not errors,
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"failed_sessions": dg.MetadataValue.json(errors)}),
            dg.AssetCheckResult(check_name="kept_facts_in_user_context", passed=not missing,
                                metadata={"checked": len(kept_ids), "missing": len(missing)}),
        ],
    )


#: The asset with the default shard count (tests, tools); ``definitions()`` builds it from the setting.
memory_facts = build_memory_facts()
