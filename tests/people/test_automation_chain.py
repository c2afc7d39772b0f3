"""The cascade with nobody pressing anything, on a real `dagster dev`: a mailbox dropped in the inbox is
imported by the sensor (bronze -> silver), then declarative automation materializes the timeline,
contacts and vectors of that partition. (The original's chained jobs sat "queued" until someone
pressed "Process Jobs".)

The automation condition sensor is started over GraphQL when it is not running yet (it ships stopped
on main; issue 11 turns it on by default), exactly as an operator would in the UI; nothing else is
triggered by hand.
"""

import datetime as dt
import shutil
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from control_plane import db
from control_plane.models import User
from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq
from resources.settings import load_settings
from tests.fakes.dagster_dev import DagsterDev
from tests.people.helpers import corpus_variant
from yarn_assets.core.partitions import ingest_key
from yarn_assets.people.tables import CONTACTS, CONTENT_VECTORS, INTERACTIONS

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

_SENSORS = """
query($selector: RepositorySelector!) { repositoryOrError(repositorySelector: $selector) {
  __typename ... on Repository { sensors { name sensorType sensorState { status } } } } }
"""
_START = """
mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
  __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }
"""
PEOPLE_KEYS = [dg.AssetKey(["silver", "interactions"]), dg.AssetKey(["gold", "contacts"]),
               dg.AssetKey(["silver", "content_vectors"])]


def _start_automation(dev: DagsterDev) -> list[str]:
    repo = {"repositoryLocationName": "yarnnn", "repositoryName": "__repository__"}
    sensors = dev.graphql(_SENSORS, {"selector": repo})["repositoryOrError"]["sensors"]
    started = []
    for s in sensors:
        if s["sensorType"] in ("AUTOMATION", "AUTO_MATERIALIZE") and s["sensorState"]["status"] != "RUNNING":
            out = dev.graphql(_START, {"selector": {**repo, "sensorName": s["name"]}})["startSensor"]
            assert out["__typename"] == "Sensor", out
            started.append(s["name"])
    assert any(s["sensorType"] in ("AUTOMATION", "AUTO_MATERIALIZE") for s in sensors), sensors
    return started


def test_an_inbox_import_reaches_contacts_and_vectors_with_no_manual_trigger(tmp_path, corpus) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "yarnnn_home"
    mp = pytest.MonkeyPatch()
    mp.setenv("YARNNN_HOME", str(home))
    try:
        settings = load_settings()
        db.upgrade(settings.resolved_control_plane_url)
        with db.session_scope(settings.resolved_control_plane_url) as s:
            s.add(User(id="alice", email="example@example.com", tier="pro"))
        db.dispose_all()
    finally:
        mp.undo()
    warehouse = Path(settings.resolved_warehouse_root)
    dev = DagsterDev(repo=REPO, dagster_home=tmp_path / "dagster_home",
                     env={"YARNNN_HOME": str(home), "YARNNN_EXECUTOR": "in_process"})
    with dev:
        started = _start_automation(dev)
        inbox = home / "inbox" / "alice"
        inbox.mkdir(parents=True, exist_ok=True)
        staged = corpus_variant(corpus, "flanker__iphone.eml", tmp_path / "stage" / "danielle.eml.partial")
        shutil.move(staged, inbox / "danielle.eml.partial")
        (inbox / "danielle.eml.partial").rename(inbox / "danielle.eml")  # writers drop files atomically
        today = dt.datetime.now(dt.UTC).date().isoformat()
        partition = ingest_key(today, "gmail")

        store = DeltaStore(str(warehouse))
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            dev.track()
            if all(store.exists(spec) for spec in (CONTACTS, CONTENT_VECTORS)) \
                    and store.read(CONTACTS, Eq("user_id", "alice")).height \
                    and store.read(CONTENT_VECTORS, Eq("user_id", "alice")).height:
                break
            time.sleep(2)
        else:
            raise AssertionError(f"the cascade did not reach contacts and vectors (started {started}):\n"
                                 f"{dev.log_tail()}")
        contacts = store.read(CONTACTS, Eq("user_id", "alice"))
        assert contacts["primary_email"].to_list() == ["someone@somewhere.com"]
        assert store.read(INTERACTIONS, Eq("user_id", "alice")).filter(pl.col("participant") != "").height == 1

        with dg.DagsterInstance.from_config(str(dev.dagster_home)) as instance:
            runs = instance.get_runs()
            for key in PEOPLE_KEYS:
                event = instance.get_latest_materialization_event(key)
                assert event is not None and event.dagster_event is not None, key
                assert event.dagster_event.partition == partition
                run = instance.get_run_by_id(event.run_id)
                assert run is not None
                tags = run.tags
                # launched by declarative automation, not by a person or by the ingest sensor
                assert tags.get("dagster/from_automation_condition") or tags.get("dagster/auto_materialize") \
                    or "automation" in tags.get("dagster/sensor_name", ""), tags
            ingest = [r for r in runs if r.tags.get("yarnnn/trigger") == "import_jobs_sensor"]
            assert ingest and all(r.status == dg.DagsterRunStatus.SUCCESS for r in ingest)
            launched_by = ("dagster/sensor_name", "dagster/schedule_name", "dagster/from_automation_condition",
                           "dagster/auto_materialize", "yarnnn/trigger")
            manual = [r for r in runs if not any(r.tags.get(t) for t in launched_by)]
            assert manual == [], [(r.job_name, r.tags) for r in manual]
    assert not dev.alive_pids(), f"dagster dev processes left running: {dev.alive_pids()}"
