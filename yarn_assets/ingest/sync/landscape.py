"""Source discovery ("landscape") and the original's auto-selection with tier limits (ADR-078).

* Each platform ranks its sources (``LiveApi.rank``: Slack channels by member count; Gmail INBOX,
  SENT, STARRED, IMPORTANT, then user labels, never SPAM/TRASH/DRAFT/UNREAD/CATEGORY_*; Calendar
  every calendar; Notion most recently edited first), capped by the user's tier
  (``LiveApi.tier_limits``: free 5/5/10/∞, starter 15/10/25/∞, pro ∞).
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

from yarn_assets.ingest.fetch import Resource
from yarn_assets.ingest.platforms import api_of

TIERS = ("free", "starter", "pro")
LANDSCAPE_MAX_AGE = dt.timedelta(hours=24)


def tier_of(value: str | None) -> str:
    """Unknown tiers count as free (the original's rule)."""
    return value if value in TIERS else "free"


def limit_for(tier: str, platform: str) -> int | None:
    return api_of(platform).tier_limits.get(tier_of(tier))


def normalize_id(platform: str, value: str) -> str:
    return api_of(platform).resource_id(str(value).strip())


def auto_select(platform: str, resources: list[Resource], tier: str) -> list[str]:
    ranked = api_of(platform).rank(resources)
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
        out.append(by_id.get(rid) or Resource(id=rid, name=rid, type=api_of(platform).resource_type))
    return out


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
    bad = [i for i in ids if api_of(platform).never_select(i)]
    if bad and not force:
        problems.append(f"sources never synced: {', '.join(bad)}")
    return problems
