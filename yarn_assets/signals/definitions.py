"""Signals domain definitions: the hourly passes asset and its job (its schedule is in ``schedules.signals``)."""

from __future__ import annotations

import dagster as dg

from yarn_assets.signals.assets import signal_passes, signals_job


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[signal_passes], jobs=[signals_job])
