"""A run the API submits is launched by a real daemon (`dagster dev` on loopback) through the code server:
the API process only queues it (``yarn_assets.core.submit.queue_run``)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from resources.settings import load_settings
from tests.api.conftest import ApiServer
from tests.deliverables.helpers import add_user, create, sample_content, seed_silver
from tests.fakes.dagster_dev import DagsterDev

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_a_triggered_deliverable_run_is_launched_by_the_daemon(api_env, tmp_path, monkeypatch) -> None:
    import os

    from io_managers.delta_store import DeltaStore
    from yarn_assets.api.app import create_app

    settings = load_settings()
    store = DeltaStore(settings.resolved_warehouse_root)
    add_user(settings.resolved_control_plane_url, "alice", email="alice@northwind.example")
    seed_silver(store, sample_content("alice"))
    did = create(settings.resolved_control_plane_url, "alice", "status_report", title="Weekly status")
    env = {k: os.environ[k] for k in ("YARNNN_HOME", "YARNNN_ENCRYPTION_KEY")}
    with DagsterDev(repo=REPO, dagster_home=tmp_path / "dagster_home", env=env) as dev, \
            dg.DagsterInstance.from_config(str(dev.dagster_home)) as instance, \
            ApiServer(create_app(settings, instance=instance)) as server, server.client("alice") as c:
        r = c.post(f"/triggers/deliverables/{did}")
        assert r.status_code == 202, r.text
        run_id = r.json()["run_id"]
        [run] = dev.wait_for_runs(lambda x: x.run_id == run_id, 1, timeout=300)
        assert run.status == dg.DagsterRunStatus.SUCCESS, dev.log_tail()
        versions = c.get(f"/deliverables/{did}/versions").json()["versions"]
    assert [(v["version_number"], v["status"], v["delivery_status"]) for v in versions] == [(1, "delivered",
                                                                                             "delivered")]
