"""The request budget lives in the control plane, so concurrent runs share it (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time

import pytest

from control_plane import db
from yarn_assets.ingest.budget import RateBudget, rate_for


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'cp.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    db.upgrade(url)
    return db.get_engine(url)


def test_rates_per_method_and_overrides():
    assert rate_for("slack", "conversations.history")[0] == "conversations.history"
    assert rate_for("slack", "chat.unknown")[0] == "*"
    assert rate_for("notion", "search")[0] == "*"  # one budget per Notion integration
    _, rate = rate_for("slack", "users.info", {"slack": 6000})
    assert rate.per_minute == 6000 and rate.burst == 10
    assert rate_for("slack", "users.info", {"slack:users.info": 1, "slack": 6000})[1].per_minute == 1


def test_concurrent_runs_share_one_budget(engine):
    overrides = {"notion": 600}  # one request per 0.1 s, bursts of 3
    budgets = [RateBudget(engine, "notion", "conn-1", overrides) for _ in range(2)]
    stamps: list[float] = []
    lock = threading.Lock()

    def worker(b: RateBudget) -> None:
        for _ in range(6):
            b.acquire("search")
            with lock:
                stamps.append(time.monotonic())

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(b,)) for b in budgets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    assert len(stamps) == 12
    assert elapsed >= (12 - 3) * 0.1 - 0.02, "12 requests at 10/s with a burst of 3 take >= 0.9 s"
    assert elapsed < 5
    # another connection has its own budget: no wait
    t0 = time.monotonic()
    RateBudget(engine, "notion", "conn-2", overrides).acquire("search")
    assert time.monotonic() - t0 < 0.5


def test_retry_after_is_shared(engine):
    a = RateBudget(engine, "slack", "conn-1", {"slack": 60000})
    b = RateBudget(engine, "slack", "conn-1", {"slack": 60000})
    a.acquire("conversations.history")
    a.penalize("conversations.history", 0.6)
    t0 = time.monotonic()
    waited = b.acquire("conversations.history")
    assert waited >= 0.5 and time.monotonic() - t0 >= 0.5
    t0 = time.monotonic()
    b.acquire("users.info")  # other methods keep their own budget
    assert time.monotonic() - t0 < 0.3
