"""The soak workload and its fault injector (tests/dist/test_soak.py, benchmarks/soak.py).

A workload is N sample users × M simulated days: each day's exports and chats are registered up
front (so a fault-free copy of the same state can be made), then every day runs, in order, chat
ingest, ingest per platform, nightly memory, people and one signal hour. ``run_plan`` sends each
run through ``submit`` (a run worker process whose executor is the configured one) and re-executes
a failed run from its failure, as the instance's run retries do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from control_plane import db
from demo.sample_chats import generate_chats
from demo.sample_workspace import USERS, generate_workspace
from resources.settings import YarnSettings, load_settings
from yarn_assets.core.partitions import ingest_key
from yarn_assets.core.shards import DEFAULT_SHARDS, shard_keys
from yarn_assets.ingest import import_jobs
from yarn_assets.memory.assets import day_key

Step = tuple[str, str]  # (job name, partition key)


def job_named(name: str) -> dg.JobDefinition:
    """Reconstructed by name in every run worker and Celery worker."""
    from yarn_assets.definitions import build_definitions

    return build_definitions(load_settings()).resolve_job_def(name)


def register_days(settings: YarnSettings, days: Sequence[dt.date], workdir: Path) -> dict[dt.date, set[str]]:
    """Each day's sample exports and chats, registered as imports of that day; platforms per day."""
    url = settings.resolved_control_plane_url
    platforms: dict[dt.date, set[str]] = {}
    for day in days:
        now = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(6), tzinfo=dt.UTC)
        workspace = generate_workspace(workdir / f"ws-{day}", now=now)
        chats = generate_chats(workdir / f"chats-{day}", now, {u.id: u.timezone for u in USERS})
        with db.session_scope(url) as s:
            for export in workspace.exports:
                job, _ = import_jobs.register_import(s, user_id=export.user_id, path=export.path,
                                                     archive_root=settings.resolved_home / "imports",
                                                     provider=export.provider, partition_date=day)
                platforms.setdefault(day, set()).add(job.platform)
            for user_id, path in chats.items():
                import_jobs.register_import(s, user_id=user_id, path=path, provider="chat_jsonl",
                                            archive_root=settings.resolved_home / "imports", partition_date=day)
    return platforms


def plan(platforms: dict[dt.date, set[str]], only: set[str] | None = None) -> list[Step]:
    """The runs of every day, in dependency order (imports of other platforms stay registered)."""
    if only is not None:
        platforms = {day: names & only for day, names in platforms.items()}
    steps: list[Step] = []
    for day in sorted(platforms):
        d = day.isoformat()
        steps.append(("chat_ingest_job", d))
        steps += [("ingest_job", ingest_key(d, p)) for p in sorted(platforms[day])]
        steps += [("memory_nightly_job", day_key(d, s)) for s in shard_keys(DEFAULT_SHARDS)]  # every user shard
        steps += [("people_job", ingest_key(d, p)) for p in sorted(platforms[day])]
        # the hour × user-shard partitions of the day's last hour (every shard: the fan-out unit)
        steps += [("signals_job", str(dg.MultiPartitionKey({"hour": f"{d}-23:00", "shard": s})))
                  for s in shard_keys(DEFAULT_SHARDS)]
    return steps


def run_in_process(settings: YarnSettings, steps: Sequence[Step], instance: dg.DagsterInstance) -> None:
    """The fault-free reference: the same runs, in this process."""
    from yarn_assets.definitions import build_definitions

    defs = build_definitions(settings)
    for job, key in steps:
        result = defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=key)
        assert result.success, f"{job} [{key}] failed in the reference run"


def _execute(job: str, key: str, parent: str | None) -> str:
    with dg.DagsterInstance.get() as instance:
        recon = dg.build_reconstructable_job("tests.dist.soak", "job_named", reconstructable_args=(job,))
        if parent is None:
            result = dg.execute_job(recon, instance=instance, tags={"dagster/partition": key}, raise_on_error=False)
        else:
            options = dg.ReexecutionOptions.from_failure(parent, instance)
            # the API does not carry the parent's tags over (the UI does): the partition must be passed again
            result = dg.execute_job(recon, instance=instance, reexecution_options=options, raise_on_error=False,
                                    tags={"dagster/partition": key})
        return result.run_id


@dataclass
class Outcome:
    runs: int = 0
    retried: list[Step] = field(default_factory=list)


def run_plan(steps: Sequence[Step], max_attempts: int = 4) -> Outcome:
    """Each run in a spawned run-worker process; a failed run is re-executed from its failure."""
    from tests.dist.engines import in_spawned_process

    outcome = Outcome()
    for job, key in steps:
        parent: str | None = None
        for _attempt in range(max_attempts):
            run_id = in_spawned_process(_execute, job, key, parent)
            outcome.runs += 1
            with dg.DagsterInstance.get() as instance:
                run = instance.get_run_by_id(run_id)
            if run is not None and run.status == dg.DagsterRunStatus.SUCCESS:
                break
            outcome.retried.append((job, key))
            # re-execute from the failure when the run got as far as its steps; a run that failed
            # before (executor init: broker or instance unreachable) is re-run whole (idempotent)
            started = run is not None and any(
                True for _ in instance_logs(run_id, dg.DagsterEventType.STEP_START))
            parent = run_id if started else None
        else:
            raise AssertionError(f"{job} [{key}] still failing after {max_attempts} attempts")
    return outcome


def instance_logs(run_id: str, event_type: dg.DagsterEventType) -> list[dg.EventLogEntry]:
    with dg.DagsterInstance.get() as instance:
        return list(instance.all_logs(run_id, of_type=event_type))


class Faults(threading.Thread):
    """Injects faults while the plan runs, each when the Celery workers have received their n-th
    step task (the step is then running): ``actions`` maps that count to a fault."""

    TASK = re.compile(r"Task execute_plan\[[0-9a-f-]+\] received")

    def __init__(self, logs: Sequence[Path], actions: dict[int, tuple[str, Callable[[], None]]]) -> None:
        super().__init__(daemon=True)
        self.logs = list(logs)
        self.actions = dict(actions)
        self.fired: list[str] = []
        self.errors: list[str] = []
        self._halt = threading.Event()

    def received(self) -> int:
        return sum(len(self.TASK.findall(p.read_text(errors="replace"))) for p in self.logs if p.exists())

    def run(self) -> None:
        while not self._halt.is_set() and self.actions:
            seen = self.received()
            for n in sorted(k for k in self.actions if k <= seen):
                name, fault = self.actions.pop(n)
                time.sleep(1.0)  # well inside the step (loading the definitions alone takes longer)
                try:
                    fault()
                    self.fired.append(name)
                except Exception as exc:
                    self.errors.append(f"{name}: {exc!r}")
            time.sleep(0.2)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def kill_busy_pool_process(pids: Callable[[], list[int]]) -> int:
    """SIGKILL the pool process that is running a step (the busiest over a short sample): the
    step dies mid-way. Returns its pid."""
    import psutil

    def cpu(pid: int) -> float:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            return t.user + t.system
        return 0.0

    before = {pid: cpu(pid) for pid in pids()}
    if not before:
        raise RuntimeError("no pool process to kill")
    time.sleep(0.5)
    busiest = max(before, key=lambda pid: cpu(pid) - before[pid])
    os.kill(busiest, signal.SIGKILL)
    return busiest


def terminate_pg_backends(dbname: str) -> int:
    """pg_terminate_backend on every connection to ``dbname`` (the Dagster instance's database)."""
    import psycopg2

    conn = psycopg2.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))
            rows = cur.fetchall()
    finally:
        conn.close()
    return len(rows)
