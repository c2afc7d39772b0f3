"""A request budget per (connection, API method), shared by every run and process.

GCRA (the generic cell rate algorithm): each budget key holds one "theoretical arrival time"
(``tat``) in the control plane. A request reserves its slot with a single atomic UPDATE
(``tat = max(tat, now) + interval``) and sleeps until the slot opens, so parallel runs queue
behind each other instead of stampeding the API. A 429 pushes ``tat`` past the provider's
``Retry-After`` so every other run on that key backs off too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import Engine, case, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from control_plane.models import ApiRateBudget


@dataclass(frozen=True)
class Rate:
    """``per_minute`` sustained requests with bursts of ``burst``."""

    per_minute: float
    burst: int = 1

    @property
    def interval(self) -> float:
        return 60.0 / self.per_minute

    @property
    def tolerance(self) -> float:
        return (max(self.burst, 1) - 1) * self.interval


#: A platform that declares no limits (its ``LiveApi.rates``) gets one request per second.
FALLBACK_RATES: dict[str, Rate] = {"*": Rate(60, 1)}


def rate_for(platform: str, method: str, overrides: Mapping[str, float] | None = None) -> tuple[str, Rate]:
    """(budget group, rate): per method where the provider limits per method, else one group."""
    from yarn_assets.ingest.platforms import NAMES, get

    api = get(platform).api if platform in NAMES else None
    table = dict(api.rates) if api is not None else FALLBACK_RATES
    group = method if method in table else "*"
    rate = table[group]
    for key in (f"{platform}:{method}", f"{platform}:*", platform):
        if overrides and key in overrides:
            rate = Rate(float(overrides[key]), rate.burst)
            break
    return group, rate


class RateBudget:
    """Budgets of one connection; ``acquire`` blocks until the method's next slot."""

    def __init__(
        self,
        engine: Engine | None,
        platform: str,
        connection_id: str,
        overrides: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.platform = platform
        self.connection_id = connection_id
        self.overrides = dict(overrides or {})
        self.clock = clock
        self.sleep = sleep
        self.waited_seconds = 0.0
        self._known: set[str] = set()

    def _key(self, group: str) -> str:
        return f"{self.platform}:{self.connection_id}:{group}"

    def _ensure(self, key: str) -> None:
        if key in self._known or self.engine is None:
            return
        table = ApiRateBudget.__table__
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(postgresql.insert(table).values(key=key, tat=0.0).on_conflict_do_nothing())
            elif conn.dialect.name == "sqlite":
                conn.execute(sqlite.insert(table).values(key=key, tat=0.0).on_conflict_do_nothing())
            elif conn.execute(select(table.c.key).where(table.c.key == key)).first() is None:
                conn.execute(insert(table).values(key=key, tat=0.0))
        self._known.add(key)

    def acquire(self, method: str) -> float:
        """Reserve the next slot for ``method`` and wait for it; returns the seconds waited."""
        if self.engine is None:
            return 0.0
        group, rate = rate_for(self.platform, method, self.overrides)
        key = self._key(group)
        self._ensure(key)
        now = self.clock()
        col = ApiRateBudget.tat
        start = case((col > literal(now), col), else_=literal(now))
        with self.engine.begin() as conn:
            new_tat = conn.execute(
                update(ApiRateBudget).where(ApiRateBudget.key == key)
                .values(tat=start + rate.interval).returning(ApiRateBudget.tat)
            ).scalar_one()
        wait = (float(new_tat) - rate.interval - rate.tolerance) - now
        if wait > 0:
            self.sleep(wait)
            self.waited_seconds += wait
            return wait
        return 0.0

    def penalize(self, method: str, retry_after: float) -> None:
        """The provider said "wait ``retry_after`` s": no run may use this budget before then."""
        if self.engine is None:
            return
        group, rate = rate_for(self.platform, method, self.overrides)
        key = self._key(group)
        self._ensure(key)
        until = self.clock() + max(retry_after, 0.0) + rate.tolerance
        col = ApiRateBudget.tat
        with self.engine.begin() as conn:
            conn.execute(
                update(ApiRateBudget).where(ApiRateBudget.key == key)
                .values(tat=case((col > literal(until), col), else_=literal(until)))
            )
