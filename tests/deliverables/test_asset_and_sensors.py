"""The asset through its job on a real instance (every type offline), and the two trigger sensors."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
from sqlalchemy import select

from control_plane import db
from control_plane.models import Deliverable, DeliverableRunRequest
from resources.settings import load_settings
from tests.deliverables.helpers import NOW, create, sample_content, seed_silver
from yarn_assets.definitions import build_definitions
from yarn_assets.deliverables import service
from yarn_assets.deliverables.assets import TRIGGER_TAG, deliverable_partitions
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS
from yarn_assets.deliverables.types import TYPES


def test_offline_every_type_through_the_job(workspace, store) -> None:
    seed_silver(store, sample_content("alice"))
    ids = {t: create(workspace, "alice", t, type_config={"focus": "search ranking"}) for t in TYPES}
    job = build_definitions(load_settings()).resolve_job_def("deliverable_job")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(deliverable_partitions.name, list(ids.values()))
        for dtype, did in ids.items():
            result = job.execute_in_process(instance=instance, partition_key=did, tags={TRIGGER_TAG: "manual"})
            assert result.success
            mat = result.get_asset_materialization_events()[0].materialization
            md = {k: v.value for k, v in mat.metadata.items()}
            assert md["deliverable_type"] == dtype and md["status"] == "delivered" and md["offline"] is True
            assert md["model"] == "offline-rules" and md["input_tokens"] == 0 and md["cost_usd"] == 0.0
            assert md["items_in_prompt"] > 0 and md["sources_used"]
            names = [s["name"] for s in md["steps"]]
            assert names[:2] == ["context", "gather_platform"] or "plan" in names
            assert names[-1] == "deliver" and md["delivery_status"] == "delivered"
            assert "preview" not in md and md["content_chars"] > 0  # the text stays in the table, not run history
            # the catalog's standard table metadata: one version per deliverable so far, all of them in the table
            assert md["dagster/table_name"] == "gold/deliverable_versions"
            assert md["dagster/partition_row_count"] == 1 and md["dagster/row_count"] == list(ids).index(dtype) + 1
            assert "final_content" in {c.name for c in md["dagster/column_schema"].columns}
            text = store.read(DELIVERABLE_VERSIONS).filter(pl.col("version_id") == md["version_id"])["final_content"][0]
            for section in TYPES[dtype].sections:
                assert f"## {section}" in text, (dtype, section)
            assert "Generated offline by deterministic rules" in text
            checks = result.get_asset_check_evaluations()
            assert {c.check_name: c.passed for c in checks} == {
                "delivered_only_to_configured_destination": True, "version_numbers_unique": True}


def _sensor_ctx(instance: dg.DagsterInstance, resources: dict, cursor: str | None = None) -> dg.SensorEvaluationContext:
    return dg.build_sensor_context(instance=instance, cursor=cursor, resources={
        "control_plane": resources["control_plane"], "signal_policy": resources["signal_policy"]})


def round_items(result: dg.SensorResult) -> dict[str, dict]:
    """deliverable id -> its round entry (trigger, request ids), over every round the tick requested."""
    return {i["deliverable_id"]: i for r in result.run_requests
            for i in r.run_config["ops"]["deliverable_round"]["config"]["items"]}


def test_due_sensor_requests_due_deliverables_and_registers_partitions(workspace, resources) -> None:
    from sensors.deliverables import deliverable_requests_sensor, due_deliverables_sensor

    now = dt.datetime.now(dt.UTC)
    due = create(workspace, "alice", "status_report", now=now - dt.timedelta(days=8))
    later = create(workspace, "alice", "gmail_inbox_brief", now=now)
    paused = create(workspace, "bob", "status_report", now=now - dt.timedelta(days=8))
    requested = create(workspace, "bob", "custom", now=now - dt.timedelta(days=8))
    with db.session_scope(workspace) as s:
        service.set_status(s, paused, "paused", now=now - dt.timedelta(days=8))
        s.get(Deliverable, paused).next_run_at = now - dt.timedelta(days=1)
        req = service.request_generation(s, requested, "signal_trigger", requested_by="signals:test",
                                         idempotency_key="signal_trigger|x")
        assert service.request_generation(s, requested, "manual").id == req.id  # folded into the pending one
        req_id = req.id
        signal = service.create_deliverable(s, user_id="bob", deliverable_type="meeting_prep", title="prep",
                                            origin="signal_emergent", run_now=True, now=now - dt.timedelta(seconds=1))
        signal_id = signal.id
    with dg.instance_for_test() as instance:
        result = due_deliverables_sensor(_sensor_ctx(instance, resources))
        assert len(result.run_requests) == 1 and result.run_requests[0].job_name == "deliverable_round_job"
        assert {k: v["trigger"] for k, v in round_items(result).items()} == {due: "schedule"}
        assert result.run_requests[0].tags[TRIGGER_TAG] == "schedule"
        added = result.dynamic_partitions_requests[0].partition_keys
        assert set(added) == {due, later, paused, requested, signal_id}
        again = due_deliverables_sensor(_sensor_ctx(instance, resources))
        assert again.run_requests[0].run_key == result.run_requests[0].run_key  # one request per due slot

        fast = deliverable_requests_sensor(_sensor_ctx(instance, resources))
        items = round_items(fast)
        assert set(items) == {requested, signal_id}
        assert items[requested]["request_ids"] == [req_id] and items[requested]["trigger"] == "signal"
        assert items[signal_id]["trigger"] == "signal" and items[signal_id]["request_ids"] == []
        assert fast.run_requests[0].tags[TRIGGER_TAG] == "signal"


def test_a_run_closes_its_request_and_advances_the_schedule(workspace, store, resources) -> None:
    from tests.deliverables.helpers import run_resources
    from yarn_assets.deliverables.run import run_deliverable

    seed_silver(store, sample_content("alice"))
    did = create(workspace, "alice", "status_report", schedule={"frequency": "daily", "time": "09:00"},
                 now=NOW - dt.timedelta(days=1))
    with db.session_scope(workspace) as s:
        service.request_generation(s, did, "manual")
    out = run_deliverable(run_resources(), deliverable_id=did, run_id="r1", trigger="manual", now=NOW)
    assert out.status == "delivered"
    paris_nine = dt.datetime.combine(NOW.date() + dt.timedelta(days=1), dt.time(9), ZoneInfo("Europe/Paris"))
    assert out.next_run_at == paris_nine.astimezone(dt.UTC)  # NOW is 12:00 UTC, past 09:00 in Paris
    with db.session_scope(workspace) as s:
        req = s.scalars(select(DeliverableRunRequest)).one()
        assert (req.status, req.run_id) == ("completed", "r1")
        assert req.launched_at is not None and req.completed_at is not None


def test_missing_smtp_host_fails_the_run_naming_the_variable_without_retries(workspace, store) -> None:
    seed_silver(store, sample_content("alice"))
    did = create(workspace, "alice", "gmail_inbox_brief",
                 destination={"platform": "email", "target": "alice@northwind.example"})
    job = build_definitions(load_settings()).resolve_job_def("deliverable_job")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(deliverable_partitions.name, [did])
        result = job.execute_in_process(instance=instance, partition_key=did, raise_on_error=False)
        assert not result.success
        assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert "YARNNN_SMTP_HOST" in str(failure.event_specific_data)
    from control_plane.models import DeliverableVersion

    with db.session_scope(workspace) as s:
        v = s.scalars(select(DeliverableVersion)).one()
        assert (v.status, v.delivery_status) == ("failed", "failed")
        assert "YARNNN_SMTP_HOST" in (v.delivery_error or "")


def test_signal_created_and_triggered_deliverables(workspace, store, resources) -> None:
    """As the signals domain writes them: a signal-emergent deliverable with a request row runs once at
    once and has no recurrence afterwards; a triggered existing one runs forced (never skipped)."""
    from sensors.deliverables import deliverable_requests_sensor, due_deliverables_sensor
    from tests.deliverables.helpers import run_resources
    from yarn_assets.deliverables.run import run_deliverable

    seed_silver(store, sample_content("alice"))
    now = dt.datetime.now(dt.UTC)
    with db.session_scope(workspace) as s:
        d = Deliverable(user_id="alice", title="Prep: roadmap review", deliverable_type="meeting_prep",
                        status="active", origin="signal_emergent", trigger_type="manual", schedule={},
                        destination={}, recipient_context={}, sources=[], type_config={}, next_run_at=now,
                        last_triggered_at=now)
        s.add(d)
        s.flush()
        emergent = d.id
        s.add(DeliverableRunRequest(user_id="alice", deliverable_id=emergent, reason="signal_emergent",
                                    requested_by="signals:test", idempotency_key=f"signal_emergent|{emergent}"))
    existing = create(workspace, "alice", "status_report", now=now - dt.timedelta(days=1))
    with dg.instance_for_test() as instance:
        fast = deliverable_requests_sensor(_sensor_ctx(instance, resources))
        assert {k: v["trigger"] for k, v in round_items(fast).items()} == {emergent: "signal"}
        assert emergent not in round_items(due_deliverables_sensor(_sensor_ctx(instance, resources)))
    out = run_deliverable(run_resources(), deliverable_id=emergent, run_id="r1", trigger="signal", now=now)
    assert out.status == "delivered" and out.next_run_at is None
    with db.session_scope(workspace) as s:
        assert s.scalars(select(DeliverableRunRequest)).one().status == "completed"
        # trigger_existing as signals does it: next_run_at = last_triggered_at = now
        ex = s.get(Deliverable, existing)
        ex.last_run_at = now + dt.timedelta(minutes=1)  # nothing fetched since: a scheduled run would skip
        ex.next_run_at = ex.last_triggered_at = now
    with dg.instance_for_test() as instance:
        due = due_deliverables_sensor(_sensor_ctx(instance, resources))
        assert {k: v["trigger"] for k, v in round_items(due).items()} == {existing: "signal"}
