"""Freshness: is there anything new since the last run, and which sources are stale.

* **Skip rule** (scheduled runs): skip when none of the deliverable's sources has silver content
  fetched after ``last_run_at``. A source without a resource id is judged by its whole platform,
  so such deliverables are no longer skipped forever (the original's bug).
* **Stale sources**: a source whose last sync (``sync_registry.last_synced_at``, or the newest
  fetch of its content for imported data) is older than the type's
  ``freshness_requirement_hours`` (the original declared these and always used 24 h). They are
  named in the version's metadata and in a line of the delivered text.
* **Source snapshot**: the sync state per source at generation time (the original's
  ``source_snapshots`` column).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.models import SyncRegistry
from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, In, all_of
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.deliverables.sources import SourceRef


def _source_filter(ref: SourceRef) -> pl.Expr:
    expr = pl.col("platform") == ref.platform
    ids = ref.silver_resource_ids()
    return expr & pl.col("resource_id").is_in(ids) if ids else expr


def _user_rows(store: DeltaStore, user_id: str, sources: list[SourceRef],
               rows: pl.DataFrame | None) -> pl.LazyFrame | None:
    """The user's silver rows on the sources' platforms: from a round's prefetch, or scanned."""
    platforms = sorted({s.platform for s in sources})
    if rows is not None:
        return rows.lazy().filter((pl.col("user_id") == user_id) & pl.col("platform").is_in(platforms))
    return store.scan(PLATFORM_CONTENT, all_of(In("platform", platforms), Eq("user_id", user_id)))


def has_new_content(store: DeltaStore, user_id: str, sources: list[SourceRef], since: dt.datetime | None,
                    rows: pl.DataFrame | None = None) -> bool:
    """True when some source has content fetched after ``since`` (always true on a first run).

    ``rows``: the round's prefetched silver rows (any users; this user's are used)."""
    if since is None or not sources:
        return True
    lf = _user_rows(store, user_id, sources, rows)
    if lf is None:
        return False
    match = _source_filter(sources[0])
    for ref in sources[1:]:
        match = match | _source_filter(ref)
    hits = lf.filter(match & (pl.col("fetched_at") > since)).select(pl.len()).collect().item()
    return bool(hits)


def source_snapshot(
    session: Session,
    store: DeltaStore,
    *,
    user_id: str,
    sources: list[SourceRef],
    now: dt.datetime,
    required_hours: int,
    implicit: bool = False,
    rows: pl.DataFrame | None = None,
    registry: list[SyncRegistry] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(snapshot, stale) for the given sources at ``now``.

    ``implicit``: the sources were implied by the binding (no configured sources), so a platform
    the user has neither content nor sync state for is not theirs, not stale. ``rows``/``registry``:
    a round's prefetched silver rows and this user's sync registry (else read here).
    """
    if registry is None:
        registry = list(session.scalars(select(SyncRegistry).where(SyncRegistry.user_id == user_id)))
    stats = pl.DataFrame()
    lf = _user_rows(store, user_id, sources, rows) if sources else None
    if lf is not None:
        stats = (lf.group_by(["platform", "resource_id"])
                 .agg(pl.len().alias("items"), pl.col("fetched_at").max().alias("last_fetched_at"),
                      pl.col("occurred_at").max().alias("latest_item_at"),
                      pl.col("resource_name").first().alias("resource_name"))
                 .sort("platform", "resource_id").collect())  # deterministic: a platform source names its first
    snapshot: list[dict[str, Any]] = []
    stale: list[dict[str, Any]] = []
    for ref in sources:
        regs = [r for r in registry if r.platform == ref.platform
                and (ref.resource_id is None or r.resource_id in ref.silver_resource_ids())]
        rows = stats.filter(_source_filter(ref)) if not stats.is_empty() else stats
        items = int(rows["items"].sum()) if rows.height else 0
        last_fetch = rows["last_fetched_at"].max() if rows.height else None
        latest_item = rows["latest_item_at"].max() if rows.height else None
        synced = max((r.last_synced_at for r in regs if r.last_synced_at), default=None)
        seen = max((t for t in (synced, last_fetch) if t is not None), default=None)
        entry = {
            "platform": ref.platform,
            "resource_id": ref.resource_id,
            "resource_name": ref.resource_name or (rows["resource_name"][0] if rows.height else None),
            "synced_at": synced.isoformat() if synced else None,
            "platform_cursor_set": any(r.platform_cursor for r in regs),
            "registry_item_count": sum(r.item_count or 0 for r in regs),
            "source_latest_at": max((r.source_latest_at for r in regs if r.source_latest_at), default=None),
            "last_error": next((r.last_error for r in regs if r.last_error), None),
            "silver_items": items,
            "last_fetched_at": last_fetch.isoformat() if last_fetch else None,
            "latest_item_at": latest_item.isoformat() if latest_item else None,
        }
        if entry["source_latest_at"] is not None:
            entry["source_latest_at"] = entry["source_latest_at"].isoformat()
        if implicit and not items and not regs:
            continue
        snapshot.append(entry)
        age_hours = None if seen is None else (now - seen).total_seconds() / 3600
        if age_hours is None or age_hours > required_hours:
            stale.append({"platform": ref.platform, "resource_id": ref.resource_id, "label": ref.label,
                          "age_hours": None if age_hours is None else round(age_hours, 1),
                          "required_hours": required_hours})
    return snapshot, stale


def stale_note(stale: list[dict[str, Any]]) -> str:
    """The one line of the output that names stale sources ('' when all are fresh)."""
    if not stale:
        return ""
    parts = []
    for s in stale:
        age = "never synced" if s["age_hours"] is None else f"last synced {s['age_hours']:.0f} h ago"
        parts.append(f"{s['label']} ({age})")
    required = stale[0]["required_hours"]
    return f"_Stale sources (this deliverable expects data under {required} h old): {'; '.join(parts)}._"
