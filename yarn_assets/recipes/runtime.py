"""What a step can use while it runs: storage, control plane, LLM, search, delivery, the instance, the clock.

``now`` is the recipe run's clock: the ``now`` input when given, else the creation time of the
*first* run of the lineage, so a re-execution sees the same time as the run it resumes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from io_managers.delta_store import DeltaStore

SessionFactory = Callable[[], AbstractContextManager[Session]]


@dataclass
class Limits:
    max_rows: int = 5000
    max_loop_items: int = 200
    max_wait_minutes: float = 60.0


@dataclass
class StepRuntime:
    store: DeltaStore
    session_factory: SessionFactory
    llm: Any  # resources.llm.LLM
    search: Any  # resources.search.WebSearch
    delivery: Any  # DeliveryChannels
    now: dt.datetime
    recipe_id: str
    step_id: str = ""
    run_id: str = "local"
    root_run_id: str = "local"
    instance: Any = None  # dagster.DagsterInstance (wait_for_asset)
    scope: Any = None  # resources.llm.LLMScope
    log: Any = field(default_factory=lambda: logging.getLogger("yarnnn.recipes"))
    limits: Limits = field(default_factory=Limits)
    retry_number: int = 0

    def for_step(self, step_id: str) -> StepRuntime:
        from dataclasses import replace

        return replace(self, step_id=step_id)


def parse_time(value: Any, what: str = "time") -> dt.datetime:
    """An aware UTC datetime from an ISO string or datetime (naive values are refused)."""
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what} {value!r} is not an ISO date-time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{what} {value!r} has no timezone; recipe times are UTC-aware")
    return parsed.astimezone(dt.UTC)
