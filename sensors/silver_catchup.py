"""Silver catch-up sensor: bronze batches no live run will merge get a silver run, unattended.

Whatever killed a run (SIGKILL in the silver step, a sync killed mid-way, a host restart noticed by
run monitoring), its batches stay unmerged in the ``bronze_batches`` ledger; within a minute of
the run being known dead, this sensor requests one silver-only run per affected partition, which
merges exactly those batches (the silver asset works from the ledger). Each request is counted
per batch, up to ``YARNNN_SILVER_MAX_CATCHUP_RUNS``; then the batch is failed with the reason.
"""


import datetime as dt
import hashlib

import dagster as dg

from control_plane.models import utcnow
from resources.control_plane import ControlPlane
from resources.runtime import Runtime
from yarn_assets.core.partitions import ingest_key
from yarn_assets.core.tables import PLATFORMS
from yarn_assets.ingest import catchup
from yarn_assets.ingest.sources import SILVER_CONTENT

TRIGGER = "silver_catchup_sensor"


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
            tags={"yarnnn/trigger": TRIGGER, "yarnnn/unmerged_batches": str(len(batch_ids))},
        ))
    return requests


@dg.sensor(
    name=TRIGGER,
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

