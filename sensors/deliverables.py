"""Deliverable triggers: the 5-minute due sensor and the fast request sensor.

* ``due_deliverables_sensor`` (every 5 minutes, the original's scheduler phase): a run for every
  active deliverable whose ``next_run_at`` has come, tagged ``schedule`` (so it is skipped when
  nothing is new). The run key is the due time, so a slot is requested once even if the run is
  still queued at the next tick; the run advances ``next_run_at`` when it starts.
* ``deliverable_requests_sensor`` (every 30 seconds): explicit requests (``request_generation``:
  signals, CLI, API) and signal-emergent deliverables that have never run ("generate at once"),
  tagged ``request`` / ``manual`` / ``signal`` so they are never skipped. A request stays
  ``pending`` until its run starts and claims it (``launched``, then ``completed``/``failed``);
  the run key ``request:<id>`` dedupes ticks, so a failed tick never loses a request.

Both add missing dynamic partition keys (deliverables created outside the CLI, e.g. by signals)
through ``dynamic_partitions_requests`` in the same result as their run requests.
"""

import dagster as dg
from sqlalchemy import select

from control_plane.models import Deliverable, utcnow
from resources.control_plane import ControlPlane
from yarn_assets.deliverables import service
from yarn_assets.deliverables.assets import REQUEST_TAG, TRIGGER_TAG, deliverable_job, deliverable_partitions

#: with ``run_retries`` enabled on the instance, a failed run (e.g. SMTP down) is re-executed from
#: failure once; the version is resumed and the outbox keeps delivery to exactly one send.
RETRY_TAGS = {"dagster/max_retries": "1", "dagster/retry_strategy": "FROM_FAILURE"}


def _missing_keys(context: dg.SensorEvaluationContext, session) -> list[str]:  # type: ignore[no-untyped-def]
    known = set(context.instance.get_dynamic_partitions(deliverable_partitions.name))
    ids = session.scalars(select(Deliverable.id).where(Deliverable.status != "archived")).all()
    return sorted(i for i in ids if i not in known)


def _signal_first_run(d: Deliverable) -> bool:
    return d.origin == "signal_emergent" and d.last_run_at is None


def _signal_triggered(d: Deliverable) -> bool:
    """Signals' trigger_existing sets next_run_at and last_triggered_at to the same 'now'."""
    return d.last_triggered_at is not None and d.next_run_at is not None and d.next_run_at <= d.last_triggered_at


def _result(requests: list[dg.RunRequest], new_keys: list[str], skip: str) -> dg.SensorResult:
    adds = [deliverable_partitions.build_add_request(new_keys)] if new_keys else []
    if not requests and not adds:
        return dg.SensorResult(skip_reason=dg.SkipReason(skip))
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=adds)


@dg.sensor(
    name="due_deliverables_sensor",
    job=deliverable_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 minutes: a run per active deliverable with next_run_at <= now (skipped if nothing new).",
)
def due_deliverables_sensor(context: dg.SensorEvaluationContext, control_plane: ControlPlane) -> dg.SensorResult:
    now = utcnow()
    with control_plane.session() as session:
        new_keys = _missing_keys(context, session)
        requested = {r.deliverable_id for r in service.pending_requests(session)}
        due = [d for d in service.due_deliverables(session, now)
               if d.id not in requested and not _signal_first_run(d)]
        requests = [
            dg.RunRequest(
                run_key=f"due:{d.id}:{d.next_run_at.isoformat()}",
                partition_key=d.id,
                tags={TRIGGER_TAG: "signal" if _signal_triggered(d) else "schedule", "yarnnn/user_id": d.user_id,
                      "yarnnn/deliverable_type": d.deliverable_type, **RETRY_TAGS},
            )
            for d in due if d.next_run_at is not None
        ]
    return _result(requests, new_keys, "no deliverable is due")


@dg.sensor(
    name="deliverable_requests_sensor",
    job=deliverable_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 30 s: runs for explicit generation requests and new signal-emergent deliverables.",
)
def deliverable_requests_sensor(context: dg.SensorEvaluationContext, control_plane: ControlPlane) -> dg.SensorResult:
    now = utcnow()
    requests: list[dg.RunRequest] = []
    with control_plane.session() as session:
        new_keys = _missing_keys(context, session)
        requested = set()
        for req in service.pending_requests(session):
            d = session.get(Deliverable, req.deliverable_id)
            if d is None or d.status == "archived":
                req.status, req.completed_at = "cancelled", now
                continue
            requested.add(d.id)
            requests.append(dg.RunRequest(
                run_key=f"request:{req.id}", partition_key=d.id,
                tags={TRIGGER_TAG: service.REQUEST_TRIGGERS.get(req.reason, "request"), REQUEST_TAG: req.id,
                      "yarnnn/user_id": d.user_id, "yarnnn/reason": req.reason, **RETRY_TAGS},
            ))
        for d in service.due_deliverables(session, now):
            if _signal_first_run(d) and d.next_run_at is not None and d.id not in requested:
                requests.append(dg.RunRequest(
                    run_key=f"signal:{d.id}:{d.next_run_at.isoformat()}", partition_key=d.id,
                    tags={TRIGGER_TAG: "signal", "yarnnn/user_id": d.user_id, **RETRY_TAGS},
                ))
    return _result(requests, new_keys, "no generation requested")


SENSORS = [due_deliverables_sensor, deliverable_requests_sensor]
