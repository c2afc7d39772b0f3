"""Partition definitions shared across domains.

Ingest is partitioned by (UTC ingest day × platform): an operator re-reads "Slack for last
Tuesday" or backfills one platform after a parser fix without touching the others, and every
partition maps to exactly one bronze folder (platform=…/ingest_date=…).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg

from yarn_assets.core.tables import PLATFORMS

PARTITIONS_START = "2024-01-01"

#: ``end_offset=1`` so today's partition exists: imports and syncs land in the current day.
ingest_days = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1, timezone="UTC")
platforms = dg.StaticPartitionsDefinition(list(PLATFORMS))

#: Keys read ``2026-11-23|slack`` (Dagster orders dimensions by name: date, platform).
ingest_partitions = dg.MultiPartitionsDefinition({"date": ingest_days, "platform": platforms})


def ingest_key(day: str, platform: str) -> str:
    return dg.MultiPartitionKey({"date": day, "platform": platform})


def previous_partition_schedule(
    job: Any, partitions_def: dg.TimeWindowPartitionsDefinition, *, name: str, run_key_prefix: str,
    description: str, minute_of_hour: int = 0, hour_of_day: int | None = None,
) -> dg.ScheduleDefinition:
    """A RUNNING schedule that runs ``job`` for the partition that ended before each tick.

    ``dg.build_schedule_from_partitioned_job`` asks for the *last* partition, which with
    ``end_offset=1`` (today's day / this hour exists, for imports and manual runs) is the one still
    open; this is the same schedule for those jobs: cadence from the partitions definition, one
    run per closed partition (run key ``<prefix>:<partition>``), tagged ``yarnnn/trigger=schedule``.
    Jobs on partitions without an offset use ``dg.build_schedule_from_partitioned_job`` directly.
    """
    cron = partitions_def.get_cron_schedule(minute_of_hour, hour_of_day)

    @dg.schedule(name=name, cron_schedule=cron, execution_timezone=partitions_def.timezone, job=job,
                 default_status=dg.DefaultScheduleStatus.RUNNING, description=description)
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        key = previous_partition_key(partitions_def, context.scheduled_execution_time)
        return dg.RunRequest(run_key=f"{run_key_prefix}:{key}", partition_key=key,
                             tags={"yarnnn/trigger": "schedule"})

    return _schedule


def previous_partition_key(partitions_def: dg.TimeWindowPartitionsDefinition, moment: dt.datetime) -> str:
    """The key of the last partition that ended at or before ``moment``."""
    current = partitions_def.get_partition_key_for_timestamp(moment.timestamp())
    start = partitions_def.time_window_for_partition_key(current).start
    return partitions_def.get_partition_key_for_timestamp((start - dt.timedelta(microseconds=1)).timestamp())
