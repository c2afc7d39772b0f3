"""General-purpose recipe functions."""

from __future__ import annotations

from typing import Any

from yarn_assets.recipes.delivery import load_deliverable
from yarn_assets.recipes.registry import recipe_function
from yarn_assets.recipes.runtime import StepRuntime


@recipe_function("common.deliverable_owner", outputs=("deliverable_id", "user_id", "title", "timezone", "recipient"))
def deliverable_owner(rt: StepRuntime, *, deliverable_id: str) -> dict[str, Any]:
    """Who a deliverable belongs to and how to address them: the user every later read is filtered on."""
    d, user = load_deliverable(rt, deliverable_id)
    recipient = (d.recipient_context or {}).get("name") or user.name or "you"
    return {"deliverable_id": d.id, "user_id": d.user_id, "title": d.title,
            "timezone": (d.schedule or {}).get("timezone") or user.timezone or "UTC", "recipient": recipient}


@recipe_function("common.concat", outputs=("items", "count"))
def concat(rt: StepRuntime, *, lists: list[list[Any]]) -> dict[str, Any]:
    """Several lists as one (e.g. rows of two read_asset steps)."""
    items = [x for part in lists for x in (part or [])]
    return {"items": items, "count": len(items)}
