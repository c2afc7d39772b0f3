"""Platform sync sensor: every 5 minutes, launch syncs for connections whose tier window is due.

Replaces the original's separate 5-minute cron. One run per due connection (partition today ×
platform), tagged ``yarnnn/connection=<id>`` so the run queue never runs two syncs of one connection
at once; see :mod:`yarn_assets.ingest.sync.requests`.
"""


import dagster as dg

from control_plane.models import utcnow
from resources.control_plane import ControlPlane
from yarn_assets.ingest.sources import BRONZE_SYNCS, SILVER_CONTENT
from yarn_assets.ingest.sync.requests import sync_run_requests


@dg.sensor(
    name="platform_sync_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.assets(BRONZE_SYNCS, SILVER_CONTENT),
    description="Launches live API syncs (then silver) for connections due by their tier's window.",
)
def platform_sync_sensor(context: dg.SensorEvaluationContext, control_plane: ControlPlane) -> dg.SensorResult:
    requests = sync_run_requests(control_plane, utcnow(), trigger="platform_sync_sensor")
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("no connection is due"))
    context.log.info(f"launching {len(requests)} sync run(s)")
    return dg.SensorResult(run_requests=requests)
