"""A deliverable's sources: normalization, matching silver rows, and the sources a binding implies.

Stored sources follow the original's shape (``{type, provider, resource_id?, resource_name?}``);
here a source is a platform plus an optional resource. A source without a resource id stands
for the whole platform (the original never found fresh content for those and skipped the
deliverable forever). Gmail label ids match with or without the ``label:`` prefix (the
original's "INBOX" vs "label:INBOX" zero-context bug).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yarn_assets.core.tables import PLATFORMS
from yarn_assets.deliverables.types import get_type

_PROVIDER_ALIASES = {"google": "gmail", "google_calendar": "calendar", "gcal": "calendar"}


@dataclass(frozen=True)
class SourceRef:
    platform: str
    resource_id: str | None = None
    resource_name: str | None = None

    @property
    def label(self) -> str:
        if self.resource_id is None:
            return f"{self.platform} (all)"
        return f"{self.platform}:{self.resource_name or self.resource_id}"

    def silver_resource_ids(self) -> list[str]:
        """Resource ids this source matches in silver."""
        if self.resource_id is None:
            return []
        rid = self.resource_id
        if self.platform == "gmail":
            bare = rid.removeprefix("label:")
            return [bare, f"label:{bare}"]
        return [rid]

    def as_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "resource_id": self.resource_id, "resource_name": self.resource_name}


class SourceError(ValueError):
    """A source entry that names no known platform."""


def parse_source(raw: Any) -> SourceRef:
    """``"slack"``, ``"slack:C123"``, or a dict with platform/provider and resource_id."""
    if isinstance(raw, str):
        platform, _, rid = raw.partition(":")
        raw = {"platform": platform, "resource_id": rid or None}
    if not isinstance(raw, dict):
        raise SourceError(f"a source must be a string or an object, got {raw!r}")
    platform = str(raw.get("platform") or raw.get("provider") or raw.get("source") or "").lower()
    platform = _PROVIDER_ALIASES.get(platform, platform)
    if platform not in PLATFORMS:
        raise SourceError(f"unknown source platform {platform!r}; use one of {', '.join(PLATFORMS)}")
    rid = raw.get("resource_id") or None
    name = raw.get("resource_name") or None
    return SourceRef(platform, str(rid) if rid else None, str(name) if name else None)


def normalize_sources(raw: list[Any] | None) -> list[dict[str, Any]]:
    """What is stored on the deliverable (deduplicated, validated)."""
    out: list[SourceRef] = []
    for item in raw or []:
        if isinstance(item, dict) and item.get("type") in ("url", "document", "description"):
            continue  # non-integration sources are context, handled by type_config
        ref = parse_source(item)
        if ref not in out:
            out.append(ref)
    return [s.as_dict() for s in out]


def effective_sources(deliverable_type: str, binding: str, sources: list[Any] | None) -> list[SourceRef]:
    """Sources the run reads: the configured ones, or what the binding implies.

    platform_bound reads its primary platform's configured sources (all of that platform when
    none are configured); cross_platform and hybrid read every configured source (every platform
    when none); research reads only what is configured (grounding is optional).
    """
    refs = [parse_source(s) for s in normalize_sources(sources)]
    dtype = get_type(deliverable_type)
    if binding == "platform_bound":
        primary = dtype.primary_platform
        mine = [r for r in refs if primary is None or r.platform == primary]
        if mine:
            return mine
        if primary is not None:
            return [SourceRef(primary)]
        return refs or [SourceRef(p) for p in PLATFORMS]
    if binding == "research":
        return refs
    return refs or [SourceRef(p) for p in PLATFORMS]


def read_sources(deliverable_type: str, binding: str, sources: list[Any] | None) -> list[SourceRef]:
    """Sources read for the prompt: research grounds itself across platforms like cross_platform.

    A superset of what the freshness gate judges, so a round prefetches silver for these."""
    if binding == "research" and not sources:
        return effective_sources(deliverable_type, "cross_platform", None)
    return effective_sources(deliverable_type, binding, sources)


def skip_sources(deliverable_type: str, binding: str, sources: list[Any] | None) -> list[SourceRef]:
    """Sources the freshness gate judges: research without configured sources is never skipped."""
    if binding == "research":
        return [parse_source(s) for s in normalize_sources(sources)]
    return effective_sources(deliverable_type, binding, sources)
