"""Production configuration on PostgreSQL: the Dagster instance from deploy/dagster.postgres.yaml and
the control plane, each in its own PostgreSQL database, land an ingest partition end to end."""

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from control_plane import db
from control_plane.models import ImportJob, User
from io_managers.delta_store import DeltaStore
from resources.settings import load_settings
from yarn_assets.cli import main
from yarn_assets.core.partitions import ingest_key
from yarn_assets.core.pools import POOLS
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.definitions import build_definitions
from yarn_assets.ingest import import_jobs
from yarn_assets.ingest.sources import SILVER_CONTENT

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


def test_ingest_partition_through_a_postgres_instance_and_control_plane(
        pg_url, pg_dagster_db, tmp_path, monkeypatch, corpus) -> None:  # type: ignore[no-untyped-def]
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.postgres.yaml", dagster_home / "dagster.yaml")
    for name, value in pg_dagster_db.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("YARNNN_CONTROL_PLANE_URL", pg_url)
    settings = load_settings()
    day = dt.datetime.now(dt.UTC).date()
    db.upgrade(pg_url)
    with db.session_scope(pg_url) as s:
        s.add(User(id="alice", email="alice@example.com"))
        s.flush()
        job, _ = import_jobs.register_import(s, user_id="alice", path=corpus / "mbox_eml" / "cpython__mailbox_01.mbox",
                                             archive_root=settings.resolved_home / "imports", partition_date=day)
        job_id = job.id

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
        assert not instance.telemetry_enabled
        defs = build_definitions(settings)
        result = defs.resolve_job_def("ingest_job").execute_in_process(
            instance=instance, partition_key=ingest_key(day.isoformat(), "gmail"))
        assert result.success
        records = instance.get_run_records(dg.RunsFilter(job_name="ingest_job"))
        assert [r.dagster_run.run_id for r in records] == [result.run_id]
        latest = instance.get_latest_materialization_event(SILVER_CONTENT)
        assert latest is not None and latest.run_id == result.run_id
        assert instance.get_materialized_partitions(SILVER_CONTENT) == {ingest_key(day.isoformat(), "gmail")}

    with db.session_scope(pg_url) as s:  # the control plane on PostgreSQL recorded the outcome
        landed = s.get(ImportJob, job_id)
        assert landed.status == "completed" and landed.run_id == result.run_id
    assert db.get_engine(pg_url).dialect.name == "postgresql"
    silver = DeltaStore(settings.resolved_warehouse_root).read(PLATFORM_CONTENT)
    assert silver.height >= 1 and set(silver["user_id"]) == {"alice"}

    # pool limits live in the PostgreSQL instance too
    out = CliRunner().invoke(main, ["pools", "apply"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "llm: 4" in out.output
    with dg.DagsterInstance.get() as instance:
        limits = {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}
    assert {name: limits[name] for name in POOLS} == {name: limit for name, (limit, _) in POOLS.items()}
