"""Nobody at the keyboard, against a real ``dagster dev`` (daemon, code server, webserver) whose
instance is the product's embedded ``dagster.yaml`` (LocalRunLauncher, run monitoring, run retries):

1. declarative automation runs out of the box: a bronze partition updated outside any run (a
   batch landed by an external writer, reported as a runless materialization) is followed by a
   silver run that ``automation_condition_sensor`` launches, and silver holds the batch;
2. an export dropped into the inbox is imported by ``import_jobs_sensor``; its run worker is
   SIGKILLed mid-merge (``tests/fakes/crashpoints``, once); the code server reports the run
   failed, and the daemon (run retries / ``silver_catchup_sensor``) merges the batch: the job ends
   ``completed`` with every message in silver exactly once.

Every run of the instance must have been launched by a sensor or by the daemon's retry.
"""

import contextlib
import datetime as dt
import os
import shutil
import signal
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from control_plane import db
from control_plane.models import ImportJob, User
from io_managers.delta_store import DeltaStore
from resources.settings import load_settings
from tests.fakes.dagster_dev import DagsterDev
from tests.ingest.mailgen import write_mbox
from yarn_assets.core.instance import INSTANCE_YAML
from yarn_assets.core.partitions import ingest_key
from yarn_assets.core.runs import HOST_TAG
from yarn_assets.core.tables import BRONZE_ITEMS, PLATFORM_CONTENT
from yarn_assets.ingest import batches, bronze
from yarn_assets.ingest.objects import RawObject
from yarn_assets.ingest.sources import BRONZE_SYNCS, SILVER_CONTENT

REPO = Path(__file__).resolve().parents[2]
CRASH = REPO / "tests" / "fakes" / "crashpoints"
MESSAGES = 3000

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

#: the product's instance, with a fast dequeue loop for the test
INSTANCE = INSTANCE_YAML + """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""


def _unattended(run: dg.DagsterRun) -> bool:
    # a schedule tick is unattended too: the hourly cleanup ticks at hh:05 when the test spans it
    return bool({"dagster/sensor_name", "dagster/schedule_name", "dagster/parent_run_id"} & set(run.tags))


def _external_sync_batch(store: DeltaStore, url: str, day: dt.date, now: dt.datetime) -> list[str]:
    """A gmail sync batch landed in bronze by a writer outside Dagster (what a partial sync leaves)."""
    batch = bronze.BatchInfo("alice", "gmail", day, "sync", "gmail_api", "sync-gmail-external-1", now,
                             run_id="external-writer", connection_id="c-ext")
    ids = [f"ext-{i}@example.com" for i in range(5)]
    raws = [RawObject("email_message", f"<{m}>", resource_id="label:INBOX", resource_name="Inbox",
                      raw=f"From: a@example.com\nSubject: ext {i}\nMessage-ID: <{m}>\n\nexternal {i}\n".encode())
            for i, m in enumerate(ids)]
    store.append(BRONZE_ITEMS, bronze.bronze_frame(raws, batch))
    with db.session_scope(url) as s:
        batches.record_landed(s, batch, rows=len(raws))
    return ids


def test_automation_and_crash_recovery_with_nobody_at_the_keyboard(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "yarnnn_home"
    monkeypatch.setenv("YARNNN_HOME", str(home))
    settings = load_settings()
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    with db.session_scope(url) as s:
        s.add(User(id="alice", email="alice@example.com", tier="pro"))
    db.dispose_all()
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    key = ingest_key(today.isoformat(), "gmail")
    store = DeltaStore(settings.resolved_warehouse_root)
    marker = tmp_path / "crash-fired"
    marker.touch()  # the kill point is disarmed until phase 2 (it fires only while the marker is absent)

    server = DagsterDev(
        repo=REPO, dagster_home=tmp_path / "dagster_home", instance_yaml=INSTANCE,
        env={"YARNNN_HOME": str(home), "YARNNN_EXECUTOR": "in_process", "PYTHONPATH": str(CRASH),
             "YARNNN_TEST_CRASH_AT": "merge", "YARNNN_TEST_CRASH_MARKER": str(marker)},
    )
    with server:
        # 1. an upstream update outside any run; the automation sensor (RUNNING by default) follows it
        external = _external_sync_batch(store, url, today, now)
        with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
            instance.report_runless_asset_event(dg.AssetMaterialization(BRONZE_SYNCS, partition=key))
        [followed] = server.wait_for_runs(
            lambda r: r.tags.get("dagster/sensor_name") == "automation_condition_sensor", count=1, timeout=240)
        assert followed.status == dg.DagsterRunStatus.SUCCESS and followed.tags["dagster/partition"] == key
        # silver follows (and, since the people domain, the assets that follow silver in the same partition)
        assert SILVER_CONTENT in followed.asset_selection and BRONZE_SYNCS not in followed.asset_selection
        silver = store.read(PLATFORM_CONTENT)
        assert sorted(silver["external_id"].to_list()) == sorted(f"<{m}>" for m in external)

        # 2. an inbox drop whose run worker is killed mid-merge; the daemon converges alone
        marker.unlink()  # arm the kill point: the next silver merge (the import's) dies, once
        inbox = home / "inbox" / "alice"
        inbox.mkdir(parents=True)
        export = write_mbox(tmp_path / "mail.mbox", MESSAGES, now)
        shutil.copy(export, inbox / ".mail.mbox.partial")
        (inbox / ".mail.mbox.partial").rename(inbox / "mail.mbox")
        [killed] = server.wait_for_runs(lambda r: r.tags.get("yarnnn/trigger") == "import_jobs_sensor",
                                        count=1, timeout=300)
        assert marker.exists() and killed.status == dg.DagsterRunStatus.FAILURE  # it really died mid-merge
        assert killed.tags.get(HOST_TAG)  # launched by LocalRunLauncher, so run monitoring can check its worker
        recovered = server.wait_for_runs(
            lambda r: r.run_id != killed.run_id and r.tags.get("dagster/partition") == key
            and r.run_id != followed.run_id, count=1, timeout=300)
        assert dg.DagsterRunStatus.SUCCESS in {r.status for r in recovered}
        with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
            runs = instance.get_runs()
        manual = [(r.job_name, dict(r.tags)) for r in runs if not _unattended(r)]
        assert not manual, manual

    with db.session_scope(url) as s:
        [job] = s.query(ImportJob).all()
        assert (job.status, job.attempts, job.result["items"]) == ("completed", 1, MESSAGES), (job.status, job.error)
    silver = store.read(PLATFORM_CONTENT)
    assert silver.height == MESSAGES + len(external) and silver.select("external_id").n_unique() == silver.height
    imported = store.read(BRONZE_ITEMS, columns=["batch_id", "seq"]).filter(pl.col("batch_id") == job.id)
    assert imported.height == MESSAGES and imported.n_unique() == MESSAGES
    db.dispose_all()


def test_after_a_host_crash_run_monitoring_fails_the_orphaned_run_and_the_daemon_converges(
    tmp_path: Path, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    """Everything SIGKILLed at once while a run is mid-merge (code server included, so nobody is
    left to notice): the run stays STARTED. On restart, run monitoring (LocalRunLauncher's worker
    health check) marks it failed, and the daemon merges the batch without anyone clicking."""
    home = tmp_path / "yarnnn_home"
    monkeypatch.setenv("YARNNN_HOME", str(home))
    settings = load_settings()
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    with db.session_scope(url) as s:
        s.add(User(id="alice", email="alice@example.com", tier="pro"))
    db.dispose_all()
    key = ingest_key(dt.datetime.now(dt.UTC).date().isoformat(), "gmail")
    marker = tmp_path / "stuck"
    common = {"YARNNN_HOME": str(home), "YARNNN_EXECUTOR": "in_process"}
    first = DagsterDev(repo=REPO, dagster_home=tmp_path / "dagster_home", instance_yaml=INSTANCE,
                       env={**common, "PYTHONPATH": str(CRASH), "YARNNN_TEST_CRASH_AT": "merge",
                            "YARNNN_TEST_CRASH_MODE": "hang", "YARNNN_TEST_CRASH_MARKER": str(marker)})
    with first:
        inbox = home / "inbox" / "alice"
        inbox.mkdir(parents=True)
        write_mbox(inbox / ".mail.mbox.partial", MESSAGES, dt.datetime.now(dt.UTC))
        (inbox / ".mail.mbox.partial").rename(inbox / "mail.mbox")
        deadline = time.monotonic() + 300
        while not marker.exists() and time.monotonic() < deadline:  # the run reached the merge, and hangs there
            time.sleep(0.5)
        assert marker.exists(), first.log_tail()
        for pid in sorted(first.track()):  # the host "crashes": every process at once, no shutdown path
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        [orphan] = instance.get_runs()
        assert orphan.status == dg.DagsterRunStatus.STARTED  # nobody left to say otherwise
    with db.session_scope(url) as s:
        assert s.query(ImportJob).one().status == "landed"

    with DagsterDev(repo=REPO, dagster_home=tmp_path / "dagster_home", instance_yaml=INSTANCE, env=common) as second:
        runs = second.wait_for_runs(lambda r: r.tags.get("dagster/partition") == key, count=2, timeout=400)
        with dg.DagsterInstance.from_config(str(second.dagster_home)) as instance:
            orphan = instance.get_run_by_id(orphan.run_id)
            messages = [f"{e.user_message} {e.dagster_event.message if e.dagster_event else ''}"
                        for e in instance.all_logs(orphan.run_id)]
    assert orphan is not None and orphan.status == dg.DagsterRunStatus.FAILURE
    assert any("run worker process" in m and "is gone" in m for m in messages), messages[-5:]  # run monitoring
    assert dg.DagsterRunStatus.SUCCESS in {r.status for r in runs if r.run_id != orphan.run_id}
    with db.session_scope(url) as s:
        job = s.query(ImportJob).one()
        assert (job.status, job.attempts, job.result["items"]) == ("completed", 1, MESSAGES), (job.status, job.error)
    store = DeltaStore(settings.resolved_warehouse_root)
    assert store.read(PLATFORM_CONTENT).height == MESSAGES
    db.dispose_all()
