"""Nightly session summaries into gold/session_summaries and back to the chat app."""


from functools import partial

import dagster as dg
from dagster import AssetExecutionContext

from io_managers.predicates import Eq
from resources.control_plane import ControlPlane
from resources.llm_batches import BatchRequest, LLMBatches
from resources.warehouse import Warehouse
from yarn_assets.core import metadata as md
from yarn_assets.core.activity_log import write_events
from yarn_assets.core.shards import DEFAULT_SHARDS
from yarn_assets.memory import nightly
from yarn_assets.memory.assets.common import (
    CODE_VERSION,
    NIGHTLY_EAGER,
    OWNERS,
    RETRY,
    SESSION_SUMMARIES_KEY,
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
from yarn_assets.memory.extraction import SessionSummary
from yarn_assets.memory.tables import (
    SESSION_SUMMARIES,
)


def build_session_summaries(shards: int = DEFAULT_SHARDS) -> dg.AssetsDefinition:
    """``gold/session_summaries`` over (day × user shard) for ``shards`` shards."""

    @dg.asset(
        key=SESSION_SUMMARIES_KEY,
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
            "2–4 sentence, past-tense, third-person summaries of the day's sessions with >= 5 user messages, stored "
            "as '[YYYY-MM-DD] …' in gold/session_summaries and written back to the chat app's chat_sessions.summary. "
            "One run per (day, user shard): the shard's users only, one Message Batch."
        ),
        check_specs=[dg.AssetCheckSpec("every_long_session_summarized", asset=SESSION_SUMMARIES_KEY,
                                       description="Each session with >= 5 user messages has a summary.")],
    )
    def session_summaries(
        context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane, llm_batches: LLMBatches
    ) -> dg.MaterializeResult:
        return session_summaries_body(context, warehouse, control_plane, llm_batches, _shard(context, shards))

    return session_summaries


def session_summaries_body(context: AssetExecutionContext, warehouse: Warehouse, control_plane: ControlPlane,
                           llm_batches: LLMBatches, shard: Shard) -> dg.MaterializeResult:
    """One (day, shard): summaries of the shard's users' long sessions, written as that part of the day."""
    day, _, _ = _day(context)
    store = warehouse.store
    due = nightly.due_sessions(store, day, nightly.MIN_USER_MESSAGES_SUMMARY, users_of=shard.users)
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
    _replace_shard(store, SESSION_SUMMARIES, frame, Eq("session_day", day), shard, [s.user_id for s in due])
    with control_plane.session() as session:
        written_back = nightly.write_back_summaries(session, rows)
    inserted = write_events(store, [nightly.summary_event(r) for r in rows], run_id=_run_id(context))
    return dg.MaterializeResult(
        metadata={"shard": shard.label(), "sessions_due": len(due), "summaries": len(rows),
                  "written_back": written_back, "errors": len(errors), "events_written": inserted, **run.as_metadata(),
                  "session_ids": md.ids(frame["session_id"] if frame.height else []), "columns": md.schema(frame),
                  **_table_md(store, SESSION_SUMMARIES, partition_rows=frame.height)},
        check_results=[dg.AssetCheckResult(check_name="every_long_session_summarized", passed=not errors,
                                           severity=dg.AssetCheckSeverity.WARN,
                                           metadata={"failed_sessions": dg.MetadataValue.json(errors)})],
    )


#: The asset with the default shard count (tests, tools); ``definitions()`` builds it from the setting.
session_summaries = build_session_summaries()
