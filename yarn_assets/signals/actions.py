"""Screening and executing a pass's proposed actions.

Screening (pure apart from the history lookups it is given), in this order, each drop with a reason:

1. ``no_action`` is recorded; unknown deliverable types become ``custom`` (as the original).
2. A create must cite a ``signal_ref`` the pass actually showed (``unknown_ref``); a trigger must
   name an active deliverable **of this user** (``unknown_deliverable``): ids are never trusted.
3. Confidence below 0.60 (``low_confidence``).
4. A create of a type the user already has as an active/paused deliverable they configured
   (``type_exists``; ``custom`` is a catch-all and never blocks). One-off signal deliverables do
   not block later ones of the same type: their refs and the history windows govern repeats.
5. History (``history_dedup``): the same (signal type, ref) within its window - meeting_prep 24 h,
   silence_alert 168 h, contact_drift 336 h, otherwise 24 h - measured from the pass's ``as_of``;
   a trigger is recorded per deliverable, hour and pass. A history row written by this same hour's
   pass (same derived deliverable id) is a replay, reported as already executed, so re-running an
   hour gives the same table. Screening history *before* the per-pass cap means a duplicate never
   hides the next candidate.
6. One per (action type, deliverable type) per pass (``duplicate_in_pass``; counted as deferred,
   which wakes the next pass).

Execution (one transaction per action) writes only ``signal_history`` itself; the deliverables
are written by their domain's service: a create (:func:`service.create_from_signal`) checks the
tier's active-deliverable limit and inserts the deliverable (origin ``signal_emergent``, trigger
``manual``, id derived from user, signal and hour, so a re-run cannot insert a second one, due now),
then the signal is recorded in ``signal_history`` and generation requested
(:func:`service.request_generation`); a trigger (:func:`service.trigger_now`) sets the deliverable's
``next_run_at`` to now.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane.models import SignalHistory
from yarn_assets.deliverables import service as deliverables
from yarn_assets.deliverables.types import is_known
from yarn_assets.signals.context import DeliverableView, UserProfile
from yarn_assets.signals.prompt import SignalAction, SignalDecision

MIN_CONFIDENCE = 0.60
DEDUP_WINDOWS = {
    "meeting_prep": dt.timedelta(hours=24),
    "silence_alert": dt.timedelta(hours=168),
    "contact_drift": dt.timedelta(hours=336),
}
DEFAULT_DEDUP_WINDOW = dt.timedelta(hours=24)
TRIGGER_SIGNAL = "trigger_existing"
CREATED = "created; generation requested"
TRIGGERED = "triggered: next_run_at set to now"

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NS = uuid.UUID("9b4c7c1e-2f55-4a8e-a1d3-6c2f0e8b7a41")


@dataclass
class Proposed:
    seq: int
    action: SignalAction
    signal_type: str | None = None
    disposition: str = "kept"  # kept -> executed | dropped | recorded | proposed (dry run)
    reason: str = ""
    dedup_key: str | None = None
    deliverable_id: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    replayed: bool = False  # executed by an earlier run of the same hour (nothing done again)

    @property
    def kept(self) -> bool:
        return self.disposition == "kept"

    def drop(self, reason: str) -> None:
        self.disposition, self.reason = "dropped", reason


def dedup_window(signal_type: str) -> dt.timedelta:
    return DEDUP_WINDOWS.get(signal_type, DEFAULT_DEDUP_WINDOW)


def trigger_ref(deliverable_id: str, partition_hour: dt.datetime, pass_name: str) -> str:
    return f"{deliverable_id}@{partition_hour.astimezone(dt.UTC):%Y-%m-%dT%H:00Z}#{pass_name}"


def deliverable_id_for(user_id: str, signal_type: str, signal_ref: str, partition_hour: dt.datetime) -> str:
    return str(uuid.uuid5(_NS, f"signal_emergent|{user_id}|{signal_type}|{signal_ref}|{partition_hour.isoformat()}"))


@dataclass(frozen=True)
class HistoryEntry:
    last_triggered_at: dt.datetime
    deliverable_id: str | None


def load_history(session: Session, user_id: str) -> dict[tuple[str, str], HistoryEntry]:
    rows = session.execute(
        select(SignalHistory.signal_type, SignalHistory.signal_ref, SignalHistory.last_triggered_at,
               SignalHistory.deliverable_id)
        .where(SignalHistory.user_id == user_id)
    ).all()
    return {(t, r): HistoryEntry(last, did) for t, r, last, did in rows}


def _within(last: dt.datetime | None, as_of: dt.datetime, window: dt.timedelta) -> bool:
    return last is not None and abs(as_of - last) < window


def _allowed_sources(action: SignalAction, resources: Mapping[tuple[str, str], str]) -> list[dict[str, Any]]:
    """Sources the user actually has (unknown ones are dropped, never trusted)."""
    out: list[dict[str, Any]] = []
    for s in action.sources:
        key = (s.provider.lower(), s.source)
        if key in resources:
            out.append({"type": "integration_import", "provider": key[0], "source": s.source,
                        "resource_id": s.source, "resource_name": resources[key]})
    return out


def screen(
    decision: SignalDecision,
    *,
    user_id: str,
    refs: set[str],
    resources: Mapping[tuple[str, str], str],
    deliverables: Sequence[DeliverableView],
    history: Mapping[tuple[str, str], HistoryEntry],
    as_of: dt.datetime,
    partition_hour: dt.datetime,
    pass_name: str,
    min_confidence: float = MIN_CONFIDENCE,
) -> list[Proposed]:
    active = {d.id: d for d in deliverables if d.status == "active"}
    configured_types = {d.deliverable_type for d in deliverables if d.origin != "signal_emergent"}
    seen: set[tuple[str, str]] = set()
    out: list[Proposed] = []
    for seq, action in enumerate(decision.actions):
        p = Proposed(seq=seq, action=action)
        out.append(p)
        if action.action_type == "no_action":
            p.disposition, p.reason = "recorded", "no_action"
            continue
        if not is_known(action.deliverable_type):
            p.reason = f"unknown type {action.deliverable_type!r} -> custom; "
            action.deliverable_type = "custom"
        if action.action_type == "create_signal_emergent":
            p.signal_type = (action.signal_type or action.deliverable_type).strip() or action.deliverable_type
            if not action.signal_ref or action.signal_ref not in refs:
                p.drop(p.reason + f"unknown_ref: {str(action.signal_ref)[:80]!r} was not among the pass's refs")
                continue
            p.dedup_key = f"{user_id}|{p.signal_type}|{action.signal_ref}"
            p.sources = _allowed_sources(action, resources)
        else:
            target = (action.trigger_deliverable_id or "").strip()
            if not _UUID.match(target) or target not in active:
                p.drop(p.reason + f"unknown_deliverable: {target[:60]!r} is not an active deliverable of the user")
                continue
            action.deliverable_type = active[target].deliverable_type
            p.signal_type = TRIGGER_SIGNAL
            p.deliverable_id = target
            p.dedup_key = f"{user_id}|{TRIGGER_SIGNAL}|{trigger_ref(target, partition_hour, pass_name)}"
        if action.confidence < min_confidence:
            p.drop(f"low_confidence: {action.confidence:.2f} < {min_confidence:.2f}")
            continue
        if (action.action_type == "create_signal_emergent" and action.deliverable_type != "custom"
                and action.deliverable_type in configured_types):
            p.drop(f"type_exists: the user already has a {action.deliverable_type}")
            continue
        if action.action_type == "create_signal_emergent":
            signal_ref = str(action.signal_ref)
            entry = history.get((p.signal_type, signal_ref))
            mine = deliverable_id_for(user_id, p.signal_type, signal_ref, partition_hour)
            if entry is not None and entry.deliverable_id != mine and _within(
                    entry.last_triggered_at, as_of, dedup_window(p.signal_type)):
                p.drop(f"history_dedup: {p.signal_type} {signal_ref} last triggered "
                       f"{entry.last_triggered_at:%Y-%m-%d %H:%M}")
                continue
        # (a history row written by this same hour's pass is a replay: execution reports it as done)
        cap = (action.action_type, action.deliverable_type)
        if cap in seen:
            p.drop(f"duplicate_in_pass: one {action.action_type}/{action.deliverable_type} per pass (deferred)")
            continue
        seen.add(cap)
    return out


@dataclass(frozen=True)
class ExecutionContext:
    profile: UserProfile
    pass_name: str
    partition_key: str
    partition_hour: dt.datetime
    as_of: dt.datetime
    now: dt.datetime
    engine: str
    run_id: str | None


def execute(session_factory: Any, proposals: Sequence[Proposed], ctx: ExecutionContext) -> None:
    """Execute the kept proposals; each in its own transaction (``session_factory()`` is a context manager)."""
    for p in proposals:
        if not p.kept:
            continue
        try:
            with session_factory() as session:
                if p.action.action_type == "create_signal_emergent":
                    _create(session, p, ctx)
                else:
                    _trigger(session, p, ctx)
        except IntegrityError:
            p.drop("history_dedup: recorded concurrently by another run")


def _create(session: Session, p: Proposed, ctx: ExecutionContext) -> None:
    a = p.action
    user_id = ctx.profile.id
    signal_type, ref = p.signal_type or a.deliverable_type, a.signal_ref or ""
    deliverable_id = deliverable_id_for(user_id, signal_type, ref, ctx.partition_hour)
    hist = session.scalars(
        select(SignalHistory).where(SignalHistory.user_id == user_id, SignalHistory.signal_type == signal_type,
                                    SignalHistory.signal_ref == ref)
    ).one_or_none()
    existing = deliverables.find(session, deliverable_id)
    if existing is not None or (hist is not None and hist.deliverable_id == deliverable_id):
        # a re-run of this hour (or a manual and a scheduled pass of it): never a second deliverable
        p.disposition, p.reason, p.deliverable_id, p.replayed = "executed", CREATED, deliverable_id, True
        return
    if hist is not None and _within(hist.last_triggered_at, ctx.as_of, dedup_window(signal_type)):
        p.drop(f"history_dedup: {signal_type} {ref} last triggered {hist.last_triggered_at:%Y-%m-%d %H:%M}")
        return
    try:
        deliverables.create_from_signal(
            session, deliverable_id=deliverable_id, user_id=user_id, tier=ctx.profile.tier,
            deliverable_type=a.deliverable_type, title=a.title, description=a.description or None,
            sources=p.sources, signal_ref=ref, now=ctx.now,
            signal={
                "signal_type": signal_type, "signal_ref": ref, "context": a.signal_context, "pass": ctx.pass_name,
                "partition": ctx.partition_key, "engine": ctx.engine, "confidence": a.confidence,
                "reasoning": a.reasoning[:500],
            },
        )
    except deliverables.DeliverableLimitReached as exc:
        p.drop(str(exc))
        return
    if hist is None:
        session.add(SignalHistory(user_id=user_id, signal_type=signal_type, signal_ref=ref,
                                  last_triggered_at=ctx.as_of, deliverable_id=deliverable_id,
                                  details={"partition": ctx.partition_key, "pass": ctx.pass_name}))
    else:
        hist.last_triggered_at, hist.deliverable_id = ctx.as_of, deliverable_id
        hist.details = {"partition": ctx.partition_key, "pass": ctx.pass_name}
    deliverables.request_generation(
        session, deliverable_id, "signal_emergent", requested_by=f"signals:{ctx.partition_key}",
        idempotency_key=f"signal_emergent|{deliverable_id}", now=ctx.now,
        details={"signal_type": signal_type, "signal_ref": ref, "pass": ctx.pass_name, "run_id": ctx.run_id},
    )
    session.flush()
    p.disposition, p.reason, p.deliverable_id = "executed", CREATED, deliverable_id


def _trigger(session: Session, p: Proposed, ctx: ExecutionContext) -> None:
    target = p.deliverable_id or ""
    d = deliverables.find(session, target)
    if d is None or d.user_id != ctx.profile.id or d.status != "active":
        p.drop("unknown_deliverable: gone or no longer active")
        return
    ref = trigger_ref(target, ctx.partition_hour, ctx.pass_name)
    if session.scalars(select(SignalHistory.id).where(
            SignalHistory.user_id == ctx.profile.id, SignalHistory.signal_type == TRIGGER_SIGNAL,
            SignalHistory.signal_ref == ref)).first() is not None:
        p.disposition, p.reason, p.replayed = "executed", TRIGGERED, True
        return
    session.add(SignalHistory(user_id=ctx.profile.id, signal_type=TRIGGER_SIGNAL, signal_ref=ref,
                              last_triggered_at=ctx.as_of, deliverable_id=target,
                              details={"partition": ctx.partition_key, "pass": ctx.pass_name}))
    session.flush()
    deliverables.trigger_now(session, target, now=ctx.now)
    p.disposition, p.reason = "executed", TRIGGERED
