"""Signals domain definitions: the hourly passes asset and its job (its schedule is in ``schedules.signals``)."""

from __future__ import annotations

import dagster as dg

from yarn_assets.signals.assets import build_signal_passes, build_signals_job


def definitions() -> dg.Definitions:
    """Built with the ``user_shards`` setting (read here, at definitions load)."""
    from resources.settings import load_settings

    shards = load_settings().user_shards
    return dg.Definitions(assets=[build_signal_passes(shards)], jobs=[build_signals_job(shards)])
