"""Signal-processing policy as a resource, so the hourly asset reads configuration, never the environment."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class SignalPolicy(dg.ConfigurableResource):
    """Who gets signal passes and when a pass may skip the model (built from ``YARNNN_SIGNALS_*``)."""

    excluded_tiers: list[str] = Field(default_factory=lambda: ["free"], description="Tiers without signal passes.")
    wake_gate: bool = Field(default=True, description="Skip a pass when nothing changed since the last evaluated one.")
    followup_days: int = Field(default=3, description="An unanswered thread older than this is a follow-up signal.")
    manual_cooldown_seconds: int = Field(default=300, description="Minimum gap between manual triggers of a user.")
    min_items: int = Field(default=3, description="Fewer items than this: no decision pass (as the original).")
    min_confidence: float = Field(default=0.60, description="Actions below this confidence are dropped.")
    user_shards: int = Field(default=1, ge=1, le=256, description="Shards of the hourly partition (hash of user id).")
