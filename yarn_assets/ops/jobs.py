"""Jobs of the ops domain (what its schedules launch; also usable from the UI and `dagster job`)."""

from __future__ import annotations

import dagster as dg

from yarn_assets.ops.assets import CONTENT_CLEANUP, TABLE_MAINTENANCE
from yarn_assets.ops.checks import CHECKS

content_cleanup_job = dg.define_asset_job(
    "content_cleanup_job",
    selection=dg.AssetSelection.assets(CONTENT_CLEANUP),
    description="TTL cleanup of one hour (silver rows, bronze bodies, rejects, archives).",
)

table_maintenance_job = dg.define_asset_job(
    "table_maintenance_job",
    selection=dg.AssetSelection.assets(TABLE_MAINTENANCE),
    description="Compaction and vacuum of every warehouse table.",
)

warehouse_checks_job = dg.define_asset_job(
    "warehouse_checks_job",
    selection=dg.AssetSelection.checks(*CHECKS),
    description="Whole-table checks: unique silver keys, TTL on every non-retained row, UTC timestamps, "
    "users matching their batches and connections, silent zero-item syncs.",
)
