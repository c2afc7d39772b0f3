"""sync_registry reads and writes.

A resource's row is written only after its objects are committed to bronze (the caller's
order), so the stored cursor never runs ahead of the data: a crash loses nothing and a rerun
re-fetches at most the resource it was working on, which silver's identity hash absorbs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.models import SyncRegistry
from yarn_assets.ingest.fetch import Prior, Resource, ResourceResult
from yarn_assets.ingest.normalize import context_only

CONNECTION_ROW = "__connection__"


def load_priors(session: Session, user_id: str, platform: str) -> dict[str, Prior]:
    rows = session.scalars(select(SyncRegistry).where(SyncRegistry.user_id == user_id,
                                                      SyncRegistry.platform == platform))
    return {r.resource_id: Prior(r.platform_cursor, dict(r.state or {}), r.last_synced_at) for r in rows}


def _row(session: Session, user_id: str, platform: str, resource_id: str, name: str | None = None) -> SyncRegistry:
    row = session.scalars(select(SyncRegistry).where(
        SyncRegistry.user_id == user_id, SyncRegistry.platform == platform, SyncRegistry.resource_id == resource_id,
    )).first()
    if row is None:
        row = SyncRegistry(user_id=user_id, platform=platform, resource_id=resource_id, resource_name=name,
                           item_count=0, state={})
        session.add(row)
    return row


def commit_resource(session: Session, user_id: str, platform: str, result: ResourceResult, now: dt.datetime) -> None:
    """Advance one resource's cursor (call only after its bronze rows are committed)."""
    row = _row(session, user_id, platform, result.resource.id, result.resource.name)
    row.resource_name = result.resource.name
    row.platform_cursor = result.cursor
    row.state = result.state
    row.last_synced_at = now
    context = context_only()
    row.item_count = int(row.item_count or 0) + sum(1 for o in result.objects if not o.is_tombstone
                                                    and o.object_type not in context)
    if result.source_latest_at and (row.source_latest_at is None or result.source_latest_at > row.source_latest_at):
        row.source_latest_at = result.source_latest_at
    if result.errors:
        row.last_error = "; ".join(result.errors)[:4000]
        row.last_error_at = now
    else:
        row.last_error = None
        row.last_error_at = None


def save_row(session: Session, user_id: str, platform: str, resource_id: str, cursor: str | None,
             state: dict[str, Any], now: dt.datetime) -> None:
    row = _row(session, user_id, platform, resource_id, resource_id)
    row.platform_cursor = cursor
    row.state = state
    row.last_synced_at = now


def record_error(session: Session, user_id: str, platform: str, resource: Resource | str, message: str,
                 now: dt.datetime) -> None:
    rid = resource.id if isinstance(resource, Resource) else resource
    name = resource.name if isinstance(resource, Resource) else resource
    row = _row(session, user_id, platform, rid, name)
    row.last_error = message[:4000]
    row.last_error_at = now


def clear_connection_error(session: Session, user_id: str, platform: str) -> None:
    row = session.scalars(select(SyncRegistry).where(
        SyncRegistry.user_id == user_id, SyncRegistry.platform == platform, SyncRegistry.resource_id == CONNECTION_ROW,
    )).first()
    if row is not None:
        row.last_error = None
        row.last_error_at = None
