"""Real Celery worker processes and a private redis-server, for the distributed-engine tests.

    with CeleryWorkers(repo, env, names=["w1", "w2"]) as workers:   # `celery -A dagster_celery.app worker`
        workers.step_pids()       # pids of the pool processes (the ones that execute steps)

Each worker is one `celery worker` process (prefork pool, concurrency 1) started in a session of
its own with the settings module in ``deploy/celery`` on PYTHONPATH, exactly as deploy/celery
describes. ``stop`` SIGTERMs each group, then SIGKILLs whatever of it is still alive.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import TypeVar

import psutil

from tests.fakes.dagster_dev import free_port

T = TypeVar("T")


def _execute(job_fn: Callable[[], object], partition: str, tags: Mapping[str, str]) -> str:
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(job_fn), instance=instance,
                                tags={"dagster/partition": partition, **tags}, raise_on_error=False)
        return result.run_id


def in_spawned_process(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a fresh spawned process, as a run worker: Celery keeps process-global app
    state, and deltalake's runtime never crosses a fork."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def submit(job_fn: Callable[[], object], partition: str, tags: Mapping[str, str] | None = None) -> str:
    """Run a job partition in a run-worker process of its own; returns the run id."""
    return in_spawned_process(_execute, job_fn, partition, dict(tags or {}))


class CeleryWorkers:
    def __init__(self, repo: Path, env: Mapping[str, str], names: Sequence[str], log_dir: Path,
                 concurrency: int = 1) -> None:
        self.repo = repo
        self.env = dict(env)
        self.names = list(names)
        self.log_dir = log_dir
        self.concurrency = concurrency
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start_one(self, name: str, timeout: float = 90.0) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path(name)
        pythonpath = os.pathsep.join([str(self.repo / "deploy" / "celery"), str(self.repo),
                                      self.env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        cmd = [str(Path(sys.executable).with_name("celery")), "-A", "dagster_celery.app", "worker",
               "-Q", "dagster", "-n", f"{name}@%h", "--concurrency", str(self.concurrency),
               "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "-l", "INFO"]
        with log.open("ab") as out:
            self.procs[name] = subprocess.Popen(
                cmd, cwd=self.repo, env={**self.env, "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"},
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"celery worker {name} exited:\n{self.log_tail(name)}")
            if " ready." in log.read_text(errors="replace"):
                return
            time.sleep(0.3)
        raise RuntimeError(f"celery worker {name} not ready after {timeout:.0f}s:\n{self.log_tail(name)}")

    def start(self) -> CeleryWorkers:
        try:
            for name in self.names:
                self.start_one(name)
        except BaseException:
            self.stop()
            raise
        return self

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"celery-{name}.log"

    def log_tail(self, name: str, n: int = 40) -> str:
        path = self.log_path(name)
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""

    def step_pids(self, name: str) -> list[int]:
        """Pool processes of a worker: the processes that run the steps."""
        with contextlib.suppress(psutil.Error):
            return [c.pid for c in psutil.Process(self.procs[name].pid).children()]
        return []

    def stop_one(self, name: str, grace: float = 10.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        tree = [proc.pid]
        with contextlib.suppress(psutil.Error):
            tree += [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in tree:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)

    def stop(self) -> None:
        for name in list(self.procs):
            self.stop_one(name)

    def __enter__(self) -> CeleryWorkers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PrivateRedis:
    """A redis-server of the test's own on a free loopback port, with an append-only file so a
    restart keeps the queue (what a production broker must do, see docs/OPERATIONS.md)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> PrivateRedis:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=(self.workdir / "redis.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        import redis

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping():
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"redis-server on {self.port} did not start")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, down_seconds: float = 1.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
