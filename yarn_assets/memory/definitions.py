"""Memory domain definitions: chat ingest, nightly memory, analysis, weekly digests."""

from __future__ import annotations

import dagster as dg


def definitions() -> dg.Definitions:
    from schedules.memory import SCHEDULES
    from sensors.chat_imports import chat_imports_sensor
    from yarn_assets.memory.assets import ASSETS, JOBS

    return dg.Definitions(assets=ASSETS, jobs=JOBS, schedules=SCHEDULES, sensors=[chat_imports_sensor])
