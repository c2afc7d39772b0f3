"""One way to run things: every CLI/demo trigger becomes a run on the Dagster instance.

:func:`submit_run` records the run on the instance the UI reads (``DAGSTER_HOME``, or the
embedded one under the yarnnn home, see :func:`yarn_assets.core.instance.instance_for`). When a
daemon serves the run queue (``dg dev`` or ``dagster-daemon run``), the run is *submitted*: it
waits in the queue, so run concurrency limits, pools, run retries and run monitoring apply, and
it is launched from the code location exactly like a sensor's or the UI's run. Without a daemon
the queue would hold the run forever, so the run executes in this process instead (still recorded
on the instance, tagged ``yarnnn/launched_by=cli-in-process``), which the output says.

The code location is named, not imported (``CODE_LOCATION_MODULE``): the assembly sits above
every layer that triggers runs (tests/test_import_layers.py).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from yarn_assets.core.runs import host_tags

CODE_LOCATION_MODULE = "yarn_assets.definitions"
CODE_LOCATION_NAME = "yarnnn"
#: Tag telling how a CLI run was started: ``queue`` (submitted) or ``cli-in-process`` (no daemon).
LAUNCHED_BY_TAG = "yarnnn/launched_by"
_DAEMON_TYPE = "QUEUED_RUN_COORDINATOR"


@dataclass(frozen=True)
class SubmittedRun:
    run_id: str
    status: str  # DagsterRunStatus value (QUEUED/STARTED/... or SUCCESS/FAILURE/CANCELED when waited)
    queued: bool  # True: through the run queue; False: executed in this process (no daemon)

    @property
    def success(self) -> bool:
        return self.status == dg.DagsterRunStatus.SUCCESS.value

    @property
    def finished(self) -> bool:
        return self.status in {s.value for s in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
                                                  dg.DagsterRunStatus.CANCELED)}


@dataclass(frozen=True)
class RecordedRun:
    """A finished run read back from the instance: what ``execute_in_process`` used to return."""

    instance: dg.DagsterInstance
    run_id: str

    def _events(self, event_type: Any) -> list[Any]:
        records = self.instance.get_records_for_run(self.run_id, of_type=event_type, limit=10_000).records
        return [r.event_log_entry.dagster_event for r in records if r.event_log_entry.dagster_event]

    def asset_materializations_for_node(self, node: str) -> list[dg.AssetMaterialization]:
        from dagster._core.events import DagsterEventType

        return [e.event_specific_data.materialization for e in self._events(DagsterEventType.ASSET_MATERIALIZATION)
                if e.step_key == node]

    def get_asset_check_evaluations(self) -> list[dg.AssetCheckEvaluation]:
        from dagster._core.events import DagsterEventType

        return [e.event_specific_data for e in self._events(DagsterEventType.ASSET_CHECK_EVALUATION)]

    def step_failure_messages(self) -> list[str]:
        from dagster._core.events import DagsterEventType

        return [e.event_specific_data.error.message.strip() for e in self._events(DagsterEventType.STEP_FAILURE)
                if e.event_specific_data is not None and e.event_specific_data.error is not None]


def queue_is_served(instance: dg.DagsterInstance) -> bool:
    """Whether a daemon is dequeuing runs for this instance (a recent healthy heartbeat)."""
    from dagster._daemon.controller import get_daemon_statuses

    try:
        status = get_daemon_statuses(instance, [_DAEMON_TYPE], ignore_errors=True)[_DAEMON_TYPE]
    except Exception:  # no daemon storage yet, or a daemon type this instance does not run
        return False
    return bool(status.healthy) and status.required


def submit_run(
    job_name: str,
    *,
    settings: Any,
    instance: dg.DagsterInstance,
    partition: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
    asset_selection: Iterable[dg.AssetKey] | None = None,
    wait: bool = False,
    timeout_seconds: float = 3600.0,
    on_status: Callable[[str], None] | None = None,
) -> SubmittedRun:
    """Submit ``job_name`` (optionally one partition / an asset subset) to the instance.

    ``wait`` follows a queued run to the end (``on_status`` hears each status change); a run
    executed in this process (no daemon) is always finished when this returns.
    """
    run_tags = {"yarnnn/trigger": "cli", **(tags or {})}
    if partition is not None:
        run_tags["dagster/partition"] = partition
    selection = frozenset(asset_selection) if asset_selection else None
    if queue_is_served(instance):
        run_id = _submit_to_queue(instance, job_name, dict(run_config or {}), run_tags, selection)
        status = _status(instance, run_id)
        if on_status:
            on_status(status)
        if wait:
            status = wait_for_run(instance, run_id, timeout_seconds=timeout_seconds, on_status=on_status)
        return SubmittedRun(run_id, status, queued=True)
    definitions = importlib.import_module(CODE_LOCATION_MODULE).build_definitions(settings)
    job = definitions.resolve_job_def(job_name)
    run_tags.pop("dagster/partition", None)
    result = job.execute_in_process(
        instance=instance, partition_key=partition, run_config=dict(run_config or {}),
        asset_selection=list(selection) if selection else None,
        tags={**run_tags, LAUNCHED_BY_TAG: "cli-in-process", **host_tags()}, raise_on_error=False,
    )
    return SubmittedRun(result.run_id, _status(instance, result.run_id), queued=False)


def wait_for_run(instance: dg.DagsterInstance, run_id: str, *, timeout_seconds: float = 3600.0,
                 poll_seconds: float = 1.0, on_status: Callable[[str], None] | None = None) -> str:
    """Poll the run until it finishes (or ``timeout_seconds`` pass); returns its last status."""
    deadline = time.monotonic() + timeout_seconds
    last = _status(instance, run_id)
    while time.monotonic() < deadline:
        status = _status(instance, run_id)
        if status != last and on_status:
            on_status(status)
        last = status
        if SubmittedRun(run_id, status, True).finished:
            break
        time.sleep(poll_seconds)
    return last


def _status(instance: dg.DagsterInstance, run_id: str) -> str:
    run = instance.get_run_by_id(run_id)
    return run.status.value if run else "UNKNOWN"


def _submit_to_queue(instance: dg.DagsterInstance, job_name: str, run_config: dict[str, Any],
                     tags: dict[str, str], asset_selection: frozenset[dg.AssetKey] | None) -> str:
    """Create the run from the code location (as the UI does) and put it in the run queue."""
    from dagster._core.definitions.selector import JobSubsetSelector
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

    root = Path(importlib.import_module("yarn_assets").__file__ or ".").resolve().parents[1]
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name=CODE_LOCATION_MODULE, working_directory=str(root)),
        location_name=CODE_LOCATION_NAME,
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin), version=dg.__version__,
                                 read_only=False) as process_context:
        workspace = process_context.create_request_context()
        location = workspace.get_code_location(CODE_LOCATION_NAME)
        (repo,) = location.get_repositories().values()
        selector = JobSubsetSelector(location_name=location.name, repository_name=repo.name, job_name=job_name,
                                     op_selection=None, asset_selection=asset_selection)
        remote_job = location.get_job(selector)
        plan = location.get_execution_plan(remote_job, run_config, step_keys_to_execute=None, known_state=None,
                                           instance=instance)
        run = instance.create_run(
            job_name=job_name, run_id=None, run_config=run_config,
            resolved_op_selection=remote_job.resolved_op_selection,
            step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute, op_selection=None,
            status=None, root_run_id=None, parent_run_id=None,
            tags={**remote_job.tags, **tags, LAUNCHED_BY_TAG: "queue"},
            job_snapshot=remote_job.job_snapshot, execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot, remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(), asset_selection=asset_selection,
            asset_check_selection=None, asset_graph=repo.asset_graph,
        )
        instance.submit_run(run.run_id, workspace)
    return run.run_id


#: Repository name of a code location built from one ``Definitions`` object.
REPOSITORY_NAME = "__repository__"


def queue_run(instance: dg.DagsterInstance, job: Any, *, location_name: str = CODE_LOCATION_NAME,
               partition_key: str | None = None, run_config: Mapping[str, Any] | None = None,
               tags: Mapping[str, str] | None = None, module: str = CODE_LOCATION_MODULE) -> dg.DagsterRun:
    """Queue a run of ``job`` (a resolved ``JobDefinition``) on the instance; the daemon launches it. Always
    queued, never executed here: the API's triggers use it (the CLI's :func:`submit_run` falls back to
    executing in its own process when no daemon serves the queue).

    Nothing executes in the calling process (the API, a CLI): the run is created with the remote
    origin of the code location ``location_name`` (as the workspace names it) and submitted to the
    instance's run coordinator — the ``QueuedRunCoordinator`` of the embedded and production
    instances — so the daemon dequeues it, honouring run concurrency limits, and launches it through
    the code server like a run launched from the UI.
    """
    import os
    import sys

    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin

    all_tags = dict(tags or {})
    if partition_key is not None:
        all_tags["dagster/partition"] = partition_key
    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(RegisteredCodeLocationOrigin(location_name), REPOSITORY_NAME),
        job_name=job.name,
    )
    python_origin = JobPythonOrigin(job.name, RepositoryPythonOrigin(
        executable_path=sys.executable, code_pointer=ModuleCodePointer(module, "defs", os.getcwd())))
    run = instance.create_run_for_job(job_def=job, run_config=dict(run_config or {}), tags=all_tags,
                                      remote_job_origin=origin, job_code_origin=python_origin)
    return instance.submit_run(run.run_id, workspace=None)  # type: ignore[arg-type]
