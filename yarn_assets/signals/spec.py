"""What an hour of signal passes runs with: its window (:class:`HourSpec`) and its policy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from yarn_assets.signals.actions import MIN_CONFIDENCE


@dataclass(frozen=True)
class Policy:
    excluded_tiers: tuple[str, ...] = ("free",)
    wake_gate: bool = True
    followup_days: int = 3
    min_items: int = 3
    min_confidence: float = MIN_CONFIDENCE


@dataclass(frozen=True)
class HourSpec:
    partition_key: str
    hour_start: dt.datetime
    as_of: dt.datetime
    now: dt.datetime
    trigger: str = "schedule"  # schedule | manual

    @classmethod
    def for_window(cls, partition_key: str, start: dt.datetime, end: dt.datetime, now: dt.datetime,
                   trigger: str = "schedule") -> HourSpec:
        """``as_of`` is the hour's end, or now while the hour is still running."""
        return cls(partition_key, start, min(end, now), now, trigger)
