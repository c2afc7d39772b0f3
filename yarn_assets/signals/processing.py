"""One hour of signal processing: every eligible user, both passes, failures isolated per user.

Before anything is loaded, the wake gate (:mod:`yarn_assets.signals.wake`) puts to sleep the
passes with nothing new since the user's last evaluated pass; the others are processed a batch
of :data:`USERS_PER_BATCH` users at a time (memory follows the batch, not the hour). A pass:

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
import logging
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import polars as pl

from io_managers.delta_store import DeltaStore
from resources.llm import LLM, LLMBudgetExceeded, LLMCallError, LLMOutputError, LLMScope, LLMUsage
from yarn_assets.core.shards import in_shard
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.signals import actions as act
from yarn_assets.signals import context as ctxmod
from yarn_assets.signals import held, rules, wake
from yarn_assets.signals import rows as rowmod
from yarn_assets.signals.extraction import COLUMNS, SignalSummary, extract
from yarn_assets.signals.inputs import (  # noqa: F401  (re-exported: the hour's input loaders)
    PreviousPass,
    SessionFactory,
    UserInputs,
    cheap_inputs,
    complete_inputs,
    eligible_users,
    load_silver,
    load_user_inputs,
    previous_passes,
)
from yarn_assets.signals.prompt import SYSTEM_PROMPT, SignalDecision, render_prompt
from yarn_assets.signals.results import HourResult, PassResult
from yarn_assets.signals.spec import HourSpec, Policy
from yarn_assets.signals.tables import PASSES
from yarn_assets.signals.writer import hour_predicate, write_hour  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

MAX_TOKENS = 1000
#: Users whose content and decisions are held at once: memory follows the batch, not the hour.
USERS_PER_BATCH = 1000


@dataclass
class Gate:
    """A pass after extraction and the wake gate: either finished (skipped) or waiting for a decision."""

    result: PassResult
    summary: SignalSummary | None = None

    @property
    def pending(self) -> bool:
        return self.summary is not None


def gate_pass(*, pass_name: str, rows: pl.DataFrame, inputs: UserInputs, spec: HourSpec,
              previous: PreviousPass | None, policy: Policy, ignore_wake_gate: bool = False) -> Gate:
    """Extract the pass's summary and decide whether it needs a decision (cheap inputs only)."""
    profile = inputs.profile
    summary = extract(rows, user_id=profile.id, pass_name=pass_name, as_of=spec.as_of, selected_sources=inputs.selected)
    time_refs = rules.time_sensitive_refs(summary, profile, policy.followup_days)
    fingerprint = summary.fingerprint(time_refs)
    new_items = summary.new_items_since(previous.as_of if previous else None)
    row = rowmod.base_row(spec, summary, fingerprint, new_items, previous)
    hidden = rules.hidden_platforms(rows, summary)
    row["wake_at"] = rules.next_wake(summary, profile, policy.followup_days, hidden=hidden)
    row["wake_key"] = wake.wake_key(pass_name, inputs, policy.followup_days, policy.min_items)
    result = PassResult(profile.id, pass_name, "skipped", row)
    reason = None
    if summary.total_items < policy.min_items:
        reason = "too_few_items"
    elif (policy.wake_gate and not ignore_wake_gate and previous is not None
          and previous.fingerprint == fingerprint and previous.deferred == 0):
        reason = "wake_gate"
    if reason is None:
        return Gate(result, summary)
    row["skip_reason"] = result.skip_reason = reason
    result.event = rowmod.event(spec, row, "")
    return Gate(result)


def _skip(result: PassResult, spec: HourSpec, reason: str) -> PassResult:
    result.summary_row["skip_reason"] = result.skip_reason = reason
    result.event = rowmod.event(spec, result.summary_row, "")
    return result


def decide_pass(gate: Gate, *, inputs: UserInputs, spec: HourSpec, store: DeltaStore,
                session_factory: SessionFactory, llm: LLM, policy: Policy, scope: LLMScope,
                execute: bool = True) -> PassResult:
    """Ask the LLM (or the offline rules) for the pass's decision, screen and execute its actions."""
    summary, result = gate.summary, gate.result
    assert summary is not None
    row, profile, pass_name = result.summary_row, inputs.profile, result.pass_name
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
        return _skip(result, spec, "budget_exhausted")
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
        decided.value, user_id=profile.id, refs=set(summary.refs), resources=rowmod.resources(summary),
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
    row.update(rowmod.action_counts(proposals))
    result.replayed = sum(1 for p in executed if p.replayed)
    result.action_rows = [rowmod.action_row(spec, profile.id, pass_name, p, decided.model, decided.offline)
                          for p in proposals]
    result.event = rowmod.event(spec, row, decided.value.reasoning)
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
def _context_failure(spec: HourSpec, user_id: str, pass_name: str, detail: str) -> PassResult:
    empty = pl.DataFrame(schema={c: PLATFORM_CONTENT.schema[c] for c in COLUMNS})
    summary = extract(empty, user_id=user_id, pass_name=pass_name, as_of=spec.as_of)
    row = rowmod.base_row(spec, summary, "", 0, None)
    return _failed(PassResult(user_id, pass_name, "failed", row), row,
                   f"loading the user's context failed: {detail}", LLMUsage(), transient=False)


def _slept(spec: HourSpec, user_id: str, pass_name: str, previous: PreviousPass, key: str) -> PassResult:
    row = rowmod.slept_row(spec, user_id, pass_name, previous, key)
    result = PassResult(user_id, pass_name, "skipped", row, skip_reason="wake_gate")
    result.event = rowmod.event(spec, row, "")
    return result


def _complete(session_factory: SessionFactory, store: DeltaStore, inputs: dict[str, UserInputs],
              as_of: dt.datetime, light: set[str]) -> dict[str, str]:
    """Load the expensive inputs in one batch; on failure, user by user (returns user -> error)."""
    try:
        complete_inputs(session_factory, store, inputs, as_of, screening_only=light)
        return {}
    except Exception:
        log.exception("batch load of signal inputs failed; loading user by user")
    errors: dict[str, str] = {}
    for uid in list(inputs):
        try:
            complete_inputs(session_factory, store, {uid: inputs[uid]}, as_of, screening_only=light & {uid})
        except Exception as exc:
            errors[uid] = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return errors


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
    shard: tuple[str, int] | None = None,
) -> HourResult:
    """Every eligible user (of ``shard``, when given): cheap inputs and the wake gate for all users
    first, then the expensive inputs in one batch for the passes that need a decision."""
    with session_factory() as session:
        users, ignored = eligible_users(session, policy.excluded_tiers, user_ids)
    if shard is not None and shard[1] > 1:
        users = in_shard(users, *shard)
    result = HourResult(users=users, ignored_users=ignored)
    previous = previous_passes(store, users, spec.hour_start, spec.as_of, spec.trigger)
    asleep: set[tuple[str, str]] = set()
    keys: dict[tuple[str, str], str] = {}
    held_back: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        inputs = cheap_inputs(session_factory, users)
        if policy.wake_gate and not ignore_wake_gate:  # decided before any content is loaded
            asleep, due, keys = wake.sleeping_passes(store, inputs, passes, previous, spec.as_of,
                                                     followup_days=policy.followup_days, min_items=policy.min_items)
            held_back = held.held_back(store, {k: previous[k] for k in due})
    except Exception as exc:  # the control plane or silver is unreadable: every pass fails, none is skipped
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        inputs, asleep, held_back = {}, set(), {}
        log.exception("loading the hour's inputs failed")
    else:
        detail = "unknown user"
    hour = _Hour(store, session_factory, llm, spec, policy, scope, passes, ignore_wake_gate, execute, previous, keys)
    for lo in range(0, len(users), USERS_PER_BATCH):  # content and decisions a batch of users at a time
        batch = users[lo:lo + USERS_PER_BATCH]
        awake = [u for u in batch if u in inputs and any((u, p) not in asleep | held_back.keys() for p in passes)]
        slots: list[PassResult | Gate | Replay] = []
        try:
            silver = load_silver(store, awake, spec.as_of)
        except Exception as exc:
            log.exception("loading the silver rows of %d users failed", len(awake))
            silver, failed = {}, traceback.format_exception_only(type(exc), exc)[-1].strip()
        else:
            failed = None
        for user_id in batch:
            for pass_name in passes:
                if user_id not in inputs or (failed and user_id in awake and (user_id, pass_name) not in asleep):
                    slots.append(_context_failure(spec, user_id, pass_name, failed or detail))
                elif (user_id, pass_name) in held_back:
                    slots.append(Replay(user_id, pass_name, held_back[(user_id, pass_name)]))
                elif (user_id, pass_name) in asleep:
                    slots.append(_slept(spec, user_id, pass_name, previous[(user_id, pass_name)],
                                        keys[(user_id, pass_name)]))
                else:
                    slots.append(hour.gate(pass_name, silver.get(user_id), inputs[user_id]))
        del silver
        for outcome in hour.decide(slots, inputs):
            result.passes.append(outcome)
            if outcome.status == "failed" and on_failure:
                on_failure(outcome)
    return result


@dataclass
class _Hour:
    """What every batch of an hour shares; :meth:`decide` turns a batch's slots into outcomes."""

    store: DeltaStore
    session_factory: SessionFactory
    llm: LLM
    spec: HourSpec
    policy: Policy
    scope: LLMScope
    passes: Sequence[str]
    ignore_wake_gate: bool
    execute: bool
    previous: dict[tuple[str, str], PreviousPass]
    keys: dict[tuple[str, str], str]

    def gate(self, pass_name: str, rows: pl.DataFrame | None, inputs: UserInputs) -> Gate:
        empty = pl.DataFrame(schema={c: PLATFORM_CONTENT.schema[c] for c in COLUMNS})
        return gate_pass(pass_name=pass_name, rows=empty if rows is None else rows, inputs=inputs, spec=self.spec,
                         previous=self.previous.get((inputs.profile.id, pass_name)), policy=self.policy,
                         ignore_wake_gate=self.ignore_wake_gate)

    def decide(self, slots: list[PassResult | Gate | Replay], inputs: dict[str, UserInputs]) -> list[PassResult]:
        """Expensive inputs in one load for the users with a pending pass, then their decisions."""
        pending: dict[str, list[int]] = {}
        for i, slot in enumerate(slots):
            if isinstance(slot, Replay) or (isinstance(slot, Gate) and slot.pending):
                pending.setdefault(slot.user_id if isinstance(slot, Replay) else slot.result.user_id, []).append(i)
        light = {u for u, idx in pending.items() if all(isinstance(slots[i], Replay) for i in idx)}
        errors = _complete(self.session_factory, self.store, {u: inputs[u] for u in sorted(pending)}, self.spec.as_of,
                           light)

        def decide_user(user_id: str) -> dict[int, PassResult]:
            """A user's pending passes in order (the second sees the history the first wrote)."""
            return {i: self.replay(slot, inputs[user_id]) if isinstance(slot := slots[i], Replay) else
                    decide_pass(slot, inputs=inputs[user_id], spec=self.spec, store=self.store,  # type: ignore[arg-type]
                                session_factory=self.session_factory, llm=self.llm, policy=self.policy,
                                scope=self.scope, execute=self.execute) for i in pending[user_id]}

        deciding = sorted(set(pending) - set(errors))
        decided: dict[int, PassResult] = {}
        if self.llm.is_offline or len(deciding) < 2:  # the offline rules are CPU-bound: threads would only add overhead
            for uid in deciding:
                decided.update(decide_user(uid))
        else:  # API mode: users in parallel, bounded by the LLM's limiter (slots, RPM/TPM, retry-after pauses)
            with ThreadPoolExecutor(max_workers=min(self.llm.max_concurrency, len(deciding)),
                                    thread_name_prefix="signals") as pool:
                for part in pool.map(decide_user, deciding):
                    decided.update(part)
        out = []
        for i, slot in enumerate(slots):
            if isinstance(slot, PassResult):
                out.append(slot)
            elif isinstance(slot, Gate) and not slot.pending:
                out.append(slot.result)
            elif (uid := slot.user_id if isinstance(slot, Replay) else slot.result.user_id) in errors:
                name = slot.pass_name if isinstance(slot, Replay) else slot.result.pass_name
                out.append(_context_failure(self.spec, uid, name, errors[uid]))
            else:
                out.append(decided[i])
        return out

    def replay(self, slot: Replay, inputs: UserInputs) -> PassResult:
        key = (slot.user_id, slot.pass_name)
        return held.replay_pass(user_id=slot.user_id, pass_name=slot.pass_name, held=slot.actions,
                                previous=self.previous[key], key=self.keys[key], inputs=inputs, spec=self.spec,
                                session_factory=self.session_factory, min_confidence=self.policy.min_confidence,
                                execute=self.execute, run_id=self.scope.run_id)


@dataclass
class Replay:
    """A pass whose only due work is the previous pass's deferred actions (:mod:`.held`)."""

    user_id: str
    pass_name: str
    actions: list[dict[str, Any]]


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
    shard: tuple[str, int] | None = None,
) -> tuple[HourResult, int]:
    """Process and write one hour (what the asset does, minus Dagster); returns (result, events written)."""
    result = process_hour(store=store, session_factory=session_factory, llm=llm, spec=spec, policy=policy,
                          scope=scope, user_ids=user_ids, passes=passes, ignore_wake_gate=ignore_wake_gate,
                          execute=execute, on_failure=on_failure, shard=shard)
    events = write_hour(store, spec, result, user_ids=user_ids, passes=passes, run_id=scope.run_id, shard=shard)
    return result, events
