"""Memory domain definitions: chat ingest, nightly memory, analysis, weekly digests (triggers: ``sensors.memory``,
``schedules.memory``)."""

from __future__ import annotations

import dagster as dg


def definitions() -> dg.Definitions:
    from yarn_assets.memory.assets import ASSETS, JOBS

    return dg.Definitions(assets=ASSETS, jobs=JOBS)
