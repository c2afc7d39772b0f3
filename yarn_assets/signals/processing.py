"""One hour of signal processing: every eligible user, both passes, failures isolated per user.

A pass:

1. extracts the user's summary from silver at ``as_of`` (:mod:`yarn_assets.signals.extraction`);
2. skips the decision when there are fewer than 3 items (``too_few_items``) or, with the wake gate
   on, when its fingerprint (content versions + time-sensitive candidates) equals that of the user's
   last evaluated pass and nothing was deferred (``wake_gate``);
3. otherwise asks the LLM (offline: the deterministic rules) for a :class:`SignalDecision`, with
   the user's memory, recent meaningful activity and deliverables;
4. screens and executes the actions (:mod:`yarn_assets.signals.actions`);
5. yields its summary row, action rows and a ``signal_processed`` event (idempotency key
   ``user|pass|hour``; manual passes add ``|manual``).

A failure of one user's pass (malformed output twice, API error, a bug) is recorded on that pass's
row and never stops the other users.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import traceback
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.models import User
from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, In, Predicate, Window, all_of
from resources.llm import LLM, LLMBudgetExceeded, LLMCallError, LLMOutputError, LLMScope, LLMUsage
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.people import service as people
from yarn_assets.signals import actions as act
from yarn_assets.signals import context as ctxmod
from yarn_assets.signals import rules
from yarn_assets.signals.extraction import COLUMNS, SignalSummary, extract
from yarn_assets.signals.prompt import SYSTEM_PROMPT, SignalDecision, render_prompt
from yarn_assets.signals.tables import PASSES, SIGNAL_ACTIONS, SIGNAL_SUMMARIES

log = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager[Session]]
MAX_TOKENS = 1000
LOOKBACK_DAYS = 7  # how far back the wake gate looks for the user's last evaluated pass


@dataclass(frozen=True)
class Policy:
    excluded_tiers: tuple[str, ...] = ("free",)
    wake_gate: bool = True
    followup_days: int = 3
    min_items: int = 3
    min_confidence: float = act.MIN_CONFIDENCE


@dataclass(frozen=True)
class HourSpec:
    partition_key: str
    hour_start: dt.datetime
    as_of: dt.datetime
    now: dt.datetime
    trigger: str = "schedule"  # schedule | manual

    @classmethod
    def for_window(cls, partition_key: str, start: dt.datetime, end: dt.datetime, now: dt.datetime,
                   trigger: str = "schedule") -> HourSpec:
        """``as_of`` is the hour's end, or now while the hour is still running."""
        return cls(partition_key, start, min(end, now), now, trigger)


@dataclass
class PassResult:
    user_id: str
    pass_name: str
    status: str  # evaluated | skipped | failed
    summary_row: dict[str, Any]
    action_rows: list[dict[str, Any]] = field(default_factory=list)
    event: ActivityEvent | None = None
    usage: LLMUsage = field(default_factory=LLMUsage)
    skip_reason: str | None = None
    error: str | None = None
    transient: bool = False
    replayed: int = 0


@dataclass
class HourResult:
    passes: list[PassResult] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    ignored_users: list[str] = field(default_factory=list)

    @property
    def usage(self) -> LLMUsage:
        total = LLMUsage()
        for p in self.passes:
            total = total + p.usage
        return total

    def summary_frame(self) -> pl.DataFrame:
        rows = [p.summary_row for p in self.passes]
        return pl.DataFrame(rows, schema=dict(SIGNAL_SUMMARIES.schema)) if rows else SIGNAL_SUMMARIES.empty()

    def action_frame(self) -> pl.DataFrame:
        rows = [r for p in self.passes for r in p.action_rows]
        return pl.DataFrame(rows, schema=dict(SIGNAL_ACTIONS.schema)) if rows else SIGNAL_ACTIONS.empty()

    def events(self) -> list[ActivityEvent]:
        return [p.event for p in self.passes if p.event is not None]

    def count(self, status: str, reason: str | None = None) -> int:
        return sum(1 for p in self.passes if p.status == status and (reason is None or p.skip_reason == reason))

    @property
    def failed(self) -> list[PassResult]:
        return [p for p in self.passes if p.status == "failed"]

    @property
    def should_retry(self) -> bool:
        """Every decision that was attempted failed transiently (an API outage): worth a retry of the hour."""
        attempted = [p for p in self.passes if p.status in ("evaluated", "failed")]
        return bool(attempted) and all(p.status == "failed" and p.transient for p in attempted)


# ------------------------------------------------------------------------------------------ inputs
def eligible_users(session: Session, excluded_tiers: Iterable[str], only: Sequence[str] | None = None
                   ) -> tuple[list[str], list[str]]:
    """(eligible, ignored): active users outside the excluded tiers; ``only`` narrows (manual runs)."""
    excluded = set(excluded_tiers)
    q = select(User.id, User.tier, User.status).order_by(User.id)
    if only:
        q = q.where(User.id.in_(list(only)))
    eligible, ignored = [], []
    for uid, tier, status in session.execute(q):
        (eligible if status == "active" and tier not in excluded else ignored).append(uid)
    if only:
        ignored += sorted(set(only) - set(eligible) - set(ignored))
    return eligible, ignored


def load_silver(store: DeltaStore, user_ids: Sequence[str], as_of: dt.datetime) -> dict[str, pl.DataFrame]:
    """Each user's silver rows known at ``as_of``, split by user (nothing else is ever handed on)."""
    if not user_ids:
        return {}
    lf = store.scan(PLATFORM_CONTENT, In("user_id", list(user_ids)))
    if lf is None:
        return {}
    frame = lf.filter(pl.col("fetched_at") <= pl.lit(as_of)).select(COLUMNS).collect()
    return {str(k[0]): v for k, v in frame.partition_by("user_id", as_dict=True).items()}


@dataclass(frozen=True)
class PreviousPass:
    partition_hour: dt.datetime
    as_of: dt.datetime
    fingerprint: str
    deferred: int


def previous_passes(store: DeltaStore, user_ids: Sequence[str], spec: HourSpec) -> dict[tuple[str, str], PreviousPass]:
    """Each (user, pass)'s latest evaluated pass before this one (excluding the rows being replaced)."""
    lo = (spec.hour_start - dt.timedelta(days=LOOKBACK_DAYS)).date()
    pred = all_of(Window("signal_date", lo, spec.hour_start.date() + dt.timedelta(days=1)), In("user_id", user_ids))
    lf = store.scan(SIGNAL_SUMMARIES, pred)
    if lf is None or not user_ids:
        return {}
    frame = (
        lf.filter(
            (pl.col("status") == "evaluated")
            & (pl.col("as_of") < pl.lit(spec.as_of))
            & ~((pl.col("partition_hour") == pl.lit(spec.hour_start)) & (pl.col("trigger") == spec.trigger))
        )
        .select(["user_id", "pass", "partition_hour", "as_of", "fingerprint", "deferred"])
        .collect()
        .sort("as_of")
        .unique(["user_id", "pass"], keep="last")
    )
    return {
        (r["user_id"], r["pass"]): PreviousPass(r["partition_hour"], r["as_of"], r["fingerprint"], r["deferred"] or 0)
        for r in frame.iter_rows(named=True)
    }


@dataclass
class UserInputs:
    profile: ctxmod.UserProfile
    selected: dict[str, set[str] | None]
    deliverables: list[ctxmod.DeliverableView]
    history: dict[tuple[str, str], act.HistoryEntry]
    memory: list[str]
    _activity: list[str] | None = None

    def activity(self, store: DeltaStore, as_of: dt.datetime) -> list[str]:
        if self._activity is None:
            self._activity = ctxmod.load_activity(store, self.profile.id, as_of)
        return self._activity

    def contacts(self, store: DeltaStore) -> rules.ContactLookup:
        """The user's contacts by address (people domain), read only when a rule needs a name."""
        return lambda values: people.labels_for(store, self.profile.id, values)


def load_user_inputs(session_factory: SessionFactory, store: DeltaStore, user_id: str) -> UserInputs:
    with session_factory() as session:
        return UserInputs(
            profile=ctxmod.load_profile(session, user_id),
            selected=ctxmod.selected_sources(session, user_id),
            deliverables=ctxmod.load_deliverables(session, store, user_id),
            history=act.load_history(session, user_id),
            memory=ctxmod.load_memory(session, user_id),
        )


# ------------------------------------------------------------------------------------------ one pass
def _resources(summary: SignalSummary) -> dict[tuple[str, str], str]:
    items = summary.items()
    return {(r["platform"], r["resource_id"]): r["resource_name"] or r["resource_id"]
            for r in items.select(["platform", "resource_id", "resource_name"]).unique().iter_rows(named=True)}


def _base_row(spec: HourSpec, summary: SignalSummary, fingerprint: str, new_items: int,
              previous: PreviousPass | None) -> dict[str, Any]:
    return {
        "signal_date": spec.hour_start.date(),
        "partition_hour": spec.hour_start,
        "user_id": summary.user_id,
        "pass": summary.pass_name,
        "trigger": spec.trigger,
        "as_of": spec.as_of,
        "items_total": summary.total_items,
        "calendar_items": summary.count("calendar"),
        "gmail_items": summary.count("gmail"),
        "slack_items": summary.count("slack"),
        "notion_items": summary.count("notion"),
        "platforms_queried": summary.platforms_queried,
        "content_summary": summary.content_summary,
        "refs": summary.refs,
        "fingerprint": fingerprint,
        "new_items": new_items,
        "previous_pass_hour": previous.partition_hour if previous else None,
        "status": "skipped",
        "skip_reason": None,
        "error": None,
        "engine": None,
        "offline": None,
        "llm_calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cost_usd": 0.0,
        "actions_proposed": 0,
        "actions_executed": 0,
        "deliverables_created": 0,
        "deliverables_triggered": 0,
        "deferred": 0,
        "reasoning": None,
    }


def _event(spec: HourSpec, row: dict[str, Any], reasoning: str) -> ActivityEvent:
    key = f"{row['user_id']}|{row['pass']}|{spec.hour_start:%Y-%m-%dT%H:00Z}"
    if spec.trigger != "schedule":
        key += f"|{spec.trigger}"
    taken = row["actions_executed"]
    if row["status"] == "evaluated":
        summary = (f"Signal pass ({row['pass']}): {row['items_total']} items, {taken} action(s): "
                   f"{row['deliverables_created']} created, {row['deliverables_triggered']} triggered")
    else:
        summary = f"Signal pass ({row['pass']}) skipped: {row['skip_reason']} ({row['items_total']} items)"
    return ActivityEvent(
        user_id=row["user_id"], event_type="signal_processed", summary=summary, idempotency_key=key,
        metadata={
            "pass": row["pass"], "partition": spec.partition_key, "trigger": spec.trigger, "status": row["status"],
            "skip_reason": row["skip_reason"], "signals_evaluated": row["items_total"],
            "actions_proposed": row["actions_proposed"], "actions_taken": taken,
            "deliverables_created": row["deliverables_created"],
            "deliverables_triggered": row["deliverables_triggered"], "content_retained_count": 0,
            "engine": row["engine"], "llm_calls": row["llm_calls"], "cost_usd": row["cost_usd"],
            "reasoning_summary": (reasoning or "")[:500],
        },
        created_at=spec.as_of, event_date=spec.hour_start.date(),
    )


def _action_row(spec: HourSpec, user_id: str, pass_name: str, p: act.Proposed, engine: str, offline: bool
                ) -> dict[str, Any]:
    a = p.action
    sources = p.sources or [s.model_dump() for s in a.sources]
    return {
        "signal_date": spec.hour_start.date(), "partition_hour": spec.hour_start, "user_id": user_id,
        "pass": pass_name, "trigger": spec.trigger, "seq": p.seq, "action_type": a.action_type,
        "deliverable_type": a.deliverable_type, "signal_type": p.signal_type, "signal_ref": a.signal_ref,
        "title": a.title[:300], "description": a.description[:1000], "confidence": float(a.confidence),
        "disposition": p.disposition, "reason": p.reason, "dedup_key": p.dedup_key,
        "deliverable_id": p.deliverable_id, "sources": json.dumps(sources, sort_keys=True),
        "engine": engine, "offline": offline, "reasoning": a.reasoning[:1000], "as_of": spec.as_of,
    }


def run_pass(
    *,
    pass_name: str,
    rows: pl.DataFrame,
    inputs: UserInputs,
    spec: HourSpec,
    previous: PreviousPass | None,
    store: DeltaStore,
    session_factory: SessionFactory,
    llm: LLM,
    policy: Policy,
    scope: LLMScope,
    ignore_wake_gate: bool = False,
    execute: bool = True,
) -> PassResult:
    profile = inputs.profile
    summary = extract(rows, user_id=profile.id, pass_name=pass_name, as_of=spec.as_of, selected_sources=inputs.selected)
    time_refs = rules.time_sensitive_refs(summary, profile, policy.followup_days)
    fingerprint = summary.fingerprint(time_refs)
    new_items = summary.new_items_since(previous.as_of if previous else None)
    row = _base_row(spec, summary, fingerprint, new_items, previous)
    result = PassResult(profile.id, pass_name, "skipped", row)

    def skip(reason: str) -> PassResult:
        row["skip_reason"] = result.skip_reason = reason
        result.event = _event(spec, row, "")
        return result

    if summary.total_items < policy.min_items:
        return skip("too_few_items")
    if (policy.wake_gate and not ignore_wake_gate and previous is not None
            and previous.fingerprint == fingerprint and previous.deferred == 0):
        return skip("wake_gate")

    prompt = render_prompt(
        summary, profile=profile, memory=inputs.memory, activity=inputs.activity(store, spec.as_of),
        deliverables=inputs.deliverables[: ctxmod.DELIVERABLES_IN_PROMPT], as_of=spec.as_of,
    )
    try:
        decided = llm.structured(
            task="signals", user_id=profile.id, system=SYSTEM_PROMPT, prompt=prompt, output=SignalDecision,
            offline=lambda: rules.offline_decision(summary, profile=profile, deliverables=inputs.deliverables,
                                                   followup_days=policy.followup_days,
                                                   contacts=inputs.contacts(store)),
            scope=scope, max_tokens=MAX_TOKENS,
        )
    except LLMBudgetExceeded as exc:
        row["error"] = str(exc)
        return skip("budget_exhausted")
    except (LLMOutputError, LLMCallError) as exc:
        usage = exc.usage if isinstance(exc, LLMOutputError) else LLMUsage()
        return _failed(result, row, str(exc), usage, transient=getattr(exc, "transient", False))
    except Exception as exc:
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        log.exception("signal pass %s/%s failed", profile.id, pass_name)
        return _failed(result, row, f"unexpected error: {detail}", LLMUsage(), transient=False)

    usage = decided.usage
    result.usage = usage
    row.update({
        "status": "evaluated", "engine": decided.model, "offline": decided.offline, "llm_calls": usage.calls,
        "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens,
        "cost_usd": usage.cost_usd, "reasoning": decided.value.reasoning[:500],
    })
    result.status = "evaluated"
    proposals = act.screen(
        decided.value, user_id=profile.id, refs=set(summary.refs), resources=_resources(summary),
        deliverables=inputs.deliverables, history=inputs.history, as_of=spec.as_of,
        partition_hour=spec.hour_start, pass_name=pass_name, min_confidence=policy.min_confidence,
    )
    if execute:
        try:
            act.execute(session_factory, proposals, act.ExecutionContext(
                profile=profile, pass_name=pass_name, partition_key=spec.partition_key,
                partition_hour=spec.hour_start, as_of=spec.as_of, now=spec.now, engine=decided.model,
                run_id=scope.run_id,
            ))
        except Exception as exc:
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            log.exception("executing signal actions of %s/%s failed", profile.id, pass_name)
            return _failed(result, row, f"execution failed: {detail}", usage, transient=False)
    else:
        for p in proposals:
            if p.kept:
                p.disposition, p.reason = "proposed", "dry run: not executed"
    executed = [p for p in proposals if p.disposition == "executed"]
    row.update({
        "actions_proposed": sum(1 for p in proposals if p.action.action_type != "no_action"),
        "actions_executed": len(executed),
        "deliverables_created": sum(1 for p in executed if p.action.action_type == "create_signal_emergent"),
        "deliverables_triggered": sum(1 for p in executed if p.action.action_type == "trigger_existing"),
        "deferred": sum(1 for p in proposals if p.reason.startswith("duplicate_in_pass")),
    })
    result.replayed = sum(1 for p in executed if p.replayed)
    result.action_rows = [_action_row(spec, profile.id, pass_name, p, decided.model, decided.offline)
                          for p in proposals]
    result.event = _event(spec, row, decided.value.reasoning)
    # keep the caller's view of history current for the user's next pass in this run
    inputs.history = _refreshed_history(session_factory, profile.id) if executed else inputs.history
    return result


def _failed(result: PassResult, row: dict[str, Any], message: str, usage: LLMUsage, transient: bool) -> PassResult:
    row.update({"status": "failed", "error": message[:2000], "llm_calls": usage.calls,
                "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                "cache_read_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens,
                "cost_usd": usage.cost_usd, "engine": usage.models[0] if usage.models else None})
    result.status, result.error, result.usage, result.transient = "failed", message, usage, transient
    return result  # no event: a retry of the hour writes it


def _refreshed_history(session_factory: SessionFactory, user_id: str) -> dict[tuple[str, str], act.HistoryEntry]:
    with session_factory() as session:
        return act.load_history(session, user_id)


# ------------------------------------------------------------------------------------------ the hour
def process_hour(
    *,
    store: DeltaStore,
    session_factory: SessionFactory,
    llm: LLM,
    spec: HourSpec,
    policy: Policy,
    scope: LLMScope,
    user_ids: Sequence[str] | None = None,
    passes: Sequence[str] = PASSES,
    ignore_wake_gate: bool = False,
    execute: bool = True,
    on_failure: Callable[[PassResult], None] | None = None,
) -> HourResult:
    with session_factory() as session:
        users, ignored = eligible_users(session, policy.excluded_tiers, user_ids)
    result = HourResult(users=users, ignored_users=ignored)
    silver = load_silver(store, users, spec.as_of)
    previous = previous_passes(store, users, spec)
    empty = pl.DataFrame(schema={c: PLATFORM_CONTENT.schema[c] for c in COLUMNS})
    for user_id in users:
        try:
            inputs = load_user_inputs(session_factory, store, user_id)
        except Exception as exc:
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            for pass_name in passes:
                summary = extract(empty, user_id=user_id, pass_name=pass_name, as_of=spec.as_of)
                row = _base_row(spec, summary, "", 0, None)
                failed = _failed(PassResult(user_id, pass_name, "failed", row), row,
                                 f"loading the user's context failed: {detail}", LLMUsage(), transient=False)
                result.passes.append(failed)
                if on_failure:
                    on_failure(failed)
            continue
        for pass_name in passes:
            outcome = run_pass(
                pass_name=pass_name, rows=silver.get(user_id, empty), inputs=inputs, spec=spec,
                previous=previous.get((user_id, pass_name)), store=store, session_factory=session_factory,
                llm=llm, policy=policy, scope=scope, ignore_wake_gate=ignore_wake_gate, execute=execute,
            )
            result.passes.append(outcome)
            if outcome.status == "failed" and on_failure:
                on_failure(outcome)
    return result


def hour_predicate(spec: HourSpec, result: HourResult, user_ids: Sequence[str] | None,
                   passes: Sequence[str]) -> Predicate:
    """The rows an hour's run owns: its hour and trigger, narrowed to the users and passes it ran."""
    parts: list[Predicate] = [Eq("signal_date", spec.hour_start.date()), Eq("partition_hour", spec.hour_start),
                              Eq("trigger", spec.trigger)]
    if user_ids:
        parts.append(In("user_id", sorted(set(user_ids) | set(result.users))))
    if sorted(passes) != sorted(PASSES):
        parts.append(In("pass", list(passes)))
    predicate = all_of(*parts)
    assert predicate is not None
    return predicate


def write_hour(store: DeltaStore, spec: HourSpec, result: HourResult, *, user_ids: Sequence[str] | None,
               passes: Sequence[str], run_id: str | None) -> int:
    """Replace the hour's rows in both gold tables and append its events; returns events inserted."""
    where = hour_predicate(spec, result, user_ids, passes)
    for table in (SIGNAL_SUMMARIES, SIGNAL_ACTIONS):
        store.ensure(table)  # present (if empty) from the first run on, for the CLI and the UI
    store.replace(SIGNAL_SUMMARIES, result.summary_frame(), where)
    store.replace(SIGNAL_ACTIONS, result.action_frame(), where)
    return write_events(store, result.events(), run_id=run_id)


def run_hour(
    *,
    store: DeltaStore,
    session_factory: SessionFactory,
    llm: LLM,
    spec: HourSpec,
    policy: Policy,
    scope: LLMScope,
    user_ids: Sequence[str] | None = None,
    passes: Sequence[str] = PASSES,
    ignore_wake_gate: bool = False,
    execute: bool = True,
    on_failure: Callable[[PassResult], None] | None = None,
) -> tuple[HourResult, int]:
    """Process and write one hour (what the asset does, minus Dagster); returns (result, events written)."""
    result = process_hour(store=store, session_factory=session_factory, llm=llm, spec=spec, policy=policy,
                          scope=scope, user_ids=user_ids, passes=passes, ignore_wake_gate=ignore_wake_gate,
                          execute=execute, on_failure=on_failure)
    events = write_hour(store, spec, result, user_ids=user_ids, passes=passes, run_id=scope.run_id)
    return result, events
