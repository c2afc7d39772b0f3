"""Schedules of the signals domain: both passes of every eligible user for the hour that just ended."""

from yarn_assets.core.partitions import previous_partition_schedule
from yarn_assets.signals.assets import signals_job
from yarn_assets.signals.tables import signal_hours

signals_hourly_schedule = previous_partition_schedule(
    signals_job, signal_hours, name="signals_hourly_schedule", run_key_prefix="signals", minute_of_hour=2,
    description="At :02 every hour, both signal passes of every eligible user for the hour that just ended.",
)

SCHEDULES = [signals_hourly_schedule]
