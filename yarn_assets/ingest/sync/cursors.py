"""sync_registry reads and writes, and the per-connection sync lease.

A resource's row is written only after its objects are committed to bronze (the caller's
order), so the stored cursor never runs ahead of the data: a crash loses nothing and a rerun
re-fetches at most the resource it was working on, which silver's identity hash absorbs.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import Any

import psutil
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from control_plane.models import PlatformConnection, SyncRegistry
from yarn_assets.ingest.sync.fetch import Prior, Resource, ResourceResult

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
    row.item_count = int(row.item_count or 0) + sum(1 for o in result.objects if not o.is_tombstone
                                                    and o.object_type != "slack_users")
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


# ---------------------------------------------------------------------------------- leases
def lease_owner(run_id: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{run_id}"[:200]


def _owner_dead(owner: str | None) -> bool:
    """A lease held by a process of this host that no longer exists is stale at once."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    return not psutil.pid_exists(pid)


def acquire_lease(session: Session, connection_id: str, owner: str, ttl: dt.timedelta, now: dt.datetime) -> bool:
    conn = session.get(PlatformConnection, connection_id)
    if conn is None:
        return False
    stale = conn.sync_lease_owner is not None and _owner_dead(conn.sync_lease_owner)
    cond = [PlatformConnection.sync_lease_owner.is_(None), PlatformConnection.sync_lease_expires_at < now,
            PlatformConnection.sync_lease_owner == owner]
    if stale:
        cond.append(PlatformConnection.sync_lease_owner == conn.sync_lease_owner)
    result = session.execute(
        update(PlatformConnection).where(PlatformConnection.id == connection_id, or_(*cond))
        .values(sync_lease_owner=owner, sync_lease_expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def renew_lease(session: Session, connection_id: str, owner: str, ttl: dt.timedelta, now: dt.datetime) -> None:
    session.execute(
        update(PlatformConnection)
        .where(PlatformConnection.id == connection_id, PlatformConnection.sync_lease_owner == owner)
        .values(sync_lease_expires_at=now + ttl).execution_options(synchronize_session=False)
    )


def release_lease(session: Session, connection_id: str, owner: str) -> None:
    session.execute(
        update(PlatformConnection)
        .where(PlatformConnection.id == connection_id, PlatformConnection.sync_lease_owner == owner)
        .values(sync_lease_owner=None, sync_lease_expires_at=None).execution_options(synchronize_session=False)
    )
