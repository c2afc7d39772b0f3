"""A run that fails after generating (and sending) is retried in-step and then re-executed from failure
on a real Dagster instance: the same version is resumed and exactly one mail is sent.

The failure is injected by making the activity-log write (the step after delivery) raise; everything
else is real: the Dagster instance, the job, Delta tables, the control plane and an SMTP server.
"""

from __future__ import annotations

import dagster as dg
from sqlalchemy import select

from control_plane import db
from control_plane.models import DeliverableDelivery, DeliverableVersion
from tests.deliverables.helpers import create, sample_content, seed_silver
from yarn_assets.core.tables import ACTIVITY_LOG
from yarn_assets.deliverables.assets import TRIGGER_TAG, deliverable_partitions


def deliverable_job_def() -> dg.JobDefinition:
    from resources.settings import load_settings
    from yarn_assets.definitions import build_definitions

    return build_definitions(load_settings()).resolve_job_def("deliverable_job")


def test_reexecution_from_failure_after_generation_sends_exactly_one_mail(
    workspace, store, smtp_server, activity_log_down
) -> None:
    seed_silver(store, sample_content("alice"))
    did = create(workspace, "alice", "gmail_inbox_brief",
                 destination={"platform": "email", "target": "alice@northwind.example"})
    recon = dg.reconstructable(deliverable_job_def)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(deliverable_partitions.name, [did])
        tags = {"dagster/partition": did, TRIGGER_TAG: "manual"}
        with dg.execute_job(recon, instance=instance, tags=tags, raise_on_error=False) as first:
            assert not first.success
            retries = [e for e in first.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
            first_id = first.run_id
        assert len(retries) == 2  # the step retried in-run, resuming the stored version each time
        assert len(smtp_server.inbox) == 1

        activity_log_down["down"] = False
        options = dg.ReexecutionOptions.from_failure(first_id, instance)
        # as the UI and the run-retry daemon do, the re-execution carries the parent's tags (partition, trigger)
        with dg.execute_job(recon, instance=instance, reexecution_options=options, tags=tags,
                            raise_on_error=False) as second:
            assert second.success
            mats = second.get_asset_materialization_events()
            assert len(mats) == 1
            md = mats[0].materialization.metadata
            assert md["version_number"].value == 1 and md["resumed"].value is True
            assert md["delivery_status"].value == "delivered"
            run = instance.get_run_by_id(second.run_id)
            assert run is not None and run.root_run_id == first_id

    assert len(smtp_server.inbox) == 1
    assert smtp_server.inbox[0].rcpt_tos == ["alice@northwind.example"]
    with db.session_scope(workspace) as s:
        versions = list(s.scalars(select(DeliverableVersion).where(DeliverableVersion.deliverable_id == did)))
        deliveries = list(s.scalars(select(DeliverableDelivery)))
        assert [v.version_number for v in versions] == [1]
        assert versions[0].status == "delivered" and versions[0].root_run_id == first_id
        assert [(d.status, d.attempts) for d in deliveries] == [("sent", 1)]
    events = store.read(ACTIVITY_LOG)
    assert events.filter(events["event_type"] == "deliverable_run").height == 1
