"""No two syncs of one connection at once, through the instance's run queue (no lease of our own).

Every sync run syncs one connection and carries ``yarnnn/connection=<id>``; the instance's queue
allows one run in progress per value of that tag. Checked against the embedded instance
configuration and the queued-run daemon's own dequeue decision, and in the production yaml.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.test_utils import create_run_for_test
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from resources.control_plane import ControlPlane
from yarn_assets.core.instance import ensure_instance_dir
from yarn_assets.ingest.sync.requests import TAG_CONNECTION, connection_tags, sync_run_requests

REPO = Path(__file__).resolve().parents[2]


def _dequeued(instance: dg.DagsterInstance) -> set[str]:
    """The queued runs the daemon would launch now (its own decision, nothing launched)."""
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    return {r.run_id for r in daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None)}


ORIGIN = RemoteJobOrigin(RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("yarn_assets"), "__repository__"),
                         "platform_sync_job")


def _run(instance: dg.DagsterInstance, tags: dict[str, str], status: DagsterRunStatus) -> str:
    return create_run_for_test(instance, job_name="platform_sync_job", status=status, tags=tags,
                               remote_job_origin=ORIGIN).run_id


def test_a_second_sync_of_one_connection_waits_in_the_queue(world, tmp_path):
    cp = ControlPlane(url=world.settings.resolved_control_plane_url)
    requests = {r.tags["yarnnn/sync_platform"]: r for r in sync_run_requests(cp, dt.datetime.now(dt.UTC), "test")}
    slack, gmail = requests["slack"].tags, requests["gmail"].tags
    assert slack[TAG_CONNECTION] == world.connections["slack"]
    cli = connection_tags(world.connections["slack"], "slack", "cli")  # `yarnnn connections sync` meanwhile

    instance = dg.DagsterInstance.from_config(str(ensure_instance_dir(tmp_path / "dagster_home")))
    try:
        running = _run(instance, slack, DagsterRunStatus.STARTED)
        second = _run(instance, cli, DagsterRunStatus.QUEUED)
        other = _run(instance, gmail, DagsterRunStatus.QUEUED)
        # the other connection starts; the second sync of the running connection waits
        assert _dequeued(instance) == {other}
        # the first run ends (or its dead worker is failed by run monitoring): the second may start
        instance.report_run_failed(instance.get_run_by_id(running))
        assert second in _dequeued(instance)
    finally:
        instance.dispose()


def test_production_instance_limits_one_run_per_connection():
    config = yaml.safe_load((REPO / "deploy" / "dagster.postgres.yaml").read_text())
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": TAG_CONNECTION, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
