"""Source discovery ("landscape") and the original's auto-selection with tier limits (ADR-078).

* Slack: channels by member count; Gmail: INBOX, SENT, STARRED, IMPORTANT, then user labels,
  never SPAM/TRASH/DRAFT/UNREAD/CATEGORY_*; Calendar: every calendar; Notion: most recently
  edited first. Each capped by the user's tier (free 5/5/10/∞, starter 15/10/25/∞, pro ∞).
* The operator may override the selection (``yarnnn connections select``); an overridden
  selection is kept across landscape refreshes, and may exceed the tier only with ``force``.
* Ids are stored exactly as the sync and silver use them (Gmail ``label:INBOX``), so a
  selection, a registry row and a silver ``resource_id`` always match (the original's
  "INBOX" vs "label:INBOX" mismatch left deliverables without context).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from yarn_assets.ingest.sync.fetch import Resource
from yarn_assets.ingest.sync.gmail import NEVER, PREFERRED

TIERS = ("free", "starter", "pro")
TIER_LIMITS: dict[str, dict[str, int | None]] = {
    "free": {"slack": 5, "gmail": 5, "notion": 10, "calendar": None},
    "starter": {"slack": 15, "gmail": 10, "notion": 25, "calendar": None},
    "pro": {"slack": None, "gmail": None, "notion": None, "calendar": None},
}
LANDSCAPE_MAX_AGE = dt.timedelta(hours=24)


def tier_of(value: str | None) -> str:
    """Unknown tiers count as free (the original's rule)."""
    return value if value in TIER_LIMITS else "free"


def limit_for(tier: str, platform: str) -> int | None:
    return TIER_LIMITS[tier_of(tier)].get(platform)


def normalize_id(platform: str, value: str) -> str:
    value = str(value).strip()
    if platform == "gmail" and not value.startswith("label:"):
        return f"label:{value}"
    return value


def _gmail_rank(resources: list[Resource]) -> list[Resource]:
    by_label = {r.metadata.get("label_id") or r.id.removeprefix("label:"): r for r in resources}
    ordered = [by_label[x] for x in PREFERRED if x in by_label]
    user = sorted((r for r in resources if r.type == "user"), key=lambda r: r.name.lower())
    out = ordered + [r for r in user if r not in ordered]
    return [r for r in out if (r.metadata.get("label_id") or r.id.removeprefix("label:")) not in NEVER
            and not (r.metadata.get("label_id") or r.id.removeprefix("label:")).startswith("CATEGORY_")]


def auto_select(platform: str, resources: list[Resource], tier: str) -> list[str]:
    if platform == "slack":
        ranked = sorted(resources, key=lambda r: (-int(r.metadata.get("num_members") or 0), r.name))
    elif platform == "gmail":
        ranked = _gmail_rank(resources)
    elif platform == "notion":
        ranked = sorted(resources, key=lambda r: str(r.metadata.get("last_edited_time") or ""), reverse=True)
    else:
        ranked = list(resources)
    limit = limit_for(tier, platform)
    return [r.id for r in (ranked if limit is None else ranked[:limit])]


def selection_ids(selected: Iterable[Any] | None) -> list[str]:
    """Accepts the original's shapes too: ``["id", {"id": "id"}]``."""
    out = []
    for item in selected or []:
        value = item.get("id") if isinstance(item, dict) else item
        if value and str(value) not in out:
            out.append(str(value))
    return out


def landscape_resources(landscape: dict[str, Any] | None) -> list[Resource]:
    return [Resource.from_json(r) for r in (landscape or {}).get("resources") or []]


def selected_resources(platform: str, landscape: dict[str, Any] | None,
                       selected: Iterable[Any] | None) -> list[Resource]:
    """The selected resources in selection order; an id missing from the landscape is still synced
    (the operator may know better than a stale landscape) under its id as name."""
    by_id = {r.id: r for r in landscape_resources(landscape)}
    out = []
    for rid in selection_ids(selected):
        rid = normalize_id(platform, rid)
        out.append(by_id.get(rid) or Resource(id=rid, name=rid, type=_guess_type(platform)))
    return out


def _guess_type(platform: str) -> str:
    return {"slack": "channel", "gmail": "user", "calendar": "calendar", "notion": "page"}[platform]


def validate_selection(platform: str, tier: str, landscape: dict[str, Any] | None, ids: list[str],
                       force: bool = False) -> list[str]:
    """Problems with an operator's selection (empty list = fine)."""
    problems = []
    known = {r.id for r in landscape_resources(landscape)}
    unknown = [i for i in ids if known and i not in known]
    if unknown and not force:
        problems.append(f"not in the landscape: {', '.join(unknown)} (refresh with `connections landscape`)")
    limit = limit_for(tier, platform)
    if limit is not None and len(ids) > limit and not force:
        problems.append(f"{len(ids)} sources exceed the {tier_of(tier)} tier's {platform} limit of {limit}")
    if platform == "gmail":
        bad = [i for i in ids if i.removeprefix("label:") in NEVER or i.removeprefix("label:").startswith("CATEGORY_")]
        if bad and not force:
            problems.append(f"labels never synced: {', '.join(bad)}")
    return problems
