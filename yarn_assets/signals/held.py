"""Deferred actions, due in the next pass: executed from the decision that held them back.

The one-per-(action type, deliverable type) rule defers a pass's further actions of a kind (three
unanswered threads: one follow-up now, two deferred). They are due in the user's next pass. When
that pass has nothing new (no content fetched since, no time-sensitive candidate come due, same
gate inputs - :mod:`yarn_assets.signals.wake`), the model would be asked about the very content it
already judged; so the pass instead re-screens the held-back actions of that decision (read back
from ``gold/signal_actions``) against the user's history, rejections, deliverables and tier limit
as they are now, and executes the next one of each kind. The rest stay deferred for the following
pass. No content is loaded and no model call made; the row is ``evaluated`` with ``engine =
"deferred"``, the previous decision's fingerprint and refs, and the actions it took. A pass with
new content and deferred actions is evaluated in full, as before.
"""

from __future__ import annotations

import datetime as dt
import json
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import polars as pl

from io_managers.delta_store import DeltaStore
from io_managers.predicates import In, Window, all_of
from yarn_assets.signals import actions as act
from yarn_assets.signals import rows as rowmod
from yarn_assets.signals.inputs import PreviousPass, SessionFactory, UserInputs
from yarn_assets.signals.prompt import SignalAction, SignalDecision, SignalSource
from yarn_assets.signals.results import PassResult
from yarn_assets.signals.tables import SIGNAL_ACTIONS

if TYPE_CHECKING:
    from yarn_assets.signals.processing import HourSpec

ENGINE = "deferred"
HELD = "duplicate_in_pass"


def held_back(store: DeltaStore, previous: Mapping[tuple[str, str], PreviousPass]
              ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(user, pass) -> the action rows its previous pass deferred, in proposal order (one scan)."""
    if not previous:
        return {}
    days = [p.partition_hour.date() for p in previous.values()]
    lf = store.scan(SIGNAL_ACTIONS, all_of(Window("signal_date", min(days), max(days) + dt.timedelta(days=1)),
                                           In("user_id", sorted({u for u, _ in previous}))))
    if lf is None:
        return {}
    wanted = pl.DataFrame(
        {"user_id": [u for u, _ in previous], "pass": [p for _, p in previous],
         "partition_hour": [p.partition_hour for p in previous.values()],
         "trigger": [p.trigger for p in previous.values()]},
        schema={"user_id": pl.Utf8, "pass": pl.Utf8, "partition_hour": SIGNAL_ACTIONS.schema["partition_hour"],
                "trigger": pl.Utf8},
    )
    frame = (lf.filter(pl.col("reason").str.starts_with(HELD)).collect()
             .join(wanted, on=["user_id", "pass", "partition_hour", "trigger"], how="semi").sort("seq"))
    out: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in previous}
    for row in frame.iter_rows(named=True):
        out[(row["user_id"], row["pass"])].append(row)
    return out


def _action(row: Mapping[str, Any]) -> tuple[SignalAction, dict[tuple[str, str], str]]:
    """The held-back action as the model proposed it, and the sources screening allowed it then."""
    sources = json.loads(row["sources"] or "[]")
    context = json.loads(row.get("signal_context") or "{}")
    action = SignalAction(
        action_type=row["action_type"], deliverable_type=row["deliverable_type"] or "custom",
        signal_type=row["signal_type"], signal_ref=row["signal_ref"], title=row["title"] or "",
        description=row["description"] or "", confidence=row["confidence"] or 0.0,
        sources=[SignalSource(provider=s["provider"], source=s["source"]) for s in sources if "provider" in s],
        signal_context=context, reasoning=row["reasoning"] or "",
        trigger_deliverable_id=row["deliverable_id"] if row["action_type"] == "trigger_existing" else None,
    )
    allowed = {(s["provider"], s["source"]): s.get("resource_name") or s["source"] for s in sources
               if "provider" in s}
    return action, allowed


def replay_pass(*, user_id: str, pass_name: str, held: list[dict[str, Any]], previous: PreviousPass, key: str,
                inputs: UserInputs, spec: HourSpec, session_factory: SessionFactory, min_confidence: float,
                execute: bool, run_id: str | None) -> PassResult:
    """Re-screen and execute ``held`` (the previous pass's deferred actions) as this hour's pass."""
    row = rowmod.slept_row(spec, user_id, pass_name, previous, key)
    row.update({"status": "evaluated", "skip_reason": None, "engine": ENGINE, "offline": None,
                "reasoning": f"actions deferred by the pass of {previous.partition_hour:%Y-%m-%d %H:00} UTC"})
    result = PassResult(user_id, pass_name, "evaluated", row)
    parsed = [_action(r) for r in held]
    resources: dict[tuple[str, str], str] = {}
    for _, allowed in parsed:
        resources.update(allowed)
    decision = SignalDecision(actions=[a for a, _ in parsed], reasoning=row["reasoning"])
    proposals = act.screen(
        decision, user_id=user_id, refs=set(previous.counts.get("refs") or []), resources=resources,
        deliverables=inputs.deliverables, history=inputs.history, as_of=spec.as_of,
        partition_hour=spec.hour_start, pass_name=pass_name, min_confidence=min_confidence,
    )
    if execute:
        try:
            act.execute(session_factory, proposals, act.ExecutionContext(
                profile=inputs.profile, pass_name=pass_name, partition_key=spec.partition_key,
                partition_hour=spec.hour_start, as_of=spec.as_of, now=spec.now, engine=ENGINE, run_id=run_id))
        except Exception as exc:
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            row.update({"status": "failed", "error": f"execution failed: {detail}"[:2000]})
            result.status, result.error = "failed", detail
            return result
    else:
        for p in proposals:
            if p.kept:
                p.disposition, p.reason = "proposed", "dry run: not executed"
    executed = [p for p in proposals if p.disposition == "executed"]
    row.update(rowmod.action_counts(proposals))
    result.replayed = sum(1 for p in executed if p.replayed)
    result.action_rows = [rowmod.action_row(spec, user_id, pass_name, p, ENGINE, False) for p in proposals]
    result.event = rowmod.event(spec, row, row["reasoning"])
    return result
