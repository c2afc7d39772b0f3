"""Signals domain definitions (assets, checks, schedules, sensors of this domain)."""

from __future__ import annotations

import dagster as dg

from yarn_assets.signals.assets import signal_passes, signals_hourly_schedule, signals_job


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[signal_passes], jobs=[signals_job], schedules=[signals_hourly_schedule])
