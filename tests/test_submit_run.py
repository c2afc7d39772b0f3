"""One way to run things: CLI runs land on the instance the UI reads, through the queue when a daemon serves it."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from tests.fakes.dagster_dev import DagsterDev
from yarn_assets.core.instance import instance_for
from yarn_assets.core.submit import LAUNCHED_BY_TAG, queue_is_served, submit_run
from yarn_assets.signals.assets import hour_key

REPO = Path(__file__).resolve().parents[1]


def test_without_a_daemon_the_run_executes_here_and_is_recorded_under_the_home(settings) -> None:
    with instance_for(settings.resolved_home) as instance:
        assert not queue_is_served(instance)
        run = submit_run("warehouse_checks_job", settings=settings, instance=instance, wait=True)
        assert (run.queued, run.status) == (False, "SUCCESS")
        recorded = instance.get_run_by_id(run.run_id)
        assert recorded is not None and recorded.tags[LAUNCHED_BY_TAG] == "cli-in-process"
        assert recorded.tags["yarnnn/trigger"] == "cli"
    # the CLI's default instance is the one `DAGSTER_HOME=<home>/dagster_home dg dev` shows
    assert (settings.resolved_home / "dagster_home" / "dagster.yaml").exists()
    assert not os.environ.get("DAGSTER_HOME")


@pytest.mark.slow
def test_with_a_daemon_cli_runs_go_through_the_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path(os.environ["YARNNN_HOME"])
    dev = DagsterDev(REPO, tmp_path / "dagster_home", env={"YARNNN_HOME": str(home),
                                                           "YARNNN_EXECUTOR": "in_process"}).start()
    try:
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
        from yarn_assets.cli import main

        key = hour_key(dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
        out = CliRunner().invoke(main, ["signals", "backfill", "--from", key, "--to", key], catch_exceptions=False)
        assert out.exit_code == 0, out.output
        assert f"{key}: ok" in out.output and "queued" in out.output
        with dg.DagsterInstance.get() as instance:
            (run,) = instance.get_runs(dg.RunsFilter(job_name="signals_job"))
            # launched by the daemon from the code location: the UI can show and re-execute it
            assert run.tags[LAUNCHED_BY_TAG] == "queue" and run.tags["dagster/partition"] == key
            assert run.status == dg.DagsterRunStatus.SUCCESS and run.remote_job_origin is not None
    finally:
        dev.stop()
