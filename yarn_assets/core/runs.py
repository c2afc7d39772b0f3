"""Is the run that holds a job still alive? Run-worker health for Dagster run monitoring.

Dagster's ``DefaultRunLauncher`` cannot tell whether a run worker is alive, so a run whose
process was SIGKILLed together with its code server (a host restart, an OOM kill of the whole
service) stays ``STARTED`` forever and run monitoring only offers a maximum runtime.
:class:`LocalRunLauncher` is that launcher plus a health check: every run worker reports its pid
in the run's ``RUN_START`` event; a worker on this host whose pid is gone (or now belongs to a
younger process) is ``FAILED``, so the monitoring daemon marks the run failed and ``run_retries``
re-executes it. Runs of another host are always reported ``RUNNING`` (never failed on a guess).

The same check tells the import sensor and ``yarnnn import run`` whether a ``processing`` import
job or an unmerged bronze batch still has a live owner (:func:`run_state`).
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Mapping
from typing import Any, Literal

import psutil
from dagster import DagsterInstance, DagsterRun
from dagster._core.events import DagsterEventType
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, LaunchRunContext, WorkerStatus

#: Run tag naming the host whose processes execute the run (pids are only meaningful there).
HOST_TAG = "yarnnn/worker_host"
_LOCAL = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
#: Slack between a process's start and the RUN_START event it wrote (clock granularity).
_SLACK_SECONDS = 2.0

RunState = Literal["alive", "dead"]

#: activity_log user for failures that belong to no user (maintenance, multi-user syncs without tags).
OPERATOR_USER = "_operator"
#: Run tags that name the user(s) a run works for (comma-separated lists allowed).
USER_TAGS = ("yarnnn/user_id", "yarnnn/user", "yarnnn/users")


def users_from_tags(tags: Mapping[str, str]) -> list[str]:
    """The users a run works for, from its tags; the operator pseudo-user when it names none."""
    users: list[str] = []
    for key in USER_TAGS:
        users += [u.strip() for u in (tags.get(key) or "").split(",") if u.strip()]
    return sorted(set(users)) or [OPERATOR_USER]


def host_tags() -> dict[str, str]:
    """Tags for a run executed in this process (``execute_in_process``): its worker is on this host."""
    return {HOST_TAG: socket.gethostname()}


def worker_health(instance: DagsterInstance, run: DagsterRun) -> tuple[WorkerStatus, str]:
    """RUNNING unless the run worker verifiably died on this host (then FAILED, with why)."""
    host = run.tags.get(HOST_TAG)
    if host != socket.gethostname():
        return WorkerStatus.RUNNING, f"run worker on host {host or 'unknown'}: not checked from here"
    records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_START, limit=1).records
    entry = records[0].event_log_entry if records else None
    pid = entry.dagster_event.pid if entry is not None and entry.dagster_event is not None else None
    if entry is None or pid is None:
        return WorkerStatus.RUNNING, "run worker not started yet"
    try:
        started = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return WorkerStatus.FAILED, f"run worker process {pid} is gone"
    except psutil.Error as exc:
        return WorkerStatus.RUNNING, f"run worker process {pid} not inspectable: {exc}"
    if started > entry.timestamp + _SLACK_SECONDS:
        return WorkerStatus.FAILED, f"run worker process {pid} is gone (the pid now belongs to a newer process)"
    return WorkerStatus.RUNNING, f"run worker process {pid} alive"


def run_state(instance: DagsterInstance | None, run_id: str | None, *, since: dt.datetime | None,
              stale_after: dt.timedelta, now: dt.datetime) -> tuple[RunState, str]:
    """Whether the run that owns a job/batch is still alive, and why.

    A run the instance knows is judged by its status (and, while in progress, by its worker's
    health); an unknown run (another instance, or none recorded) is presumed dead once ``since``
    is older than ``stale_after``.
    """
    run = instance.get_run_by_id(run_id) if instance is not None and run_id else None
    if run is None:
        if since is not None and now - since < stale_after:
            return "alive", f"run {run_id or '?'} unknown here, owner active {int((now - since).total_seconds())} s ago"
        return "dead", f"run {run_id or '?'} unknown and no progress for over {int(stale_after.total_seconds())} s"
    if run.is_finished:
        return "dead", f"run {run.run_id} ended {run.status.value}"
    status, why = worker_health(instance, run)  # type: ignore[arg-type]
    return ("dead" if status == WorkerStatus.FAILED else "alive"), why


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` with a run-worker health check (for ``run_monitoring``).

    Runs it launches through a code server on this host are tagged with the host, so their
    workers' pids can be checked; the health check never fails a run of another host.
    """

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        origin = run.remote_job_origin
        if context.workspace is not None and origin is not None:
            location = context.workspace.get_code_location(origin.repository_origin.code_location_origin.location_name)
            client: Any = getattr(location, "client", None)
            host = getattr(client, "host", None)
            if host in _LOCAL or host == socket.gethostname():
                self._instance.add_run_tags(run.run_id, host_tags())
                run = self._instance.get_run_by_id(run.run_id) or run
                context = LaunchRunContext(dagster_run=run, workspace=context.workspace)
        super().launch_run(context)

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        status, why = worker_health(self._instance, run)
        return CheckRunHealthResult(status, why)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]) -> LocalRunLauncher:
        return cls(inst_data=inst_data)
