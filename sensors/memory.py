"""Triggers of the memory domain. Chat-import sensor: lands pending chat_jsonl import jobs, then runs
the nightly memory of the session days an import brought (imported history is learned without a
manual backfill): one run per (day, user shard), every shard of each day.

Inbox files are registered by ``import_jobs_sensor`` (a ``.jsonl`` file is detected as
``chat_jsonl``); this sensor only launches runs. Run keys make every request happen once.
"""


import datetime as dt
import hashlib
import json

import dagster as dg
from sqlalchemy import select

from control_plane.models import ImportJob
from resources.control_plane import ControlPlane
from yarn_assets.core.shards import SHARD_DIMENSION
from yarn_assets.ingest.platforms.chat.assets import chat_ingest_job
from yarn_assets.ingest.platforms.chat.tables import CHAT_PLATFORM
from yarn_assets.memory.assets import day_keys, memory_nightly_job


@dg.sensor(
    name="chat_imports_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    jobs=[chat_ingest_job, memory_nightly_job],
    description="Launches chat-import runs, then the nightly memory of the session days they brought.",
)
def chat_imports_sensor(context: dg.SensorEvaluationContext, control_plane: ControlPlane) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    since = cursor.get("updated_since")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    requests: list[dg.RunRequest] = []
    shards = _nightly_shards(context)
    with control_plane.session() as session:
        pending = session.scalars(select(ImportJob).where(
            ImportJob.platform == CHAT_PLATFORM, ImportJob.status == "pending").order_by(ImportJob.created_at)).all()
        by_day: dict[str, list[ImportJob]] = {}
        for job in pending:
            by_day.setdefault(job.partition_date, []).append(job)
        for day, jobs in sorted(by_day.items()):
            fingerprint = hashlib.sha1("|".join(f"{j.id}@{j.updated_at.isoformat()}" for j in jobs).encode())
            requests.append(dg.RunRequest(run_key=f"chat-import:{day}:{fingerprint.hexdigest()[:16]}",
                                          job_name=chat_ingest_job.name, partition_key=day,
                                          tags={"yarnnn/trigger": "chat_imports_sensor"}))
        q = select(ImportJob).where(ImportJob.platform == CHAT_PLATFORM, ImportJob.status == "completed")
        if since:
            q = q.where(ImportJob.updated_at > dt.datetime.fromisoformat(since))
        done = session.scalars(q.order_by(ImportJob.updated_at)).all()
        for job in done:
            result = job.result or {}
            if not result.get("silver_merged_at"):
                continue  # landed in bronze, not yet in silver: the next tick sees it
            for day in result.get("session_days", []):
                if day >= today:  # today's sessions are learned by tonight's scheduled run
                    continue
                for key in day_keys(day, shards):
                    requests.append(dg.RunRequest(run_key=f"chat-memory:{job.id}:{key}",
                                                  job_name=memory_nightly_job.name, partition_key=key,
                                                  tags={"yarnnn/trigger": "chat_imports_sensor",
                                                        "yarnnn/import_job": job.id}))
            since = max(since or "", job.updated_at.isoformat())
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("no pending or newly landed chat imports"),
                               cursor=json.dumps({"updated_since": since}) if since else context.cursor)
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({"updated_since": since}) if since else None)


def _nightly_shards(context: dg.SensorEvaluationContext) -> int:
    """The shard count the loaded nightly job was built with (the ``user_shards`` setting); 1 outside a
    code location (a sensor invoked directly in a test)."""
    try:
        repo = context.repository_def
    except Exception:
        repo = None
    if repo is None or not repo.has_job(memory_nightly_job.name):
        return 1
    pdef = repo.get_job(memory_nightly_job.name).partitions_def
    if not isinstance(pdef, dg.MultiPartitionsDefinition):
        return 1
    return len(pdef.get_partitions_def_for_dimension(SHARD_DIMENSION).get_partition_keys())


SENSORS = [chat_imports_sensor]
