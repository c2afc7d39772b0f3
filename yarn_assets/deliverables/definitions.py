"""Deliverables domain definitions: the versions asset, its job and the two trigger sensors."""

from __future__ import annotations

import dagster as dg


def definitions() -> dg.Definitions:
    from sensors.deliverables import deliverable_requests_sensor, due_deliverables_sensor
    from yarn_assets.deliverables.assets import control_deliverables, deliverable_job, deliverable_versions

    return dg.Definitions(
        assets=[control_deliverables, deliverable_versions],
        jobs=[deliverable_job],
        sensors=[due_deliverables_sensor, deliverable_requests_sensor],
    )
