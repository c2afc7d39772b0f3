"""Ops domain definitions: housekeeping assets, whole-table checks and their jobs (triggers: ``schedules.ops``,
``sensors.ops``)."""

from __future__ import annotations

import dagster as dg

from yarn_assets.ops.assets import content_cleanup, table_maintenance
from yarn_assets.ops.checks import CHECKS
from yarn_assets.ops.jobs import content_cleanup_job, table_maintenance_job, warehouse_checks_job


def definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[content_cleanup, table_maintenance],
        asset_checks=CHECKS,
        jobs=[content_cleanup_job, table_maintenance_job, warehouse_checks_job],
    )
