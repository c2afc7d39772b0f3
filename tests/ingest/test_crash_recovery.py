"""kill -9 at any point of an import, then nothing lost, nothing duplicated, and no human needed.

A real ``yarnnn import run`` subprocess imports a generated mbox and is SIGKILLed at a named point
(``tests/fakes/crashpoints``: mid-read, right after the bronze commit, mid-merge, right after the
merge commit, right after the activity events). Then what the daemon does runs against the same
real Dagster instance (SQLite, the product's embedded ``dagster.yaml``): one run-monitoring pass
(the dead run is marked failed from its worker's health), then ticks of ``import_jobs_sensor``
and ``silver_catchup_sensor`` whose run requests are executed as the daemon would launch them,
until both have nothing to do. Silver must then equal a clean import's silver (same keys, same
hashes), bronze must hold the batch exactly once, and the job must be ``completed``.
"""

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from control_plane import db
from control_plane.models import BronzeBatch, ImportJob, User
from io_managers.delta_store import DeltaStore
from resources.registry import build_resources
from resources.settings import YarnSettings, load_settings
from sensors.ingest import import_jobs_sensor, silver_catchup_sensor
from tests.ingest.mailgen import write_mbox
from yarn_assets.core.activity_log import read_events
from yarn_assets.core.instance import ensure_instance_dir
from yarn_assets.core.runs import host_tags
from yarn_assets.core.tables import BRONZE_ITEMS, PLATFORM_CONTENT
from yarn_assets.definitions import build_definitions
from yarn_assets.ingest import import_jobs

REPO = Path(__file__).resolve().parents[2]
CRASH = REPO / "tests" / "fakes" / "crashpoints"
MESSAGES = 10_000
KEYS = ["user_id", "platform", "resource_id", "external_id", "content_hash"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mbox(tmp_path_factory.mktemp("export") / "mail.mbox", MESSAGES, dt.datetime.now(dt.UTC))


def _register(settings: YarnSettings, path: Path) -> str:
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    with db.session_scope(url) as s:
        if s.get(User, "alice") is None:
            s.add(User(id="alice", email="alice@example.com", tier="pro"))
        s.flush()
        job, _ = import_jobs.register_import(s, user_id="alice", path=path,
                                             archive_root=settings.resolved_home / "imports")
        return job.id


def _silver(settings: YarnSettings) -> pl.DataFrame:
    return DeltaStore(settings.resolved_warehouse_root).read(PLATFORM_CONTENT).select(KEYS).sort(KEYS)


@pytest.fixture(scope="module")
def clean_silver(export: Path, tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The same import, never interrupted, in a home of its own."""
    home = tmp_path_factory.mktemp("clean")
    settings = load_settings(home=home, executor="in_process")
    _register(settings, export)
    result = build_definitions(settings).resolve_job_def("ingest_job").execute_in_process(
        partition_key=_partition(), instance=dg.DagsterInstance.ephemeral())
    assert result.success
    silver = _silver(settings)
    assert silver.height == MESSAGES
    db.dispose_all()
    return silver


def _partition() -> str:
    return f"{dt.datetime.now(dt.UTC).date().isoformat()}|gmail"


@pytest.fixture
def crash_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    dagster_home = ensure_instance_dir(tmp_path / "dagster_home")  # the product's embedded instance
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("YARNNN_EXECUTOR", "in_process")  # the run is this one process: kill -9 ends it all
    return dict(os.environ)


def _import_run_killed_at(point: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    cli = Path(sys.executable).with_name("yarnnn")
    proc = subprocess.run([str(cli), "import", "run"], env={**env, "PYTHONPATH": str(CRASH),
                                                             "YARNNN_TEST_CRASH_AT": point},
                          capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout.decode()[-2000:],
                                                proc.stderr.decode()[-2000:])
    return proc


def _daemon_ticks(settings: YarnSettings, instance: dg.DagsterInstance) -> list[str]:
    """What the daemon would do: run monitoring once, then sensor ticks and their runs until quiet."""
    for record in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        monitor_started_run(instance, None, record, logging.getLogger("run_monitoring"))  # type: ignore[arg-type]
    res = build_resources(settings)
    job = build_definitions(settings).resolve_job_def("ingest_job")
    launched: list[str] = []
    for _ in range(6):
        requests = []
        for sensor in (import_jobs_sensor, silver_catchup_sensor):
            ctx = dg.build_sensor_context(instance=instance, resources={"control_plane": res["control_plane"],
                                                                        "runtime": res["runtime"],
                                                                        "input_limits": res["input_limits"]})
            requests += sensor(ctx).run_requests or []
        if not requests:
            return launched
        for r in requests:
            result = job.execute_in_process(instance=instance, partition_key=r.partition_key,
                                            asset_selection=r.asset_selection, tags={**r.tags, **host_tags()})
            assert result.success
            launched.append(r.tags["yarnnn/trigger"])
    raise AssertionError(f"the sensors never settled: {launched}")


def _assert_converged(settings: YarnSettings, job_id: str, clean: pl.DataFrame) -> ImportJob:
    assert _silver(settings).equals(clean)
    store = DeltaStore(settings.resolved_warehouse_root)
    bronze = store.read(BRONZE_ITEMS, columns=["batch_id", "seq"])
    assert bronze["batch_id"].unique().to_list() == [job_id]
    assert bronze.height == MESSAGES and bronze.n_unique() == MESSAGES  # no duplicate (batch, seq)
    events = read_events(store, user_ids=["alice"])
    assert events.filter(pl.col("event_type") == "import_completed").height == 1
    with db.session_scope(settings.resolved_control_plane_url) as s:
        job = s.get(ImportJob, job_id)
        assert job is not None
        s.expunge(job)
        assert {b.status for b in s.query(BronzeBatch)} == {"merged"}
    assert job.status == "completed" and job.result["items"] == MESSAGES, (job.status, job.error, job.result)
    return job


#: (kill point, job status the kill leaves, claims the job needs in all, sensor that recovers it)
POINTS = [
    ("read", "processing", 2, "import_jobs_sensor"),
    ("bronze_commit", "processing", 2, "import_jobs_sensor"),
    ("merge", "landed", 1, "silver_catchup_sensor"),
    ("merge_commit", "landed", 1, "silver_catchup_sensor"),
    ("events", "landed", 1, "silver_catchup_sensor"),
]


@pytest.mark.parametrize(("point", "left", "claims", "recovered_by"), POINTS, ids=[p[0] for p in POINTS])
def test_sigkill_then_the_daemon_converges_to_a_clean_import(
    point: str, left: str, claims: int, recovered_by: str, export: Path, clean_silver: pl.DataFrame,
    crash_env: dict[str, str],
) -> None:
    settings = load_settings()
    job_id = _register(settings, export)
    _import_run_killed_at(point, crash_env)

    with db.session_scope(settings.resolved_control_plane_url) as s:
        job = s.get(ImportJob, job_id)
        assert job is not None and job.status == left, (point, job.status)
    store = DeltaStore(settings.resolved_warehouse_root)
    in_bronze = store.read(BRONZE_ITEMS, columns=["batch_id"]).height if store.exists(BRONZE_ITEMS) else 0
    assert in_bronze == (0 if point == "read" else MESSAGES)
    if point != "merge_commit" and point != "events":
        assert not store.exists(PLATFORM_CONTENT) or store.read(PLATFORM_CONTENT).is_empty()

    with dg.DagsterInstance.get() as instance:
        [dead] = instance.get_runs()
        assert dead.status == dg.DagsterRunStatus.STARTED  # what kill -9 leaves behind
        launched = _daemon_ticks(settings, instance)
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE  # run monitoring
    assert launched == [recovered_by]  # one run, by the sensor that owns this kind of leftover
    job = _assert_converged(settings, job_id, clean_silver)
    assert job.attempts == claims


def test_sigkill_mid_merge_then_import_run_alone_converges(export: Path, clean_silver: pl.DataFrame,
                                                           crash_env: dict[str, str]) -> None:
    """No daemon at all: the operator's next `yarnnn import run` finds the dead run's leftovers."""
    from yarn_assets.cli import main

    settings = load_settings()
    job_id = _register(settings, export)
    _import_run_killed_at("merge", crash_env)
    out = CliRunner().invoke(main, ["import", "run"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "silver catch-up: ok" in out.output and "completed" in out.output
    _assert_converged(settings, job_id, clean_silver)


def test_a_job_whose_runs_keep_dying_fails_with_the_reason(export: Path, crash_env: dict[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The attempt cap: every run dies mid-read, so after YARNNN_IMPORT_MAX_ATTEMPTS claims the job
    is failed with the reason, and nobody launches it again."""
    settings = load_settings(import_max_attempts=2)
    env = {**crash_env, "YARNNN_IMPORT_MAX_ATTEMPTS": "2"}
    job_id = _register(settings, export)
    _import_run_killed_at("read", env)
    _import_run_killed_at("read", env)  # the second `import run` resets the dead claim, then dies too
    from yarn_assets.cli import main

    monkeypatch.setenv("YARNNN_IMPORT_MAX_ATTEMPTS", "2")
    out = CliRunner().invoke(main, ["import", "run"], catch_exceptions=False)
    assert "failed after its last attempt" in out.output and "no pending import jobs" in out.output
    with db.session_scope(settings.resolved_control_plane_url) as s:
        job = s.get(ImportJob, job_id)
        assert job is not None and job.status == "failed" and job.attempts == 2
        assert "gave up after 2 attempts" in (job.error or "") and "run worker process" in (job.error or "")
