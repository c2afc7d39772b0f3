"""Deliverable triggers: the 5-minute due sensor and the fast request sensor, one round per user shard.

Both group what they launch by user shard (``shard_of(user_id, user_shards)``) and request one
``deliverable_round_job`` run per shard and tick (chunks of ``MAX_ROUND_ITEMS``): at 10,000 users
with 3 deliverables a day that is a few hundred rounds a day instead of 30,000 single-deliverable
runs, each paying a process start and a definitions load. The run config names the deliverable ids,
their triggers and request ids (never content); tags carry the shard and the counts.

* ``due_deliverables_sensor`` (every 5 minutes, the original's scheduler phase): every active
  deliverable whose ``next_run_at`` has come, tagged ``schedule`` (so it is skipped when nothing
  is new) or ``signal`` (triggered by a signal: forced). A due slot is ``(id, next_run_at)``; the
  run advances ``next_run_at`` when it starts.
* ``deliverable_requests_sensor`` (every 30 seconds): explicit requests (``request_generation``:
  signals, CLI, API) and signal-emergent deliverables that have never run ("generate at once"),
  tagged ``request`` / ``manual`` / ``signal`` so they are never skipped. A request stays
  ``pending`` until its round starts and claims it (``launched``, then ``completed``/``failed``).

**Never twice, never lost.** A slot or request is launched once: the sensor's cursor keeps the slots
(requests) already requested that are still due (pending), so a round still queued at the next tick
is not requested again, while a new slot of the same shard gets its own round. The run key is a
digest of the shard's new slots, so a tick evaluated again from the same cursor (a daemon restart)
yields the same keys and Dagster drops the duplicates; a tick that fails stores no cursor, so nothing
it saw is lost. Both sensors add missing dynamic partition keys (deliverables created outside the
CLI, e.g. by signals) through ``dynamic_partitions_requests`` in the same result as their runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import dagster as dg
from sqlalchemy import select

from control_plane.models import Deliverable, utcnow
from resources.control_plane import ControlPlane
from resources.signal_policy import SignalPolicy
from yarn_assets.core.shards import shard_of
from yarn_assets.deliverables import service
from yarn_assets.deliverables.assets import TRIGGER_TAG, deliverable_partitions
from yarn_assets.deliverables.round_job import ROUND_JOB, SHARD_TAG, round_run_config

#: with ``run_retries`` enabled on the instance, a failed round (e.g. SMTP down) is re-executed from
#: failure once; its versions are resumed and the outbox keeps delivery to exactly one send.
RETRY_TAGS = {"dagster/max_retries": "1", "dagster/retry_strategy": "FROM_FAILURE"}
#: a round larger than this is split (bounded run length and run config size)
MAX_ROUND_ITEMS = 200
ROUND_SIZE_TAG = "yarnnn/round_size"
ROUND_USERS_TAG = "yarnnn/round_users"


@dataclass
class Entry:
    """One deliverable of a round being planned, with the cursor keys (slots, request ids) it serves."""

    deliverable_id: str
    user_id: str
    trigger: str
    keys: list[str]
    request_ids: list[str] = field(default_factory=list)


def _missing_keys(context: dg.SensorEvaluationContext, session) -> list[str]:  # type: ignore[no-untyped-def]
    known = set(context.instance.get_dynamic_partitions(deliverable_partitions.name))
    ids = session.scalars(select(Deliverable.id).where(Deliverable.status != "archived")).all()
    return sorted(i for i in ids if i not in known)


def _signal_first_run(d: Deliverable) -> bool:
    return d.origin == "signal_emergent" and d.last_run_at is None


def _signal_triggered(d: Deliverable) -> bool:
    """Signals' trigger_existing sets next_run_at and last_triggered_at to the same 'now'."""
    return d.last_triggered_at is not None and d.next_run_at is not None and d.next_run_at <= d.last_triggered_at


def _slot(d: Deliverable) -> str:
    assert d.next_run_at is not None
    return f"{d.id}@{d.next_run_at.isoformat()}"


def _read_cursor(context: dg.SensorEvaluationContext) -> set[str]:
    return set(json.loads(context.cursor)) if context.cursor else set()


def round_requests(prefix: str, entries: Iterable[Entry], shards: int) -> list[dg.RunRequest]:
    """One run request per shard (per ``MAX_ROUND_ITEMS`` chunk) with a run key stable for its slots."""
    by_shard: dict[str, list[Entry]] = {}
    for e in entries:
        by_shard.setdefault(shard_of(e.user_id, shards), []).append(e)
    requests = []
    for shard in sorted(by_shard, key=int):
        group = sorted(by_shard[shard], key=lambda e: e.deliverable_id)
        for start in range(0, len(group), MAX_ROUND_ITEMS):
            chunk = group[start:start + MAX_ROUND_ITEMS]
            digest = hashlib.sha256("\n".join(sorted(k for e in chunk for k in e.keys)).encode()).hexdigest()[:20]
            items = [{"deliverable_id": e.deliverable_id, "trigger": e.trigger, "request_ids": e.request_ids}
                     for e in chunk]
            triggers = sorted({e.trigger for e in chunk})
            requests.append(dg.RunRequest(
                run_key=f"{prefix}:{shard}:{digest}", job_name=ROUND_JOB,
                run_config=round_run_config(shard, shards, items),
                tags={SHARD_TAG: shard, TRIGGER_TAG: ",".join(triggers), ROUND_SIZE_TAG: str(len(chunk)),
                      ROUND_USERS_TAG: str(len({e.user_id for e in chunk})), **RETRY_TAGS},
            ))
    return requests


def _result(entries: list[Entry], seen: set[str], live: set[str], prefix: str, shards: int, new_keys: list[str],
            skip: str) -> dg.SensorResult:
    """Rounds of the entries not yet requested; the cursor keeps what was requested and is still live."""
    fresh = [e for e in entries if not set(e.keys) <= seen]
    requests = round_requests(prefix, fresh, shards)
    cursor = json.dumps(sorted((seen & live) | {k for e in fresh for k in e.keys}))
    adds = [deliverable_partitions.build_add_request(new_keys)] if new_keys else []
    if not requests and not adds:
        return dg.SensorResult(skip_reason=dg.SkipReason(skip), cursor=cursor)
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=adds, cursor=cursor)


@dg.sensor(
    name="due_deliverables_sensor",
    job_name=ROUND_JOB,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 minutes: one round per user shard of the active deliverables with next_run_at <= now "
    "(scheduled ones are skipped if nothing is new).",
)
def due_deliverables_sensor(context: dg.SensorEvaluationContext, control_plane: ControlPlane,
                            signal_policy: SignalPolicy) -> dg.SensorResult:
    now = utcnow()
    with control_plane.session() as session:
        new_keys = _missing_keys(context, session)
        requested = {r.deliverable_id for r in service.pending_requests(session)}
        due = [d for d in service.due_deliverables(session, now)
               if d.id not in requested and not _signal_first_run(d) and d.next_run_at is not None]
        entries = [Entry(d.id, d.user_id, "signal" if _signal_triggered(d) else "schedule", [_slot(d)]) for d in due]
    live = {k for e in entries for k in e.keys}
    return _result(entries, _read_cursor(context), live, "due", signal_policy.user_shards, new_keys,
                   "no deliverable is due")


@dg.sensor(
    name="deliverable_requests_sensor",
    job_name=ROUND_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 30 s: one round per user shard of explicit generation requests and new signal-emergent "
    "deliverables.",
)
def deliverable_requests_sensor(context: dg.SensorEvaluationContext, control_plane: ControlPlane,
                                signal_policy: SignalPolicy) -> dg.SensorResult:
    now = utcnow()
    entries: dict[str, Entry] = {}
    with control_plane.session() as session:
        new_keys = _missing_keys(context, session)
        for req in service.pending_requests(session):
            d = session.get(Deliverable, req.deliverable_id)
            if d is None or d.status == "archived":
                req.status, req.completed_at = "cancelled", now
                continue
            trigger = service.REQUEST_TRIGGERS.get(req.reason, "request")
            e = entries.setdefault(d.id, Entry(d.id, d.user_id, trigger, []))
            e.keys.append(f"request:{req.id}")
            e.request_ids.append(req.id)
            if trigger == "signal":  # a signal's request is never skipped by a manual one's folding
                e.trigger = "signal"
        for d in service.due_deliverables(session, now):
            if _signal_first_run(d) and d.next_run_at is not None and d.id not in entries:
                entries[d.id] = Entry(d.id, d.user_id, "signal", [f"signal:{_slot(d)}"])
    live = {k for e in entries.values() for k in e.keys}
    return _result(list(entries.values()), _read_cursor(context), live, "requests", signal_policy.user_shards,
                   new_keys, "no generation requested")


SENSORS = [due_deliverables_sensor, deliverable_requests_sensor]
