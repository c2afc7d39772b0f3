"""Live API sync definitions (Slack, Gmail, Notion, Google Calendar); the sync sensor is in ``sensors.ingest``."""

from __future__ import annotations

import dagster as dg

from yarn_assets.ingest.sources import BRONZE_SYNCS, SILVER_CONTENT
from yarn_assets.ingest.sync.asset import bronze_synced_items

platform_sync_job = dg.define_asset_job(
    "platform_sync_job",
    selection=dg.AssetSelection.assets(BRONZE_SYNCS, SILVER_CONTENT),
    description="Sync the named (or all due) connections of one platform into today's bronze, then silver. "
    'Manual: launch with tags {"yarnnn/connections": "<id>"} or config ops.bronze__synced_items.config.',
)


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[bronze_synced_items], jobs=[platform_sync_job])
