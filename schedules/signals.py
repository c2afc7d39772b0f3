"""Schedules of the signals domain: both passes of every eligible user for the hour that just ended,
one run per user shard (the shard count comes from the ``signal_policy`` resource, i.e. the same
``user_shards`` setting the asset's partitions are built from)."""

import datetime as dt

import dagster as dg

from resources.signal_policy import SignalPolicy
from yarn_assets.signals.assets import hour_keys


@dg.schedule(
    name="signals_hourly_schedule",
    cron_schedule="2 * * * *",
    execution_timezone="UTC",
    job_name="signals_job",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At :02 every hour, both signal passes of every eligible user for the hour that just ended: "
    "one run per user shard, so workers take the shards of the hour in parallel.",
)
def signals_hourly_schedule(context: dg.ScheduleEvaluationContext, signal_policy: SignalPolicy
                            ) -> list[dg.RunRequest]:
    tick = context.scheduled_execution_time.astimezone(dt.UTC)
    hour = tick.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
    return [dg.RunRequest(run_key=f"signals:{key}", partition_key=key, tags={"yarnnn/trigger": "schedule"})
            for key in hour_keys(hour, signal_policy.user_shards)]


SCHEDULES = [signals_hourly_schedule]
