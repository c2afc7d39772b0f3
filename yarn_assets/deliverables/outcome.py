"""What a deliverable run returns (:class:`RunOutcome`), what its compose step wrote, and its activity event."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from control_plane.models import Deliverable
from yarn_assets.core.activity_log import ActivityEvent
from yarn_assets.deliverables.delivery.dispatch import DeliveryReport
from yarn_assets.deliverables.steps import Step


@dataclass
class RunOutcome:
    status: str  # skipped | delivered | failed | empty
    deliverable_id: str
    user_id: str
    deliverable_type: str
    strategy: str
    version_id: str | None = None
    version_number: int | None = None
    resumed: bool = False
    reason: str | None = None
    row: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    delivery: DeliveryReport | None = None
    next_run_at: dt.datetime | None = None
    retained: int = 0
    wall_ms: float = 0.0


@dataclass
class Composed:
    """What :meth:`DeliverableRun.compose` wrote (draft/final are None when there was no material)."""

    offline: bool
    prompt_chars: int
    draft: str | None = None
    final: str | None = None
    model: str | None = None


def run_event(d: Deliverable, outcome: RunOutcome, *, key: str, now: dt.datetime,
              extra: dict[str, Any] | None = None) -> ActivityEvent:
    """The run's ``deliverable_run`` activity event (ids, counts and status; the title is the user's own)."""
    row = outcome.row or {}
    summary = {
        "delivered": f"Delivered {d.title} v{outcome.version_number}",
        "empty": f"{d.title} v{outcome.version_number}: nothing new to deliver",
        "skipped": f"Skipped {d.title}: no new content since the last run",
        "failed": f"{d.title} v{outcome.version_number} failed: {(outcome.reason or '')[:120]}",
    }[outcome.status]
    metadata = {
        "deliverable_id": d.id, "version_id": outcome.version_id, "version_number": outcome.version_number,
        "deliverable_type": d.deliverable_type, "strategy": outcome.strategy, "final_status": outcome.status,
        "delivery_error": outcome.reason if outcome.status == "failed" else None,
        "skip_reason": outcome.reason if outcome.status in ("skipped", "empty") else None,
        "input_tokens": row.get("input_tokens"), "output_tokens": row.get("output_tokens"),
        "cost_usd": row.get("cost_usd"), "offline": row.get("offline"), **(extra or {}),
    }
    return ActivityEvent(user_id=d.user_id, event_type="deliverable_run", summary=summary, idempotency_key=key,
                         metadata=metadata, event_ref=outcome.version_id or d.id, created_at=now)
