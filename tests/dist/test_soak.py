"""Soak with faults: N sample users × M simulated days through the graph (chat ingest, ingest per
platform, nightly memory, people, one signal hour per day) on a PostgreSQL Dagster instance with
the Celery executor (two workers on a private Redis broker), while faults are injected:

- SIGKILL of a worker's pool process in the middle of a step (the task goes back to the queue:
  ``task_acks_late`` + ``task_reject_on_worker_lost``; the step runs again on a worker);
- a restart of the broker (redis-server with an append-only file: queued steps survive);
- ``pg_terminate_backend`` of every connection to the Dagster instance's database.

A run that fails is re-executed from its failure (what the instance's run retries do).
Afterwards every table equals the one a fault-free, in-process run of the same plan on a copy of
the same starting state wrote: nothing lost, no duplicate rows (versions, deliveries, events).

CI runs M=1 day of the gmail and calendar partitions (every fault once); benchmarks/soak.py
(``YARNNN_SOAK_DAYS``, ``YARNNN_SOAK_PLATFORMS=all``) is the long run.
"""

import datetime as dt
import os
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from io_managers.delta_store import DeltaStore
from resources.settings import YarnSettings, load_settings
from tests.dist.conftest import REPO
from tests.dist.engines import CeleryWorkers, PrivateRedis
from tests.dist.scenario import seed_users
from tests.dist.snapshot import diff_tables, table_rows
from tests.dist.soak import (
    Faults,
    kill_busy_pool_process,
    plan,
    register_days,
    run_in_process,
    run_plan,
    terminate_pg_backends,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(3600)]


def _days() -> int:
    return int(os.environ.get("YARNNN_SOAK_DAYS", "1"))


def _platforms() -> set[str] | None:
    """CI: two platforms (mail and calendar); the long run (YARNNN_SOAK_PLATFORMS=all): every one."""
    value = os.environ.get("YARNNN_SOAK_PLATFORMS", "gmail,calendar")
    return None if value == "all" else set(value.split(","))


def test_soak_with_faults_equals_a_fault_free_run(pg_instance_home, pg_dagster_db, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    days = [dt.datetime.now(dt.UTC).date() - dt.timedelta(days=n) for n in range(_days(), 0, -1)]
    home = tmp_path / "yarnnn_home"
    with PrivateRedis(tmp_path / "redis") as broker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("YARNNN_")}
        env.update({"YARNNN_HOME": str(home), "YARNNN_EXECUTOR": "celery", "YARNNN_CELERY_BROKER_URL": broker.url})
        for name in ("YARNNN_EXECUTOR", "YARNNN_CELERY_BROKER_URL"):
            monkeypatch.setenv(name, env[name])
        settings = load_settings()
        seed_users(settings, dt.datetime.now(dt.UTC))
        steps = plan(register_days(settings, days, tmp_path / "content"), only=_platforms())

        # the fault-free reference, from a copy of the same starting state
        shutil.copytree(home, tmp_path / "reference_home")
        reference = YarnSettings(home=tmp_path / "reference_home", executor="in_process")
        (tmp_path / "reference_dh").mkdir()
        with dg.instance_for_test(temp_dir=str(tmp_path / "reference_dh")) as instance:
            run_in_process(reference, steps, instance)

        with CeleryWorkers(REPO, {**env, "DAGSTER_HOME": str(pg_instance_home)}, ["w1", "w2"],
                           log_dir=tmp_path / "logs") as workers:
            busy = lambda: workers.step_pids("w1") + workers.step_pids("w2")  # noqa: E731
            faults = Faults([workers.log_path("w1"), workers.log_path("w2")], {
                3: ("sigkill-worker-mid-step", lambda: kill_busy_pool_process(busy)),
                7: ("broker-restart", lambda: broker.restart(down_seconds=2.0)),
                11: ("pg-terminate-backends", lambda: terminate_pg_backends(pg_dagster_db["DAGSTER_PG_DB"])),
            })
            faults.start()
            try:
                outcome = run_plan(steps)
            finally:
                faults.stop()
        assert not faults.errors, faults.errors
        assert faults.fired == ["sigkill-worker-mid-step", "broker-restart", "pg-terminate-backends"]

    expected = table_rows(DeltaStore(reference.resolved_warehouse_root))
    got = table_rows(DeltaStore(settings.resolved_warehouse_root))
    assert not diff_tables(expected, got), diff_tables(expected, got)
    assert expected["silver/platform_content"].height > 0 and expected["gold/memory_facts"].height > 0
    unique = {"silver/activity_log": ["event_id"], "gold/deliverable_versions": ["deliverable_id", "version"]}
    for name, keys in unique.items():
        if name in got and all(k in got[name].columns for k in keys):
            assert got[name].select(keys).is_duplicated().sum() == 0, name  # no duplicate event/version
    print(f"soak: {len(days)} day(s), {len(steps)} planned runs, {outcome.runs} runs, "
          f"re-executed {outcome.retried}, faults {faults.fired}")
    assert isinstance(got["silver/platform_content"], pl.DataFrame)


def test_soak_plan_covers_every_domain(tmp_path: Path) -> None:
    steps = plan({dt.date(2026, 1, 5): {"gmail", "calendar"}})
    assert [j for j, _ in steps] == ["chat_ingest_job", "ingest_job", "ingest_job", "memory_nightly_job",
                                     "people_job", "people_job", "signals_job"]
    assert steps[-1] == ("signals_job", "2026-01-05-23:00|0")
