"""Against a real `dagster dev` on loopback (one start for the module): `dagster job backfill` over the
partitioned ingest job and `yarnnn backfill` (a true asset backfill over GraphQL) both run through
the daemon and rebuild exactly the silver table that one-by-one materialization produced."""

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from control_plane import db
from control_plane.models import User
from io_managers.delta_store import DeltaStore
from resources.settings import load_settings
from tests.fakes.dagster_dev import DagsterDev
from yarn_assets.cli import main
from yarn_assets.core.partitions import ingest_key
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.definitions import build_definitions
from yarn_assets.ingest import import_jobs

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAYS = [(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=d)).isoformat() for d in (2, 1)]
KEYS = [ingest_key(day, "gmail") for day in DAYS]
FILES = {DAYS[0]: ["flanker__iphone.eml", "cpython__mailbox_01.mbox"],
         DAYS[1]: ["flanker__bilingual-simple.eml", "flanker__enclosed.eml"]}


def _silver(store: DeltaStore) -> pl.DataFrame:
    """Silver rows of the backfilled ingest days (a sensor may land other days meanwhile)."""
    rows = store.read(PLATFORM_CONTENT).filter(pl.col("ingest_date").is_in([dt.date.fromisoformat(d) for d in DAYS]))
    return rows.sort("user_id", "platform", "resource_id", "external_id")


@pytest.fixture(scope="module")
def dev(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A yarnnn home with two ingest partitions landed one by one (the reference silver), then
    `dagster dev` started on it."""
    from tests.conftest import CORPUS

    root = tmp_path_factory.mktemp("dev")
    home = root / "yarnnn_home"
    mp = pytest.MonkeyPatch()
    mp.setenv("YARNNN_HOME", str(home))
    try:
        settings = load_settings()
        url = settings.resolved_control_plane_url
        db.upgrade(url)
        with db.session_scope(url) as s:
            s.add(User(id="alice", email="alice@example.com", tier="pro"))
            s.flush()
            for day, names in FILES.items():
                for name in names:
                    import_jobs.register_import(s, user_id="alice", path=CORPUS / "mbox_eml" / name,
                                                archive_root=home / "imports",
                                                partition_date=dt.date.fromisoformat(day))
        job = build_definitions(settings).resolve_job_def("ingest_job")
        with dg.DagsterInstance.ephemeral() as instance:
            for key in KEYS:
                assert job.execute_in_process(instance=instance, partition_key=key).success
        reference = _silver(DeltaStore(settings.resolved_warehouse_root))
        db.dispose_all()
    finally:
        mp.undo()
    assert reference.height >= 4 and reference["created_day"].n_unique() >= 2
    server = DagsterDev(repo=REPO, dagster_home=root / "dagster_home",
                       env={"YARNNN_HOME": str(home), "YARNNN_EXECUTOR": "in_process"})
    server.reference = reference  # type: ignore[attr-defined]
    server.warehouse = Path(settings.resolved_warehouse_root)  # type: ignore[attr-defined]
    with server:
        yield server
    assert not server.alive_pids(), f"dagster dev processes left running: {server.alive_pids()}"


def _wipe_warehouse(dev: DagsterDev) -> None:
    shutil.rmtree(dev.warehouse, ignore_errors=True)  # type: ignore[attr-defined]


def test_dagster_job_backfill_runs_through_the_daemon_and_rebuilds_silver(dev) -> None:  # type: ignore[no-untyped-def]
    _wipe_warehouse(dev)
    out = subprocess.run(
        [sys.executable, "-m", "dagster", "job", "backfill", "-w", "workspace.yaml", "-j", "ingest_job",
         "--partitions", ",".join(KEYS), "--noprompt", "--tags", '{"yarnnn/trigger": "test"}'],
        cwd=REPO, env=dev.cli_env(), capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    match = re.search(r"Launched backfill job `(\w+)`", out.stdout)
    assert match, out.stdout[-2000:]
    backfill_id = match.group(1)
    runs = dev.wait_for_runs(lambda r: r.tags.get("dagster/backfill") == backfill_id, count=len(KEYS))
    assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(KEYS)
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [r.status for r in runs]
    assert _silver(DeltaStore(str(dev.warehouse))).equals(dev.reference)  # type: ignore[attr-defined]


def test_yarnnn_backfill_launches_an_asset_backfill_over_graphql(dev, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _wipe_warehouse(dev)
    monkeypatch.setenv("YARNNN_HOME", dev.env["YARNNN_HOME"])
    out = CliRunner().invoke(main, [
        "backfill", "--url", dev.url, "--select", "bronze/platform_items/imports,silver/platform_content",
        "--dates", f"{DAYS[0]}..{DAYS[1]}", "--platforms", "gmail", "--title", "test asset backfill",
        "--wait", "--poll", "2", "--timeout", "600",
    ], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    backfill_id = out.output.split("launched asset backfill ")[1].split(":")[0]
    assert f"backfill {backfill_id} COMPLETED_SUCCESS" in out.output
    with dg.DagsterInstance.from_config(str(dev.dagster_home)) as instance:
        backfill = instance.get_backfill(backfill_id)
        assert backfill.is_asset_backfill and backfill.title == "test asset backfill"
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    assert {r.tags["dagster/partition"] for r in runs} == set(KEYS)
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert all(r.tags.get("yarnnn/trigger") == "cli_backfill" for r in runs)
    assert _silver(DeltaStore(str(dev.warehouse))).equals(dev.reference)  # type: ignore[attr-defined]


def test_yarnnn_backfill_reports_refusals_clearly(dev) -> None:  # type: ignore[no-untyped-def]
    out = CliRunner().invoke(main, ["backfill", "--url", dev.url, "--select", "silver/platform_content",
                                    "-p", "not-a-partition"])
    assert out.exit_code == 1 and "backfill refused" in out.output
    out = CliRunner().invoke(main, ["backfill", "--url", "http://127.0.0.1:9", "--select", "silver/platform_content",
                                    "-p", KEYS[0]])
    assert out.exit_code == 1 and "cannot reach the Dagster webserver" in out.output


def test_inbox_file_lands_in_silver_with_no_manual_step(dev, corpus) -> None:  # type: ignore[no-untyped-def]
    """A file dropped in the inbox is registered and landed by the running sensor; the daemons that
    replace the original's heartbeat are healthy (as `yarnnn status` reports them)."""
    inbox = Path(dev.env["YARNNN_HOME"]) / "inbox" / "alice"
    inbox.mkdir(parents=True, exist_ok=True)
    shutil.copy(corpus / "mbox_eml" / "flanker__torture-part.eml", inbox / "torture.eml.partial")
    (inbox / "torture.eml.partial").rename(inbox / "torture.eml")  # writers drop files atomically
    today = dt.datetime.now(dt.UTC).date().isoformat()
    runs = dev.wait_for_runs(lambda r: r.tags.get("yarnnn/trigger") == "import_jobs_sensor", count=1, timeout=240)
    assert runs[0].status == dg.DagsterRunStatus.SUCCESS
    assert runs[0].tags["dagster/partition"] == ingest_key(today, "gmail")
    silver = DeltaStore(str(dev.warehouse)).read(PLATFORM_CONTENT)  # type: ignore[attr-defined]
    assert silver.filter(pl.col("ingest_date") == dt.date.fromisoformat(today)).height >= 1
    assert not list(inbox.iterdir())

    out = subprocess.run([str(Path(sys.executable).parent / "yarnnn"), "status", "--json"], cwd=REPO,
                         env=dev.cli_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    status = json.loads(out.stdout)
    assert status["daemons"] and all(d["healthy"] for d in status["daemons"]), status["daemons"]
    assert status["users"]["alice"]["imports"]["by_status"] == {"completed": 5}
