"""Ingest domain definitions: export imports and live API syncs -> bronze -> silver (triggers: ``sensors.ingest``)."""

from __future__ import annotations

import dagster as dg

from yarn_assets.ingest.assets import bronze_imported_items, ingest_job, silver_platform_content
from yarn_assets.ingest.sync.definitions import definitions as sync_definitions


def definitions() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.Definitions(assets=[bronze_imported_items, silver_platform_content], jobs=[ingest_job]),
        sync_definitions(),
    )
