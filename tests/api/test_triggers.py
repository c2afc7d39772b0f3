"""Trigger routes submit runs to the Dagster instance (queued for the daemon; nothing runs in the API
process), keep the signal cooldown, and are rate-limited per user."""

from __future__ import annotations

import dagster as dg
import pytest

from tests.api.conftest import NOW


@pytest.fixture(autouse=True)
def _tight_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YARNNN_API_TRIGGER_RATE_LIMIT", "2/minute")


def _only_run(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return run


def test_signal_pass_is_a_queued_run_with_the_cooldown(server, world) -> None:
    from yarn_assets.signals.assets import hour_key

    with server.client("alice") as c:
        r = c.post("/triggers/signals")
        assert r.status_code == 202, r.text
        body = r.json()
        again = c.post("/triggers/signals")
    run = _only_run(world.instance, body["run_id"])
    assert (run.job_name, run.status) == ("signals_job", dg.DagsterRunStatus.QUEUED)  # the daemon launches it
    assert run.tags["dagster/partition"] == body["partition"] == hour_key(NOW)
    assert run.tags["yarnnn/requested_by"] == "api:alice"
    assert run.run_config["ops"]["signal_passes"]["config"]["user_ids"] == ["alice"]
    assert run.remote_job_origin is not None and run.remote_job_origin.location_name == "yarnnn"
    events = {r.event_log_entry.dagster_event.event_type_value
              for r in world.instance.get_records_for_run(run.run_id).records if r.event_log_entry.dagster_event}
    assert "PIPELINE_ENQUEUED" in events and not events & {"PIPELINE_START", "STEP_START", "ASSET_MATERIALIZATION"}
    assert again.status_code == 429 and 250 <= int(again.headers["retry-after"]) <= 300
    assert "try again in" in again.json()["detail"] and "alice" not in again.json()["detail"]


def test_deliverable_run_and_sync_are_queued_runs_and_rate_limited(server, world) -> None:
    did = world.deliverables["alice"]
    with server.client("alice") as c:
        first = c.post(f"/triggers/deliverables/{did}")
        second = c.post(f"/triggers/deliverables/{did}")
        third = c.post(f"/triggers/deliverables/{did}")
        sync = c.post("/triggers/sync/slack")
        no_conn = c.post("/triggers/sync/notion")
    assert (first.status_code, second.status_code) == (202, 202)
    assert third.status_code == 429 and int(third.headers["retry-after"]) >= 1
    run = _only_run(world.instance, first.json()["run_id"])
    assert (run.job_name, run.tags["dagster/partition"], run.status) == ("deliverable_job", did,
                                                                          dg.DagsterRunStatus.QUEUED)
    assert did in world.instance.get_dynamic_partitions("deliverables")
    assert sync.status_code == 202, sync.text
    srun = _only_run(world.instance, sync.json()["run_id"])
    assert srun.job_name == "platform_sync_job"
    assert srun.tags["yarnnn/connections"] == world.connections["alice"]
    assert srun.tags["dagster/partition"] == f"{NOW.date().isoformat()}|slack"
    assert no_conn.status_code == 404
    # nothing executed in the API process: no version beyond the seeded one
    with server.client("alice") as c:
        assert len(c.get(f"/deliverables/{did}/versions").json()["versions"]) == 1
