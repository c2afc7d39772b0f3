"""Manual sync of one connection: ``bronze/platform_items/syncs`` (then silver) for it now.

Used by ``yarnnn connections sync``: a run of ``platform_sync_job`` submitted to the instance
(``yarn_assets.core.submit``: queued when a daemon serves the queue, else run here), the same run
the UI launches with the ``yarnnn/connections`` tag or ``connection_ids`` run config.
"""

from __future__ import annotations

import datetime as dt
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import dagster as dg

from control_plane import db
from control_plane.models import PlatformConnection
from resources.settings import YarnSettings
from yarn_assets.core.partitions import ingest_key


@dataclass
class ManualResult:
    success: bool
    summary: str
    error: str | None
    run_id: str
    metadata: dict[str, Any]


def run_sync(settings: YarnSettings, connection_id: str, *, full_resync: bool = False,
             instance: dg.DagsterInstance | None = None) -> ManualResult:
    """Submit ``platform_sync_job`` for this connection to the instance and wait for it."""
    from yarn_assets.core.instance import instance_for
    from yarn_assets.core.submit import RecordedRun, submit_run
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
    with nullcontext(instance) if instance is not None else instance_for(settings.resolved_home) as inst:
        run = submit_run("platform_sync_job", settings=settings, instance=inst, partition=ingest_key(today, platform),
                         run_config=run_config, tags=connection_tags(connection_id, platform, "cli"), wait=True)
        result = RecordedRun(inst, run.run_id)
        mats = result.asset_materializations_for_node("bronze__platform_items__syncs")
        failures = result.step_failure_messages()
    metadata: dict[str, Any] = {}
    for mat in mats:
        metadata = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    with db.session_scope(url) as s:
        conn = s.get(PlatformConnection, connection_id)
        error = conn.last_error if conn is not None else None
    if run.success:
        summary = (f"{metadata.get('objects', 0)} objects ({metadata.get('tombstones', 0)} deletions), "
                   f"{metadata.get('requests', 0)} requests; silver updated")
        if error:
            summary += f"; partial: {error}"
        return ManualResult(True, summary, None, run.run_id, metadata)
    message = error or (failures[0] if failures else "sync failed")
    return ManualResult(False, "failed", message, run.run_id, metadata)
