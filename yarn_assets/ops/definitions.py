"""Ops domain definitions (assets, checks, schedules, sensors of this domain)."""

from __future__ import annotations

import dagster as dg


def definitions() -> dg.Definitions:
    return dg.Definitions()
