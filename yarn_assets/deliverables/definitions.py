"""Deliverables domain definitions: the versions asset, its single-deliverable job and the shard round job
(their sensors are in ``sensors.deliverables``)."""

from __future__ import annotations

import dagster as dg


def definitions() -> dg.Definitions:
    from yarn_assets.deliverables.assets import control_deliverables, deliverable_job, deliverable_versions
    from yarn_assets.deliverables.round_job import deliverable_round_job

    return dg.Definitions(assets=[control_deliverables, deliverable_versions],
                          jobs=[deliverable_job, deliverable_round_job])
