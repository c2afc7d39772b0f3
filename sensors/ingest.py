"""Triggers of the ingest domain: inbox imports, live API syncs, and silver catch-up after a crash.

``import_jobs_sensor`` registers files dropped in the inbox and launches one bronze+silver run per
pending (day, platform) partition (the original's 5-minute "import jobs" phase); every tick it
also sends the jobs of dead runs back to ``pending`` (a run the instance reports ended, or whose
worker is gone; a live run is never interrupted), up to ``YARNNN_IMPORT_MAX_ATTEMPTS`` claims.

``platform_sync_sensor`` launches, every 5 minutes, the syncs of the connections whose tier window
is due: one run per platform (partition today × platform) naming its connections in the
``yarnnn/connections`` tag; the run key includes each connection's window, so a queued run is never
requested twice for the same window. Runs carry ``yarnnn/sync_platform`` so dagster.yaml can cap
concurrent syncs per platform API (``tag_concurrency_limits``), beside the ``platform_api`` pool.

``silver_catchup_sensor``: bronze batches no live run will merge get a silver-only run, unattended.
Whatever killed a run (SIGKILL in the silver step, a sync killed mid-way, a host restart noticed by
run monitoring), its batches stay unmerged in the ``bronze_batches`` ledger; within a minute of the
run being known dead, one silver-only run per affected partition merges exactly those batches. Each
request is counted per batch, up to ``YARNNN_SILVER_MAX_CATCHUP_RUNS``; then the batch is failed.
"""

import datetime as dt
import hashlib
from pathlib import Path

import dagster as dg
from sqlalchemy import select

from control_plane.models import PlatformConnection, User, utcnow
from resources.control_plane import ControlPlane
from resources.input_limits import InputLimits
from resources.runtime import Runtime
from yarn_assets.core.partitions import ingest_key
from yarn_assets.core.tables import PLATFORMS
from yarn_assets.ingest import catchup, import_jobs
from yarn_assets.ingest.sources import BRONZE_IMPORTS, BRONZE_SYNCS, SILVER_CONTENT
from yarn_assets.ingest.sync import schedule
from yarn_assets.ingest.sync.asset import TAG_CONNECTIONS, TAG_PLATFORM


@dg.sensor(
    name="import_jobs_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.assets(BRONZE_IMPORTS, SILVER_CONTENT),
    description="Registers inbox files and launches bronze+silver runs for pending import jobs.",
)
def import_jobs_sensor(
    context: dg.SensorEvaluationContext, control_plane: ControlPlane, runtime: Runtime, input_limits: InputLimits
) -> dg.SensorResult:
    inbox = Path(runtime.inbox_dir)
    with control_plane.session() as session:
        new_jobs = import_jobs.scan_inbox(session, inbox, Path(runtime.archive_dir), input_limits)
        reset, failed = import_jobs.reset_dead(
            session, context.instance, max_attempts=runtime.import_max_attempts,
            stale_after=dt.timedelta(seconds=runtime.stale_after_seconds))
        pending = import_jobs.pending_by_partition(session)
        requests = []
        for (day, platform), jobs in sorted(pending.items()):
            if platform not in PLATFORMS:  # e.g. chat imports: launched by the memory domain's sensor
                continue
            fingerprint = hashlib.sha1(
                "|".join(f"{j.id}@{j.updated_at.isoformat()}" for j in jobs).encode()
            ).hexdigest()[:16]
            requests.append(
                dg.RunRequest(
                    run_key=f"import:{day}|{platform}:{fingerprint}",
                    partition_key=ingest_key(day, platform),
                    asset_selection=[BRONZE_IMPORTS, SILVER_CONTENT],
                    tags={"yarnnn/trigger": "import_jobs_sensor", "yarnnn/import_jobs": str(len(jobs))},
                )
            )
    if new_jobs or reset or failed:
        context.log.info(f"registered {len(new_jobs)} inbox file(s); {len(reset)} job(s) of dead runs back to "
                         f"pending; {len(failed)} failed after their last attempt")
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("no pending import jobs"))
    return dg.SensorResult(run_requests=requests)


MAX_CONNECTIONS_PER_RUN = 50


def due_connections(control_plane: ControlPlane, now) -> dict[str, list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    """platform -> [(connection id, window start iso)] of the connections due now."""
    out: dict[str, list[tuple[str, str]]] = {}
    with control_plane.session() as s:
        for conn in s.scalars(select(PlatformConnection).order_by(PlatformConnection.platform,
                                                                  PlatformConnection.user_id)):
            user = s.get(User, conn.user_id)
            due = schedule.is_due(now=now, tier=user.tier if user else "free",
                                  timezone=user.timezone if user else "UTC", status=conn.status,
                                  last_attempt_at=conn.last_attempt_at, last_synced_at=conn.last_synced_at)
            if due.due:
                out.setdefault(conn.platform, []).append((conn.id, due.window_start.isoformat()))
    return out


@dg.sensor(
    name="platform_sync_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.assets(BRONZE_SYNCS, SILVER_CONTENT),
    description="Launches live API syncs (then silver) for connections due by their tier's window.",
)
def platform_sync_sensor(context: dg.SensorEvaluationContext, control_plane: ControlPlane) -> dg.SensorResult:
    now = utcnow()
    today = now.date().isoformat()
    requests = []
    for platform, due in sorted(due_connections(control_plane, now).items()):
        for start in range(0, len(due), MAX_CONNECTIONS_PER_RUN):
            chunk = due[start:start + MAX_CONNECTIONS_PER_RUN]
            fingerprint = hashlib.sha1("|".join(f"{c}@{w}" for c, w in chunk).encode()).hexdigest()[:16]
            requests.append(dg.RunRequest(
                run_key=f"sync:{platform}:{fingerprint}",
                partition_key=ingest_key(today, platform),
                asset_selection=[BRONZE_SYNCS, SILVER_CONTENT],
                tags={TAG_CONNECTIONS: ",".join(c for c, _ in chunk), TAG_PLATFORM: platform,
                      "yarnnn/trigger": "platform_sync_sensor"},
            ))
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("no connection is due"))
    context.log.info(f"launching {len(requests)} sync run(s)")
    return dg.SensorResult(run_requests=requests)


CATCHUP_TRIGGER = "silver_catchup_sensor"


def catchup_requests(plan: catchup.CatchupPlan) -> list[dg.RunRequest]:
    """One silver-only run request per partition of the plan (run key unique per attempt)."""
    requests = []
    for (day, platform), batch_ids in sorted(plan.partitions.items()):
        if platform not in PLATFORMS:
            continue
        fingerprint = hashlib.sha1("|".join(f"{b}@{plan.attempts.get(b, 0)}" for b in sorted(batch_ids))
                                   .encode()).hexdigest()[:16]
        requests.append(dg.RunRequest(
            run_key=f"silver-catchup:{day}|{platform}:{fingerprint}",
            partition_key=ingest_key(day, platform),
            asset_selection=[SILVER_CONTENT],
            tags={"yarnnn/trigger": CATCHUP_TRIGGER, "yarnnn/unmerged_batches": str(len(batch_ids))},
        ))
    return requests


@dg.sensor(
    name=CATCHUP_TRIGGER,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.assets(SILVER_CONTENT),
    description="Merges bronze batches left unmerged by a run that died (crash recovery without a human).",
)
def silver_catchup_sensor(
    context: dg.SensorEvaluationContext, control_plane: ControlPlane, runtime: Runtime
) -> dg.SensorResult:
    with control_plane.session() as session:
        plan = catchup.plan(session, context.instance, max_requests=runtime.silver_max_catchup_runs,
                            stale_after=dt.timedelta(seconds=runtime.stale_after_seconds), now=utcnow())
    for batch_id, reason in plan.failed.items():
        context.log.error(f"gave up on bronze batch {batch_id}: {reason}")
    requests = catchup_requests(plan)
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason(
            f"nothing to catch up ({plan.waiting} unmerged batch(es) owned by live runs)"))
    context.log.info(f"catch-up silver runs for {len(requests)} partition(s)")
    return dg.SensorResult(run_requests=requests)


SENSORS = [import_jobs_sensor, platform_sync_sensor, silver_catchup_sensor]
