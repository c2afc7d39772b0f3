"""Ops domain definitions: housekeeping assets, whole-table checks, their schedules, failure alerts."""

from __future__ import annotations

import dagster as dg

from schedules.housekeeping import SCHEDULES
from sensors.run_failures import run_failure_alerts
from yarn_assets.ops.assets import content_cleanup, table_maintenance
from yarn_assets.ops.checks import CHECKS
from yarn_assets.ops.jobs import content_cleanup_job, table_maintenance_job, warehouse_checks_job


def definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[content_cleanup, table_maintenance],
        asset_checks=CHECKS,
        jobs=[content_cleanup_job, table_maintenance_job, warehouse_checks_job],
        schedules=SCHEDULES,
        sensors=[run_failure_alerts],
    )
