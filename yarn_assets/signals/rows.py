"""The rows an hour writes: a pass's summary row, its action rows and its ``signal_processed`` event."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from yarn_assets.core.activity_log import ActivityEvent
from yarn_assets.signals import actions as act
from yarn_assets.signals.extraction import SignalSummary

if TYPE_CHECKING:
    from yarn_assets.signals.inputs import PreviousPass
    from yarn_assets.signals.processing import HourSpec


def resources(summary: SignalSummary) -> dict[tuple[str, str], str]:
    items = summary.items()
    return {(r["platform"], r["resource_id"]): r["resource_name"] or r["resource_id"]
            for r in items.select(["platform", "resource_id", "resource_name"]).unique().iter_rows(named=True)}


def base_row(spec: HourSpec, summary: SignalSummary, fingerprint: str, new_items: int,
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
        "wake_at": None,
        "wake_key": None,
        "reasoning": None,
    }


def slept_row(spec: HourSpec, user_id: str, pass_name: str, previous: PreviousPass, key: str) -> dict[str, Any]:
    """The row of a pass the gate skipped before loading anything (:mod:`yarn_assets.signals.wake`):
    the previous evaluated pass's fingerprint, counts and refs (what it was compared against)."""
    row: dict[str, Any] = {
        "signal_date": spec.hour_start.date(), "partition_hour": spec.hour_start, "user_id": user_id,
        "pass": pass_name, "trigger": spec.trigger, "as_of": spec.as_of, "content_summary": None,
        "fingerprint": previous.fingerprint, "new_items": 0, "previous_pass_hour": previous.partition_hour,
        "status": "skipped", "skip_reason": "wake_gate", "error": None, "engine": None, "offline": None,
        "llm_calls": 0, "input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0,
        "cost_usd": 0.0, "actions_proposed": 0, "actions_executed": 0, "deliverables_created": 0,
        "deliverables_triggered": 0, "deferred": 0, "wake_at": previous.wake_at, "wake_key": key, "reasoning": None,
    }
    row.update(previous.counts)
    return row


def action_counts(proposals: list[act.Proposed]) -> dict[str, int]:
    """A pass's action columns (``deferred``: held back by the one-per-type rule, due next pass)."""
    executed = [p for p in proposals if p.disposition == "executed"]
    return {
        "actions_proposed": sum(1 for p in proposals if p.action.action_type != "no_action"),
        "actions_executed": len(executed),
        "deliverables_created": sum(1 for p in executed if p.action.action_type == "create_signal_emergent"),
        "deliverables_triggered": sum(1 for p in executed if p.action.action_type == "trigger_existing"),
        "deferred": sum(1 for p in proposals if p.reason.startswith("duplicate_in_pass")),
    }


def event(spec: HourSpec, row: dict[str, Any], reasoning: str) -> ActivityEvent:
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


def action_row(spec: HourSpec, user_id: str, pass_name: str, p: act.Proposed, engine: str, offline: bool
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
        "signal_context": json.dumps(a.signal_context, sort_keys=True, default=str),
        "engine": engine, "offline": offline, "reasoning": a.reasoning[:1000], "as_of": spec.as_of,
    }
