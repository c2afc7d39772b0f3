"""Triggers of the ops domain. Run-failure sensor: every failed run becomes an activity event and an operator alert.

The original's scheduler swallowed errors phase by phase and failed silently for weeks; here a
failed run is visible in the Dagster UI, recorded as a ``run_failed`` event for the user(s) it was
working for (run tags ``yarnnn/user_id``, ``yarnnn/user`` or ``yarnnn/users``; the operator
pseudo-user otherwise), and mailed and/or posted to Slack (``YARNNN_OPERATOR_ALERTS``).
"""

import datetime as dt
import html

import dagster as dg

from resources.notifier import Notifier
from resources.warehouse import Warehouse
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.core.runs import OPERATOR_USER, users_from_tags

CONTEXT_TAGS = ("dagster/partition", "dagster/backfill", "dagster/schedule_name", "dagster/sensor_name",
                "yarnnn/trigger")
MAX_ERROR_CHARS = 600


def _first_lines(text: str | None, limit: int = MAX_ERROR_CHARS) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _root_cause(error: object | None) -> str | None:
    """The innermost error's ``Type: message`` (Dagster wraps user errors in its own)."""
    if error is None:
        return None
    while getattr(error, "cause", None) is not None:
        error = error.cause  # type: ignore[attr-defined]
    return str(getattr(error, "message", "") or "").strip() or None


def failure_details(context: dg.RunFailureSensorContext) -> dict:
    run = context.dagster_run
    steps = []
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        steps.append({"step": event.step_key, "error": _first_lines(_root_cause(error) or event.message)})
    run_error = context.failure_event.message
    stats = context.instance.get_run_stats(run.run_id)
    ended = dt.datetime.fromtimestamp(stats.end_time, dt.UTC) if stats and stats.end_time else None
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "tags": {k: v for k, v in run.tags.items() if k in CONTEXT_TAGS},
        "steps": steps,
        "error": _first_lines(run_error),
        "ended_at": ended,
        "users": users_from_tags(dict(run.tags)),
    }


def alert_message(details: dict, ui_base_url: str) -> tuple[str, str, str]:
    """(subject, plain text, html) of the operator alert."""
    partition = details["tags"].get("dagster/partition")
    subject = f"[yarnnn] run failed: {details['job']}" + (f" [{partition}]" if partition else "")
    link = f"{ui_base_url.rstrip('/')}/runs/{details['run_id']}"
    lines = [f"Run {details['run_id']} of {details['job']} failed.", f"Users: {', '.join(details['users'])}"]
    lines += [f"{k}: {v}" for k, v in sorted(details["tags"].items())]
    if details["steps"]:
        lines.append("Failed steps:")
        lines += [f"  - {s['step']}: {s['error']}" for s in details["steps"]]
    else:
        lines.append(f"Error: {details['error']}")
    lines.append(f"Logs: {link}")
    text = "\n".join(lines)
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines[:-1])
    return subject, text, f"<html><body>{body}<p><a href=\"{html.escape(link)}\">Open the run</a></p></body></html>"


@dg.run_failure_sensor(
    name="run_failure_alerts",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes a run_failed event per affected user and alerts the operator (email and/or Slack).",
)
def run_failure_alerts(context: dg.RunFailureSensorContext, warehouse: Warehouse, notifier: Notifier) -> None:
    details = failure_details(context)
    subject, text, html_body = alert_message(details, notifier.ui_base_url)
    if notifier.alert_channels:
        outcome = notifier.notify_operator(subject, text, html_body)
    else:
        outcome = {}
        context.log.warning("no operator alert channel configured (YARNNN_OPERATOR_ALERTS / operator_email / "
                            "operator_slack_channel); the failure is recorded in activity_log only")
    for channel, result in outcome.items():
        (context.log.error if result.startswith("failed") else context.log.info)(f"alert via {channel}: {result}")
    when = details["ended_at"] or dt.datetime.now(dt.UTC)
    first_error = details["steps"][0]["error"] if details["steps"] else details["error"]
    events = [
        ActivityEvent(
            user_id=user, event_type="run_failed",
            summary=f"{subject.removeprefix('[yarnnn] ')}: {first_error.splitlines()[0] if first_error else ''}",
            idempotency_key=f"run:{details['run_id']}", event_ref=details["run_id"],
            metadata={"job": details["job"], "run_id": details["run_id"], "tags": details["tags"],
                      "failed_steps": details["steps"], "notified": outcome},
            created_at=when, event_date=when.date(),
        )
        for user in details["users"]
    ]
    write_events(warehouse.store, events)


SENSORS = [run_failure_alerts]

__all__ = ["OPERATOR_USER", "SENSORS", "alert_message", "failure_details", "run_failure_alerts", "users_from_tags"]
