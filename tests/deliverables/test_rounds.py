"""Shard rounds: the sensors request one round per user shard, a round run on a real Dagster instance
reports every version as a materialization of its deliverable's partition, and a round re-executed
from failure resumes its versions (one version and one mail per deliverable)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob
from sqlalchemy import select

from control_plane import db
from control_plane.models import DeliverableDelivery, DeliverableVersion
from resources.settings import load_settings
from resources.signal_policy import SignalPolicy
from tests.deliverables.helpers import create, sample_content, seed_silver
from tests.deliverables.test_asset_and_sensors import round_items
from yarn_assets.core.shards import shard_of
from yarn_assets.deliverables import run as deliverable_run
from yarn_assets.deliverables.assets import deliverable_partitions
from yarn_assets.deliverables.report import CHECK_DESTINATION, CHECK_VERSIONS, DELIVERABLE_VERSIONS_KEY
from yarn_assets.deliverables.round_job import ROUND_JOB, SHARD_TAG, round_run_config


def round_job_def() -> dg.JobDefinition:
    from yarn_assets.definitions import build_definitions

    return build_definitions(load_settings()).resolve_job_def(ROUND_JOB)


def round_job_recon() -> ReconstructableJob:
    """The round job for ``execute_job``; Dagster keeps the last loaded definition in a process-wide
    cache keyed by the code pointer, which would hold the previous test's resources (its control plane)."""
    ReconstructableJob.get_definition.cache_clear()  # type: ignore[attr-defined]
    ReconstructableJob.get_repository_definition.cache_clear()  # type: ignore[attr-defined]
    return dg.reconstructable(round_job_def)


def _two_shards() -> int:
    """The smallest shard count that puts alice and bob in different shards."""
    return next(n for n in range(2, 16) if shard_of("alice", n) != shard_of("bob", n))


def _ctx(instance: dg.DagsterInstance, resources: dict, shards: int, cursor: str | None = None):  # type: ignore[no-untyped-def]
    return dg.build_sensor_context(instance=instance, cursor=cursor, resources={
        "control_plane": resources["control_plane"], "signal_policy": SignalPolicy(user_shards=shards)})


def _history(instance: dg.DagsterInstance, did: str) -> list[dg.EventLogRecord]:
    """The partition's materializations, newest first."""
    flt = dg.AssetRecordsFilter(asset_key=DELIVERABLE_VERSIONS_KEY, asset_partitions=[did])
    return list(instance.fetch_materializations(flt, limit=20).records)


def test_due_sensor_one_round_per_shard_stable_keys_and_cursor(workspace, resources) -> None:
    from sensors.deliverables import due_deliverables_sensor

    n = _two_shards()
    now = dt.datetime.now(dt.UTC)
    a1 = create(workspace, "alice", "status_report", now=now - dt.timedelta(days=8))
    a2 = create(workspace, "alice", "custom", now=now - dt.timedelta(days=8))
    b1 = create(workspace, "bob", "status_report", now=now - dt.timedelta(days=8))
    with dg.instance_for_test() as instance:
        first = due_deliverables_sensor(_ctx(instance, resources, n))
        rounds = {r.tags[SHARD_TAG]: r for r in first.run_requests}
        assert set(rounds) == {shard_of("alice", n), shard_of("bob", n)}
        for shard, r in rounds.items():
            ids = {i["deliverable_id"] for i in r.run_config["ops"]["deliverable_round"]["config"]["items"]}
            assert ids == ({a1, a2} if shard == shard_of("alice", n) else {b1})
            assert r.tags["yarnnn/round_size"] == str(len(ids)) and r.tags["yarnnn/round_users"] == "1"
            assert r.job_name == ROUND_JOB and r.tags["dagster/retry_strategy"] == "FROM_FAILURE"
        # the same tick again (a daemon restart re-evaluates from the stored cursor): the same run keys
        again = due_deliverables_sensor(_ctx(instance, resources, n))
        assert sorted(r.run_key for r in again.run_requests) == sorted(r.run_key for r in first.run_requests)
        # the next tick while the rounds are still queued: nothing is requested twice ...
        later = due_deliverables_sensor(_ctx(instance, resources, n, cursor=first.cursor))
        assert not later.run_requests
        # ... and a newly due deliverable of a shard gets a round of its own
        a3 = create(workspace, "alice", "gmail_inbox_brief", now=now - dt.timedelta(days=8))
        newer = due_deliverables_sensor(_ctx(instance, resources, n, cursor=later.cursor))
        assert list(round_items(newer)) == [a3] and newer.run_requests[0].tags[SHARD_TAG] == shard_of("alice", n)


def test_requests_sensor_groups_requests_per_shard_and_never_requests_one_twice(workspace, resources) -> None:
    from sensors.deliverables import deliverable_requests_sensor
    from yarn_assets.deliverables import service

    n = _two_shards()
    a1 = create(workspace, "alice", "status_report")
    b1 = create(workspace, "bob", "custom")
    with db.session_scope(workspace) as s:
        ra = service.request_generation(s, a1, "manual").id
        rb = service.request_generation(s, b1, "signal_trigger", idempotency_key="signal_trigger|b1").id
    with dg.instance_for_test() as instance:
        first = deliverable_requests_sensor(_ctx(instance, resources, n))
        assert len(first.run_requests) == 2
        items = round_items(first)
        assert (items[a1]["request_ids"], items[a1]["trigger"]) == ([ra], "manual")
        assert (items[b1]["request_ids"], items[b1]["trigger"]) == ([rb], "signal")
        assert not deliverable_requests_sensor(_ctx(instance, resources, n, cursor=first.cursor)).run_requests


def test_round_run_reports_each_version_as_its_partitions_materialization(workspace, store) -> None:
    seed_silver(store, sample_content("alice") + sample_content("bob"))
    ids = [create(workspace, "alice", "status_report"), create(workspace, "alice", "gmail_inbox_brief"),
           create(workspace, "bob", "status_report")]
    entries = [{"deliverable_id": did, "trigger": "manual"} for did in ids]
    job = round_job_def()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(deliverable_partitions.name, ids)
        runs = []
        for _ in range(2):  # two rounds: two versions of each deliverable in its partition's history
            result = job.execute_in_process(instance=instance, run_config=round_run_config("0", 1, entries))
            assert result.success
            runs.append(result.run_id)
            assert len(result.get_asset_materialization_events()) == 3
            evaluations = result.get_asset_check_evaluations()
            assert {(e.partition, e.check_name, e.passed) for e in evaluations} == {
                (did, check, True) for did in ids for check in (CHECK_DESTINATION, CHECK_VERSIONS)}
        assert instance.get_materialized_partitions(DELIVERABLE_VERSIONS_KEY) == set(ids)
        for did in ids:
            history = _history(instance, did)
            assert [r.run_id for r in history] == runs[::-1]
            meta = [{k: v.value for k, v in r.asset_materialization.metadata.items()} for r in history]
            assert [(m["deliverable_id"], m["version_number"], m["status"]) for m in meta] == [
                (did, 2, "delivered"), (did, 1, "delivered")]
            assert meta[0]["items_in_prompt"] > 0 and "final_content" not in meta[0]
            assert meta[0]["dagster/partition_row_count"] == 2 and meta[0]["dagster/row_count"] == 6
            assert meta[0]["dagster/table_name"] == "gold/deliverable_versions"
    with db.session_scope(workspace) as s:
        versions = s.execute(select(DeliverableVersion.deliverable_id, DeliverableVersion.version_number,
                                    DeliverableVersion.run_id)).all()
    assert sorted(versions) == sorted((did, v, runs[v - 1]) for did in ids for v in (1, 2))


def test_round_reexecuted_from_failure_resumes_without_duplicate_version_or_mail(
    workspace, store, smtp_server, activity_log_down
) -> None:
    seed_silver(store, sample_content("alice") + sample_content("bob"))
    ids = {create(workspace, "alice", "gmail_inbox_brief",
                  destination={"platform": "email", "target": "alice@northwind.example"}): "alice@northwind.example",
           create(workspace, "bob", "status_report",
                  destination={"platform": "email", "target": "bob@contoso.example"}): "bob@contoso.example"}
    # as the due sensor sends them: scheduled; the first attempt's checkpoint must not make the resume skip
    config = round_run_config("0", 1, [{"deliverable_id": did, "trigger": "schedule"} for did in ids])
    recon = round_job_recon()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(deliverable_partitions.name, list(ids))
        with dg.execute_job(recon, instance=instance, run_config=config, raise_on_error=False) as first:
            assert not first.success  # (the step retried in-run, resuming each time, before failing)
            first_id = first.run_id
        assert len(smtp_server.inbox) <= 2

        activity_log_down["down"] = False
        options = dg.ReexecutionOptions.from_failure(first_id, instance)
        with dg.execute_job(recon, instance=instance, reexecution_options=options, raise_on_error=False) as second:
            assert second.success
            second_id = second.run_id
        for did in ids:
            latest = _history(instance, did)[0]
            meta = latest.asset_materialization.metadata
            assert latest.run_id == second_id
            assert (meta["version_number"].value, meta["delivery_status"].value) == (1, "delivered")

    assert sorted(m.rcpt_tos[0] for m in smtp_server.inbox) == sorted(ids.values())
    with db.session_scope(workspace) as s:
        versions = s.execute(select(DeliverableVersion.deliverable_id, DeliverableVersion.version_number,
                                    DeliverableVersion.status, DeliverableVersion.root_run_id)).all()
        deliveries = s.execute(select(DeliverableDelivery.status, DeliverableDelivery.attempts)).all()
    assert sorted(versions) == sorted((did, 1, "delivered", first_id) for did in ids)
    assert sorted(deliveries) == [("sent", 1), ("sent", 1)]


def test_round_reexecution_reports_a_version_finished_before_the_round_failed_once(
    workspace, store, smtp_server, monkeypatch
) -> None:
    """Alice's deliverable finishes, then Bob's fails the round: the re-execution does not run Alice's
    again, and every version is a materialization of its partition exactly once over the lineage."""
    seed_silver(store, sample_content("alice") + sample_content("bob"))
    ids = {create(workspace, "alice", "gmail_inbox_brief",
                  destination={"platform": "email", "target": "alice@northwind.example"}): "alice@northwind.example",
           create(workspace, "bob", "status_report",
                  destination={"platform": "email", "target": "bob@contoso.example"}): "bob@contoso.example"}
    state = {"down": True}
    real = deliverable_run.DeliverableRun.deliver

    def bob_down(self, row):  # type: ignore[no-untyped-def]
        if state["down"] and self.d.user_id == "bob":  # after Bob's text is stored, before it is sent
            raise RuntimeError("delivery unavailable for bob (injected)")
        return real(self, row)

    monkeypatch.setattr(deliverable_run.DeliverableRun, "deliver", bob_down)
    config = round_run_config("0", 1, [{"deliverable_id": did, "trigger": "schedule"} for did in ids])
    recon = round_job_recon()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(deliverable_partitions.name, list(ids))
        with dg.execute_job(recon, instance=instance, run_config=config, raise_on_error=False) as first:
            assert not first.success
            first_id = first.run_id
        state["down"] = False
        options = dg.ReexecutionOptions.from_failure(first_id, instance)
        with dg.execute_job(recon, instance=instance, reexecution_options=options, raise_on_error=False) as second:
            assert second.success
        for did in ids:
            history = _history(instance, did)
            assert [(r.asset_materialization.metadata["version_number"].value,
                     r.asset_materialization.metadata["delivery_status"].value) for r in history] == [(1, "delivered")]
    assert sorted(m.rcpt_tos[0] for m in smtp_server.inbox) == sorted(ids.values())
    with db.session_scope(workspace) as s:
        versions = s.execute(select(DeliverableVersion.deliverable_id, DeliverableVersion.status)).all()
    assert sorted(versions) == sorted((did, "delivered") for did in ids)
