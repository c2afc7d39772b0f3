"""People domain definitions: the timeline, contacts and vectors assets (all automated, no jobs needed)."""

from __future__ import annotations

import dagster as dg


def definitions() -> dg.Definitions:
    from yarn_assets.people.assets import ASSETS, JOBS

    return dg.Definitions(assets=ASSETS, jobs=JOBS)
