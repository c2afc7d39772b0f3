"""What an hour of signal passes produced: one :class:`PassResult` per (user, pass), gathered in
an :class:`HourResult` that renders the gold rows and events and the run's counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from resources.llm import LLMUsage
from yarn_assets.core.activity_log import ActivityEvent
from yarn_assets.signals.tables import SIGNAL_ACTIONS, SIGNAL_SUMMARIES


@dataclass
class PassResult:
    user_id: str
    pass_name: str
    status: str  # evaluated | skipped | failed
    summary_row: dict[str, Any]
    action_rows: list[dict[str, Any]] = field(default_factory=list)
    event: ActivityEvent | None = None
    usage: LLMUsage = field(default_factory=LLMUsage)
    skip_reason: str | None = None
    error: str | None = None
    transient: bool = False
    replayed: int = 0


@dataclass
class HourResult:
    passes: list[PassResult] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    ignored_users: list[str] = field(default_factory=list)

    @property
    def usage(self) -> LLMUsage:
        total = LLMUsage()
        for p in self.passes:
            total = total + p.usage
        return total

    def summary_frame(self) -> pl.DataFrame:
        rows = [p.summary_row for p in self.passes]
        return pl.DataFrame(rows, schema=dict(SIGNAL_SUMMARIES.schema)) if rows else SIGNAL_SUMMARIES.empty()

    def action_frame(self) -> pl.DataFrame:
        rows = [r for p in self.passes for r in p.action_rows]
        return pl.DataFrame(rows, schema=dict(SIGNAL_ACTIONS.schema)) if rows else SIGNAL_ACTIONS.empty()

    def events(self) -> list[ActivityEvent]:
        return [p.event for p in self.passes if p.event is not None]

    def count(self, status: str, reason: str | None = None) -> int:
        return sum(1 for p in self.passes if p.status == status and (reason is None or p.skip_reason == reason))

    @property
    def failed(self) -> list[PassResult]:
        return [p for p in self.passes if p.status == "failed"]

    @property
    def should_retry(self) -> bool:
        """Every decision that was attempted failed transiently (an API outage): worth a retry of the hour."""
        attempted = [p for p in self.passes if p.status in ("evaluated", "failed")]
        return bool(attempted) and all(p.status == "failed" and p.transient for p in attempted)


# ------------------------------------------------------------------------------------------ one pass
