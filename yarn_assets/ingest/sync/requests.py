"""Which syncs to launch now, as run requests: one run per due connection, tagged with its id.

One connection per run is what lets Dagster's run queue keep two syncs of one connection apart:
every sync run carries ``yarnnn/connection=<id>`` and the instance limits that tag to one run in
progress per value (``concurrency.runs.tag_concurrency_limits`` with ``applyLimitPerUniqueValue``,
in ``yarn_assets/core/instance.py`` and ``deploy/dagster.postgres.yaml``). A run whose worker died
stays "in progress" only until run monitoring fails it; then the next run of that connection
starts. ``yarnnn/sync_platform`` still caps concurrent runs per platform API, and the
``platform_api`` pool concurrent sync steps.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
from sqlalchemy import select

from control_plane.models import PlatformConnection, User
from resources.control_plane import ControlPlane
from yarn_assets.core.partitions import ingest_key
from yarn_assets.ingest.sources import BRONZE_SYNCS, SILVER_CONTENT
from yarn_assets.ingest.sync import schedule

TAG_CONNECTIONS = "yarnnn/connections"  # which connections a run syncs (comma-separated ids or prefixes)
TAG_CONNECTION = "yarnnn/connection"  # the one connection a run syncs: the run queue's concurrency key
TAG_USERS = "yarnnn/users"
TAG_PLATFORM = "yarnnn/sync_platform"


def connection_tags(connection_id: str, platform: str, trigger: str) -> dict[str, str]:
    """The tags of a run that syncs one connection (sensor, CLI and UI launches alike)."""
    return {TAG_CONNECTIONS: connection_id, TAG_CONNECTION: connection_id, TAG_PLATFORM: platform,
            "yarnnn/trigger": trigger}


def due_connections(control_plane: ControlPlane, now: dt.datetime) -> list[tuple[str, str, str]]:
    """(platform, connection id, window start iso) of every connection due now, by platform and user."""
    out: list[tuple[str, str, str]] = []
    with control_plane.session() as s:
        for conn in s.scalars(select(PlatformConnection).order_by(PlatformConnection.platform,
                                                                  PlatformConnection.user_id)):
            user = s.get(User, conn.user_id)
            due = schedule.is_due(now=now, tier=user.tier if user else "free",
                                  timezone=user.timezone if user else "UTC", status=conn.status,
                                  last_attempt_at=conn.last_attempt_at, last_synced_at=conn.last_synced_at)
            if due.due:
                out.append((conn.platform, conn.id, due.window_start.isoformat()))
    return out


def sync_run_requests(control_plane: ControlPlane, now: dt.datetime, trigger: str) -> list[dg.RunRequest]:
    """One run request per due connection (today × its platform); the run key holds the window, so a
    queued run is never requested twice for the same window."""
    today = now.date().isoformat()
    return [
        dg.RunRequest(
            run_key=f"sync:{conn_id}:{window}",
            partition_key=ingest_key(today, platform),
            asset_selection=[BRONZE_SYNCS, SILVER_CONTENT],
            tags=connection_tags(conn_id, platform, trigger),
        )
        for platform, conn_id, window in due_connections(control_plane, now)
    ]
