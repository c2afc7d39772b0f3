"""The whole product unattended, against a real `dagster dev` on loopback: a calendar export
dropped into a user's inbox becomes silver content (import sensor), the hourly signal schedule
finds the meeting in it and creates a signal deliverable, the request sensor generates it, and the
version lands in the outbox — with nobody launching anything.

The signal schedule ticks at hh:02, so the server's daemon runs on a shifted wall clock
(``tests/fakes/shifted_clock``): it starts LEAD seconds before the next full hour, the import
lands (in real time) in the hour before it, and the daemon's hh:02 tick processes that hour a few
real minutes later. The run workers keep the test's clock (the real one, or the suite's shifted one,
which the daemon's offset adds to).
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from control_plane import db
from control_plane.models import Deliverable, DeliverableVersion, User
from demo.sample_workspace import USERS, generate_workspace
from io_managers.delta_store import DeltaStore
from resources.settings import load_settings
from tests.fakes.dagster_dev import TEST_INSTANCE_YAML, DagsterDev
from yarn_assets.core.partitions import ingest_key
from yarn_assets.signals.tables import SIGNAL_ACTIONS

REPO = Path(__file__).resolve().parents[2]
CLOCK = REPO / "tests" / "fakes" / "shifted_clock"
LEAD = 150  # seconds of shifted time between server start and the full hour

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def _shift() -> tuple[float, dt.datetime]:
    """Offset (s) that puts the daemon LEAD seconds before the next full hour H, and H.

    The import must land (in real time) before H, in hour H-1; too close to H, wait for the next hour.
    """
    real_now = dt.datetime.now(dt.UTC)
    hour = real_now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    if (hour - real_now).total_seconds() < LEAD + 60:
        time.sleep((hour - real_now).total_seconds() + 5)
        return _shift()
    return (hour - dt.timedelta(seconds=LEAD) - real_now).total_seconds(), hour


def _triggered(run: dg.DagsterRun) -> bool:
    return "dagster/sensor_name" in run.tags or "dagster/schedule_name" in run.tags


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def instance(request, monkeypatch) -> tuple[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    """The instance the server runs on: the embedded SQLite one, or deploy/dagster.postgres.yaml
    (PostgreSQL storage, queued runs, LocalRunLauncher with run monitoring, run retries)."""
    if request.param == "sqlite":
        return TEST_INSTANCE_YAML, {}
    pg = request.getfixturevalue("pg_dagster_db")
    for name, value in pg.items():  # this process reads the same instance
        monkeypatch.setenv(name, value)
    text = (REPO / "deploy" / "dagster.postgres.yaml").read_text()
    assert "dequeue_interval_seconds: 5" in text
    return text.replace("dequeue_interval_seconds: 5", "dequeue_interval_seconds: 1"), pg


def test_inbox_to_outbox_with_no_manual_step(tmp_path, monkeypatch, instance) -> None:  # type: ignore[no-untyped-def]
    instance_yaml, instance_env = instance
    offset, full_hour = _shift()
    import_hour = full_hour - dt.timedelta(hours=1)  # the hour the import lands in (real clock)

    home = tmp_path / "yarnnn_home"
    monkeypatch.setenv("YARNNN_HOME", str(home))
    settings = load_settings()
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    alice = next(u for u in USERS if u.id == "alice")
    with db.session_scope(url) as s:
        s.add(User(id=alice.id, email=alice.email, tier=alice.tier, timezone=alice.timezone))
    db.dispose_all()
    # alice's calendar export: a meeting with two external attendees five hours from now, a weekly
    # series, an offsite...
    workspace = generate_workspace(tmp_path / "exports", now=dt.datetime.now(dt.UTC))
    ics = next(e.path for e in workspace.exports_of("alice") if e.path.suffix == ".ics")
    meeting_uid = workspace.facts["alice"]["calendar"]["external_meeting_uid"]
    inbox = home / "inbox" / "alice"
    inbox.mkdir(parents=True)
    shutil.copy(ics, inbox / ".calendar.ics.partial")
    (inbox / ".calendar.ics.partial").rename(inbox / "calendar.ics")

    server = DagsterDev(
        repo=REPO, dagster_home=tmp_path / "dagster_home", instance_yaml=instance_yaml,
        env={"YARNNN_HOME": str(home), "YARNNN_EXECUTOR": "in_process", "PYTHONPATH": str(CLOCK),
             "TEST_CLOCK_OFFSET_SECONDS": f"{offset:.3f}", **instance_env},
    )
    with server:
        # 1. import sensor -> ingest run for (today, calendar), landed before the full hour
        imports = server.wait_for_runs(lambda r: r.tags.get("yarnnn/trigger") == "import_jobs_sensor",
                                       count=1, timeout=LEAD + 60)
        assert [r.status for r in imports] == [dg.DagsterRunStatus.SUCCESS]
        assert imports[0].tags["dagster/partition"] == ingest_key(import_hour.date().isoformat(), "calendar")
        assert not [p for p in inbox.iterdir() if not p.name.startswith("_")]

        # 2. the hh:02 tick of the signal schedule processes the hour the content landed in
        signal_key = import_hour.strftime("%Y-%m-%d-%H:00") + "|0"  # (hour, user shard); one shard by default
        wait = math.ceil(LEAD + 120 + 240)
        signals = server.wait_for_runs(lambda r: r.job_name == "signals_job", count=1, timeout=wait)
        assert [(r.tags.get("dagster/schedule_name"), r.tags["dagster/partition"], r.status) for r in signals] == [
            ("signals_hourly_schedule", signal_key, dg.DagsterRunStatus.SUCCESS)]

        # 3. the request sensor generates the signal's deliverable at once
        generated = server.wait_for_runs(
            lambda r: r.job_name == "deliverable_round_job" and "signal" in r.tags.get("yarnnn/trigger", "").split(","),
            count=1, timeout=300)
        assert [r.status for r in generated] == [dg.DagsterRunStatus.SUCCESS]

        with dg.DagsterInstance.from_config(str(server.dagster_home)) as dagster_instance:
            runs = dagster_instance.get_runs()
            if instance_env:
                assert type(dagster_instance.run_storage).__name__ == "PostgresRunStorage"
        manual = [(r.job_name, dict(r.tags)) for r in runs if not _triggered(r)]
        assert runs and not manual, manual

    store = DeltaStore(settings.resolved_warehouse_root)
    actions = store.read(SIGNAL_ACTIONS).filter(
        (pl.col("user_id") == "alice") & (pl.col("disposition") == "executed"))
    created = actions.filter(pl.col("action_type") == "create_signal_emergent")
    assert created.height == 1, actions
    assert created.row(0, named=True)["deliverable_type"] == "meeting_prep"
    assert meeting_uid in created.row(0, named=True)["signal_ref"]

    with db.session_scope(url) as s:
        deliverable = s.get(Deliverable, created.row(0, named=True)["deliverable_id"])
        assert deliverable is not None and deliverable.user_id == "alice"
        assert deliverable.origin == "signal_emergent"
        versions = s.query(DeliverableVersion).filter_by(deliverable_id=deliverable.id).all()
        assert [(v.version_number, v.delivery_status) for v in versions] == [(1, "delivered")]
    outbox = sorted((home / "outbox" / "alice" / deliverable.id).glob("v0001-*.md"))
    assert len(outbox) == 1
    text = outbox[0].read_text()
    assert "offline" in text.lower()  # the offline engine labels what it wrote
    assert "partnerco.example" in text or "Dana Lee" in text  # the meeting's external attendees
    db.dispose_all()
