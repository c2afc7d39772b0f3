"""Memory schedules: the original's 06:00 (analysis) and digest phases.

The 00:00 phase (chat-app sessions into silver, facts, summaries, patterns) is declarative automation on
the assets themselves (``yarn_assets.memory.assets.common.NIGHTLY``/``NIGHTLY_EAGER``).
"""


import datetime as dt
from typing import Any

import dagster as dg

from resources.control_plane import ControlPlane
from yarn_assets.memory import digest
from yarn_assets.memory.assets import (
    conversation_analysis_job,
    digest_hours,
    weekly_digest_job,
)


def _yesterday(context: dg.ScheduleEvaluationContext) -> str:
    tick = context.scheduled_execution_time.astimezone(dt.UTC)
    return (tick.date() - dt.timedelta(days=1)).isoformat()


def _daily_for_yesterday(name: str, hour: int, job: Any, prefix: str,
                         description: str) -> dg.ScheduleDefinition:
    """A daily UTC schedule that runs ``job`` for yesterday's partition (one run per day by run key)."""

    @dg.schedule(name=name, cron_schedule=f"0 {hour} * * *", execution_timezone="UTC", job=job,
                 default_status=dg.DefaultScheduleStatus.RUNNING, description=description)
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = _yesterday(context)
        return dg.RunRequest(run_key=f"{prefix}:{day}", partition_key=day, tags={"yarnnn/trigger": "schedule"})

    return _schedule


conversation_analysis_schedule = _daily_for_yesterday(
    "conversation_analysis_schedule", 6, conversation_analysis_job, "analysis",
    "06:00 UTC: suggest deliverables from the last 7 days of conversations (ending yesterday).")


@dg.schedule(
    name="weekly_digest_schedule",
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    job=weekly_digest_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: weekly digests of the users whose local digest day and hour is now.",
)
def weekly_digest_schedule(
    context: dg.ScheduleEvaluationContext, control_plane: ControlPlane
) -> dg.RunRequest | dg.SkipReason:
    hour = context.scheduled_execution_time.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    with control_plane.session() as session:
        due = digest.due_users(session, hour)
    if not due:
        return dg.SkipReason(f"no user has their weekly digest at {hour:%Y-%m-%d %H}:00 UTC")
    key = digest_hours.get_partition_key_for_timestamp(hour.timestamp())
    return dg.RunRequest(run_key=f"digest:{key}", partition_key=key,
                         tags={"yarnnn/trigger": "schedule", "yarnnn/digest_users": str(len(due))})


SCHEDULES = [conversation_analysis_schedule, weekly_digest_schedule]
