"""Delivery of recipe output as a version of a deliverable, through the deliverables domain's outbox.

The deliverable is configuration (owner, destination, recipient): a recipe never chooses a
recipient from content. The version is allocated per run *lineage* (``root_run_id``), so a retry
or a replay resumes the same version, and the outbox (``deliverable_deliveries``) sends it at most
once. When an earlier step already stored the version's gold row (the research recipe does, with
sources and research), only its delivery fields are updated; otherwise a row is written here.
"""

from __future__ import annotations

import json
from typing import Any

from control_plane.models import Deliverable, DeliverableVersion, User, utcnow
from io_managers.predicates import Eq, all_of
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.deliverables import run_state, service
from yarn_assets.deliverables.delivery.base import parse_destination
from yarn_assets.deliverables.delivery.dispatch import deliver_all
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS
from yarn_assets.deliverables.versions import write_gold
from yarn_assets.recipes.runtime import StepRuntime

STRATEGY = "recipe"


def load_deliverable(rt: StepRuntime, deliverable_id: str) -> tuple[Deliverable, User]:
    with rt.session_factory() as session:
        d = service.get_deliverable(session, deliverable_id)
        user = session.get(User, d.user_id)
        if user is None:
            raise service.DeliverableError(f"deliverable {d.id} has no user")
        session.expunge_all()
    return d, user


def version_for_run(rt: StepRuntime, deliverable_id: str, strategy: str = STRATEGY) -> tuple[DeliverableVersion, bool]:
    """The version of this run lineage (allocated on first use; a replay gets the same one)."""
    return service.allocate_version(rt.session_factory, deliverable_id=deliverable_id, run_id=rt.run_id,
                                    root_run_id=rt.root_run_id, trigger="manual", strategy=strategy)


def gold_row(rt: StepRuntime, deliverable_id: str, version_id: str) -> dict[str, Any] | None:
    df = rt.store.read(DELIVERABLE_VERSIONS, all_of(Eq("deliverable_id", deliverable_id), Eq("version_id", version_id)))
    return df.row(0, named=True) if df.height else None


def deliver_version(rt: StepRuntime, *, deliverable_id: str, content: str, title: str | None,
                    llm: dict[str, Any] | None) -> dict[str, Any]:
    d, _user = load_deliverable(rt, deliverable_id)
    version, _ = version_for_run(rt, d.id)
    dest = parse_destination(d.destination)
    row = gold_row(rt, d.id, version.id)
    if row is None:
        usage = llm or {}
        row = {
            "deliverable_id": d.id, "version_id": version.id, "version_number": version.version_number,
            "user_id": d.user_id, "deliverable_type": d.deliverable_type, "title": title or d.title,
            "strategy": STRATEGY, "trigger": "manual", "status": "generated", "draft_content": content,
            "final_content": content, "offline": bool(usage.get("offline", getattr(rt.llm, "is_offline", False))),
            "model": usage.get("model"), "input_tokens": int(usage.get("input_tokens") or 0),
            "output_tokens": int(usage.get("output_tokens") or 0), "cost_usd": float(usage.get("cost_usd") or 0.0),
            "prompt_chars": None, "items_in_prompt": None, "sources_used": "[]", "source_snapshot": "[]",
            "stale_sources": "[]", "research": "{}",
            "steps": json.dumps([{"name": f"recipe:{rt.recipe_id}", "status": "ok"}]),
            "destination": json.dumps(dest.as_dict()), "delivery_status": None, "delivery_error": None,
            "delivered_at": None, "run_id": rt.run_id, "created_at": version.created_at, "generated_at": utcnow(),
        }
        write_gold(rt.store, row)
    final = str(row.get("final_content") or content)
    result = deliver_all(rt.session_factory, rt.delivery, deliverable=d, version=version, text=final, row=row,
                         run_id=rt.run_id)
    status = "delivered" if result.status == "delivered" else "failed"
    with rt.session_factory() as session:
        state = run_state.settle_version(session, version.id, status, delivery_status=result.status,
                                         delivery_error=result.error, error=result.error)
    row.update(state.gold_fields())
    row["destination"] = result.destination_json()
    write_gold(rt.store, row)
    write_events(rt.store, [ActivityEvent(
        user_id=d.user_id, event_type="deliverable_run",
        summary=(f"Delivered {d.title} v{version.version_number} (recipe {rt.recipe_id})" if status == "delivered"
                 else f"{d.title} v{version.version_number} failed (recipe {rt.recipe_id})"),
        idempotency_key=f"{version.id}:recipe:{status}", event_ref=version.id, created_at=rt.now,
        metadata={"deliverable_id": d.id, "version_id": version.id, "version_number": version.version_number,
                  "recipe": rt.recipe_id, "final_status": status, "channel": result.channel,
                  "duplicate": result.duplicate},
    )], run_id=rt.run_id)
    return {"status": result.status, "channel": result.channel, "target": result.target, "duplicate": result.duplicate,
            "attempts": result.attempts, "version_id": version.id, "version_number": version.version_number,
            "error": result.error}
