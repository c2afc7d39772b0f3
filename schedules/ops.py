"""Schedules of the ops domain: the original's hourly cleanup phase, daily maintenance, hourly checks.

All start RUNNING: nothing here waits for an operator to switch it on.
"""

import dagster as dg

from yarn_assets.ops.jobs import content_cleanup_job, table_maintenance_job, warehouse_checks_job

#: hh:05 every hour, for the hour that just ended (the original ran cleanup at minute < 5).
content_cleanup_schedule = dg.build_schedule_from_partitioned_job(
    content_cleanup_job,
    name="content_cleanup_schedule",
    minute_of_hour=5,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly TTL cleanup of the hour that just ended.",
)

#: 03:30 UTC, for the day that just ended: away from the 00:00 memory and 06:00 analysis runs.
table_maintenance_schedule = dg.build_schedule_from_partitioned_job(
    table_maintenance_job,
    name="table_maintenance_schedule",
    hour_of_day=3,
    minute_of_hour=30,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily compaction and vacuum of every warehouse table.",
)

warehouse_checks_schedule = dg.ScheduleDefinition(
    name="warehouse_checks_schedule",
    job=warehouse_checks_job,
    cron_schedule="20 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly whole-table checks (after the cleanup run).",
)

SCHEDULES = [content_cleanup_schedule, table_maintenance_schedule, warehouse_checks_schedule]
