"""Deliverables domain definitions: the versions asset and its job (its sensors are in ``sensors.deliverables``)."""

from __future__ import annotations

import dagster as dg


def definitions() -> dg.Definitions:
    from yarn_assets.deliverables.assets import deliverable_job, deliverable_versions

    return dg.Definitions(assets=[deliverable_versions], jobs=[deliverable_job])
