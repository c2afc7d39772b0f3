"""Two imports of the same (day, platform) at once: every job is read once, nothing is re-imported.

Two real ``yarnnn import run`` processes share the control plane (SQLite, and PostgreSQL in CI),
the warehouse and the Dagster instance; a barrier (``tests/fakes/crashpoints``) holds each at its
first claim until both are there, so they really race for the same pending jobs. The winner lands
them; the loser lands nothing (on main it replayed the whole partition) and its silver step merges
only what is not merged yet. A third run once everything is completed writes nothing at all.
"""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from control_plane import db
from control_plane.models import ImportJob, User
from io_managers.delta_store import DeltaStore
from resources.settings import load_settings
from tests.ingest.mailgen import write_mbox
from yarn_assets.core.instance import ensure_instance_dir
from yarn_assets.core.tables import BRONZE_ITEMS, PLATFORM_CONTENT
from yarn_assets.ingest import import_jobs

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes" / "crashpoints"
FILES, PER_FILE = 3, 1500

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _import_run(env: dict[str, str]) -> subprocess.Popen[bytes]:
    cli = Path(sys.executable).with_name("yarnnn")
    return subprocess.Popen([str(cli), "import", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _bronze_materializations(instance: dg.DagsterInstance) -> list[dict[str, object]]:
    records = instance.fetch_materializations(dg.AssetKey(["bronze", "platform_items", "imports"]), limit=100).records
    return [{k: v.value for k, v in r.asset_materialization.metadata.items()}  # type: ignore[union-attr]
            for r in records]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_concurrent_imports_of_one_partition_land_each_job_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "postgres":
        monkeypatch.setenv("YARNNN_CONTROL_PLANE_URL", request.getfixturevalue("pg_url"))
    monkeypatch.setenv("DAGSTER_HOME", str(ensure_instance_dir(tmp_path / "dagster_home")))
    monkeypatch.setenv("YARNNN_EXECUTOR", "in_process")
    settings = load_settings()
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    now = dt.datetime.now(dt.UTC)
    with db.session_scope(url) as s:
        s.add(User(id="alice", email="alice@example.com", tier="pro"))
        s.flush()
        files = [write_mbox(tmp_path / f"part{i}.mbox", PER_FILE, now, tag=f"p{i}") for i in range(FILES)]
        ids = [import_jobs.register_import(s, user_id="alice", path=f, archive_root=settings.resolved_home / "imports")
               [0].id for f in files]
    db.dispose_all()
    with dg.DagsterInstance.get():  # create the instance's storage once (as the daemon would), not in a race
        pass

    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": str(FAKES), "YARNNN_TEST_CLAIM_BARRIER": f"{barrier}:2"}
    procs = [_import_run(env), _import_run(env)]
    outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert len(list(barrier.iterdir())) == 2  # both reached their claims: they raced

    store = DeltaStore(settings.resolved_warehouse_root)
    with db.session_scope(url) as s:
        jobs = {j.id: (j.status, j.attempts, j.run_id) for j in s.query(ImportJob)}
    assert {j: (st, n) for j, (st, n, _) in jobs.items()} == {j: ("completed", 1) for j in ids}  # claimed once each
    bronze = store.read(BRONZE_ITEMS, columns=["batch_id", "seq", "run_id"])
    assert bronze.height == FILES * PER_FILE and bronze.select("batch_id", "seq").n_unique() == bronze.height
    written_by = dict(bronze.group_by("batch_id").agg(pl.col("run_id").unique()).iter_rows())
    assert written_by == {j: [run] for j, (_, _, run) in jobs.items()}  # each batch written by its claimer only
    with dg.DagsterInstance.get() as instance:
        landed = _bronze_materializations(instance)
        assert sorted(m["import_jobs"] for m in landed) == [0, FILES]  # the loser re-read nothing
        assert sorted(m["mode"] for m in landed) == ["new", "nothing_pending"]
    silver = store.read(PLATFORM_CONTENT)
    assert silver.height == FILES * PER_FILE and silver.select("external_id").n_unique() == silver.height

    versions = (store.version(BRONZE_ITEMS), store.version(PLATFORM_CONTENT))
    again = _import_run({**os.environ})  # everything completed: nothing pending, nothing to merge
    out = again.communicate(timeout=300)[0].decode()
    assert again.returncode == 0 and "no pending import jobs" in out, out
    assert (store.version(BRONZE_ITEMS), store.version(PLATFORM_CONTENT)) == versions
