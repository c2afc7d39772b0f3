"""Version numbers are unique per deliverable under concurrent runs (processes and threads)."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import polars as pl
import pytest

from control_plane import db
from io_managers.predicates import Eq
from tests.deliverables.helpers import NOW, add_user, create, run_resources, sample_content, seed_silver
from yarn_assets.deliverables.run import run_deliverable
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS

WORKERS = 3
PER_WORKER = 6


def _allocate(url: str, deliverable_id: str, worker: int, n: int) -> list[int]:
    """Runs in a spawned process: allocate ``n`` versions, each for its own run lineage."""
    from contextlib import contextmanager

    from control_plane import db as cdb
    from yarn_assets.deliverables.service import allocate_version

    @contextmanager
    def factory():  # type: ignore[no-untyped-def]
        with cdb.session_scope(url) as s:
            yield s

    numbers = []
    for i in range(n):
        v, resumed = allocate_version(factory, deliverable_id=deliverable_id, run_id=f"w{worker}-{i}",
                                      root_run_id=f"w{worker}-{i}", trigger="schedule", strategy="cross_platform")
        assert not resumed
        numbers.append(v.version_number)
    return numbers


def _race(url: str) -> list[int]:
    add_user(url, "alice")
    did = create(url, "alice", "status_report")
    db.dispose_all()
    # ProcessPoolExecutor, not multiprocessing.Pool: Pool.__exit__ terminates its workers and was seen
    # to hang joining one of them; the executor's shutdown waits for workers that exit on their own.
    with ProcessPoolExecutor(WORKERS, mp_context=mp.get_context("spawn")) as pool:
        results = list(pool.map(_allocate, [url] * WORKERS, [did] * WORKERS, range(WORKERS), [PER_WORKER] * WORKERS))
    return sorted(n for r in results for n in r)


def test_concurrent_processes_get_distinct_version_numbers_sqlite(settings) -> None:
    assert _race(settings.resolved_control_plane_url) == list(range(1, WORKERS * PER_WORKER + 1))


@pytest.mark.postgres
def test_concurrent_processes_get_distinct_version_numbers_postgres(pg_url) -> None:
    assert _race(pg_url) == list(range(1, WORKERS * PER_WORKER + 1))


def test_a_lineage_resumes_its_version(settings) -> None:
    url = settings.resolved_control_plane_url
    add_user(url, "alice")
    did = create(url, "alice", "status_report")
    first = _allocate(url, did, 0, 1)
    from contextlib import contextmanager

    from yarn_assets.deliverables.service import allocate_version

    @contextmanager
    def factory():  # type: ignore[no-untyped-def]
        with db.session_scope(url) as s:
            yield s

    v, resumed = allocate_version(factory, deliverable_id=did, run_id="retry", root_run_id="w0-0",
                                  trigger="schedule", strategy="cross_platform")
    assert resumed and v.version_number == first[0] and v.run_id == "retry"


def test_concurrent_runs_of_one_deliverable_store_distinct_versions(workspace, store) -> None:
    seed_silver(store, sample_content("alice"))
    did = create(workspace, "alice", "status_report")
    res = run_resources()
    with ThreadPoolExecutor(3) as pool:
        outs = list(pool.map(lambda i: run_deliverable(res, deliverable_id=did, run_id=f"run-{i}", now=NOW),
                             range(3)))
    assert sorted(o.version_number for o in outs) == [1, 2, 3]
    assert all(o.status == "delivered" for o in outs)
    gold = store.read(DELIVERABLE_VERSIONS, Eq("deliverable_id", did))
    assert gold.height == 3 and gold["version_number"].n_unique() == 3
    assert gold.filter(pl.col("delivery_status") == "delivered").height == 3
    assert len({o.delivery.external_id for o in outs}) == 3  # three outbox files, one per version
