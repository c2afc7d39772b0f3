"""Import-job sensor: registers files dropped in the inbox and launches a run per partition.

Replaces the original's 5-minute "import jobs" phase. Every tick it also sends the jobs of dead
runs back to ``pending`` (a run the instance reports ended, or whose worker process is gone;
a live run is never interrupted, however long it takes), up to ``YARNNN_IMPORT_MAX_ATTEMPTS``
claims, after which the job is ``failed`` with the reason. Every run it requests materializes
bronze and silver for one (day, platform) partition, so nothing waits for a button.
"""


import datetime as dt
import hashlib
from pathlib import Path

import dagster as dg

from resources.control_plane import ControlPlane
from resources.input_limits import InputLimits
from resources.runtime import Runtime
from yarn_assets.core.partitions import ingest_key
from yarn_assets.core.tables import PLATFORMS
from yarn_assets.ingest import import_jobs
from yarn_assets.ingest.sources import BRONZE_IMPORTS, SILVER_CONTENT


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
