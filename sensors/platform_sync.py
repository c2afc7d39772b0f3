"""Platform sync sensor: every 5 minutes, launch syncs for connections whose tier window is due.

Replaces the original's separate 5-minute cron. One run per platform (partition today × platform)
naming its due connections in the ``yarnnn/connections`` tag; the run key includes each
connection's window, so a queued run is never requested twice for the same window. Runs carry
``yarnnn/sync_platform`` so dagster.yaml can cap concurrent syncs per platform API
(``tag_concurrency_limits`` with ``applyLimitPerUniqueValue``), beside the ``platform_api`` pool.
"""


import hashlib

import dagster as dg
from sqlalchemy import select

from control_plane.models import PlatformConnection, User, utcnow
from resources.control_plane import ControlPlane
from yarn_assets.core.partitions import ingest_key
from yarn_assets.ingest.sources import BRONZE_SYNCS, SILVER_CONTENT
from yarn_assets.ingest.sync import schedule
from yarn_assets.ingest.sync.asset import TAG_CONNECTIONS, TAG_PLATFORM

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
