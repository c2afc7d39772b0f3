"""Signals domain definitions (assets, checks, schedules, sensors of this domain)."""

from __future__ import annotations

import dagster as dg

from yarn_assets.signals.assets import build_signal_passes, build_signals_job, build_signals_schedule


def definitions() -> dg.Definitions:
    """Built with the ``user_shards`` setting (read here, at definitions load)."""
    from resources.settings import load_settings

    shards = load_settings().user_shards
    job = build_signals_job(shards)
    return dg.Definitions(assets=[build_signal_passes(shards)], jobs=[job],
                          schedules=[build_signals_schedule(shards, job)])
