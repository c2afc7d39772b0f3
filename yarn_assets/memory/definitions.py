"""Memory domain definitions: chat ingest, nightly memory, analysis, weekly digests (triggers: ``sensors.memory``,
``schedules.memory``)."""

from __future__ import annotations

import dagster as dg


def definitions() -> dg.Definitions:
    """Built with the ``user_shards`` setting (read here, at definitions load), like signals."""
    from resources.settings import load_settings
    from yarn_assets.memory.assets import JOBS, build_assets

    shards = load_settings().user_shards
    return dg.Definitions(assets=build_assets(shards), jobs=JOBS)
