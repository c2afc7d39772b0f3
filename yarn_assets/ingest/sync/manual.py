"""Manual sync of one connection: materialize ``bronze/platform_items/syncs`` (then silver) for it now.

Used by ``yarnnn connections sync``. The run executes in this process and is recorded in the
Dagster instance of ``DAGSTER_HOME`` (an ephemeral one when unset), exactly like
``dagster asset materialize``; from the UI the same is a launch of ``platform_sync_job`` with
the ``yarnnn/connections`` tag or ``connection_ids`` run config.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any

import dagster as dg

from control_plane import db
from control_plane.models import PlatformConnection
from resources.registry import build_resources
from resources.settings import YarnSettings
from yarn_assets.core.partitions import ingest_key


@dataclass
class ManualResult:
    success: bool
    summary: str
    error: str | None
    run_id: str
    metadata: dict[str, Any]


def _instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def run_sync(settings: YarnSettings, connection_id: str, *, full_resync: bool = False,
             resources: dict[str, Any] | None = None, instance: dg.DagsterInstance | None = None) -> ManualResult:
    from yarn_assets.ingest.assets import silver_platform_content
    from yarn_assets.ingest.sync.asset import bronze_synced_items
    from yarn_assets.ingest.sync.requests import connection_tags

    url = settings.resolved_control_plane_url
    db.ensure_schema(url, settings.control_plane_auto_migrate)
    with db.session_scope(url) as s:
        conn = s.get(PlatformConnection, connection_id)
        if conn is None:
            raise ValueError(f"no connection {connection_id}")
        platform = conn.platform
    today = dt.datetime.now(dt.UTC).date().isoformat()
    run_config = {"ops": {"bronze__platform_items__syncs": {"config": {"connection_ids": [connection_id],
                                                              "full_resync": full_resync}}}}
    result = dg.materialize(
        [bronze_synced_items, silver_platform_content],
        partition_key=ingest_key(today, platform),
        run_config=run_config,
        resources=resources or build_resources(settings),
        instance=instance or _instance(),
        tags=connection_tags(connection_id, platform, "cli"),
        raise_on_error=False,
    )
    metadata: dict[str, Any] = {}
    for mat in result.asset_materializations_for_node("bronze__platform_items__syncs"):
        metadata = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    with db.session_scope(url) as s:
        conn = s.get(PlatformConnection, connection_id)
        error = conn.last_error if conn is not None else None
    if result.success:
        summary = (f"{metadata.get('objects', 0)} objects ({metadata.get('tombstones', 0)} deletions), "
                   f"{metadata.get('requests', 0)} requests; silver updated")
        if error:
            summary += f"; partial: {error}"
        return ManualResult(True, summary, None, result.run_id, metadata)
    failures = [e.step_failure_data.error.message.strip() for e in result.get_step_failure_events()
                if e.step_failure_data and e.step_failure_data.error]
    message = error or (failures[0] if failures else "sync failed")
    return ManualResult(False, "failed", message, result.run_id, metadata)
