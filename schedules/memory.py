"""Memory schedules: the original's 00:00 (memory + patterns), 06:00 (analysis) and digest phases."""


import datetime as dt

import dagster as dg

from resources.control_plane import ControlPlane
from yarn_assets.memory import digest
from yarn_assets.memory.assets import (
    conversation_analysis_job,
    digest_hours,
    memory_nightly_job,
    weekly_digest_job,
)


def _yesterday(context: dg.ScheduleEvaluationContext) -> str:
    tick = context.scheduled_execution_time.astimezone(dt.UTC)
    return (tick.date() - dt.timedelta(days=1)).isoformat()


@dg.schedule(
    name="memory_nightly_schedule",
    cron_schedule="0 0 * * *",
    execution_timezone="UTC",
    job=memory_nightly_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="00:00 UTC: yesterday's chat-app sessions into silver, facts, summaries, activity patterns.",
)
def memory_nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = _yesterday(context)
    return dg.RunRequest(run_key=f"memory:{day}", partition_key=day, tags={"yarnnn/trigger": "schedule"})


@dg.schedule(
    name="conversation_analysis_schedule",
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    job=conversation_analysis_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="06:00 UTC: suggest deliverables from the last 7 days of conversations (ending yesterday).",
)
def conversation_analysis_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = _yesterday(context)
    return dg.RunRequest(run_key=f"analysis:{day}", partition_key=day, tags={"yarnnn/trigger": "schedule"})


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


SCHEDULES = [memory_nightly_schedule, conversation_analysis_schedule, weekly_digest_schedule]
