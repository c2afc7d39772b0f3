"""Memory schedules: the original's 06:00 (analysis) and digest phases.

The 00:00 phase (chat-app sessions into silver, facts, summaries, patterns) is declarative automation on
the assets themselves (``yarn_assets.memory.assets.common.NIGHTLY``/``NIGHTLY_EAGER``).
"""


import datetime as dt

import dagster as dg

from resources.control_plane import ControlPlane
from yarn_assets.core.partitions import previous_partition_schedule
from yarn_assets.memory import digest
from yarn_assets.memory.assets import (
    conversation_analysis_job,
    digest_hours,
    memory_days,
    weekly_digest_job,
)

conversation_analysis_schedule = previous_partition_schedule(
    conversation_analysis_job, memory_days, name="conversation_analysis_schedule", run_key_prefix="analysis",
    hour_of_day=6, description="06:00 UTC: suggest deliverables from the last 7 days of conversations (ending "
    "yesterday).")


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
