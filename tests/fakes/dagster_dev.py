"""A real ``dagster dev`` (webserver + daemon + code server) on a free loopback port, for tests.

    with DagsterDev(repo=REPO, dagster_home=..., env={"YARNNN_HOME": ...}) as dev:
        dev.graphql(query, variables)
        dev.wait_for_runs(lambda r: ..., count=2)

It gets its own DAGSTER_HOME (SQLite instance; dequeue loop shortened) and environment. Every
process it starts is tracked by pid: ``stop`` sends SIGTERM to the process group, then SIGKILL to
the group and to any tracked child still alive (``dagster dev`` does not always honour SIGTERM,
and runs launched by the daemon are its grandchildren).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil
import requests

#: The embedded-default instance (as the demo writes it) plus a fast dequeue loop for tests.
TEST_INSTANCE_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: "dagster/backfill"
        limit: 2
  pools:
    default_limit: 2
"""

_WORKSPACE_QUERY = """
query { workspaceOrError { __typename ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
_DAEMONS_QUERY = "query { instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DagsterDevError(RuntimeError):
    pass


class DagsterDev:
    def __init__(self, repo: Path, dagster_home: Path, env: Mapping[str, str] | None = None,
                 instance_yaml: str = TEST_INSTANCE_YAML, workspace: str = "workspace.yaml") -> None:
        self.repo = repo
        self.dagster_home = dagster_home
        self.instance_yaml = instance_yaml
        self.workspace = workspace
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = dagster_home / "dagster_dev.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("YARNNN_", "DAGSTER_"))}
        self.env = {**base, "DAGSTER_HOME": str(dagster_home), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.pids: set[int] = set()

    # ----------------------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 180.0) -> DagsterDev:
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        (self.dagster_home / "dagster.yaml").write_text(self.instance_yaml)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", self.workspace, "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=self.repo, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.pids.add(self.proc.pid)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "not started"
        while time.monotonic() < deadline:
            self.track()
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise DagsterDevError(f"dagster dev exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                ws = self.graphql(_WORKSPACE_QUERY)["workspaceOrError"]
                entries = ws.get("locationEntries") or []
                states = [e["locationOrLoadError"]["__typename"] if e["locationOrLoadError"] else "Loading"
                          for e in entries]
                errors = [e["locationOrLoadError"].get("message") for e in entries
                          if e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"] == "PythonError"]
                if errors:
                    raise DagsterDevError(f"code location failed to load: {errors[0]}")
                daemons = self.graphql(_DAEMONS_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
                unhealthy = [d["daemonType"] for d in daemons if d["required"] and not d["healthy"]]
                if states and all(s == "RepositoryLocation" for s in states) and not unhealthy:
                    return
                last = f"locations={states} unhealthy daemons={unhealthy}"
            except (requests.RequestException, KeyError, TypeError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
        raise DagsterDevError(f"dagster dev not ready after {timeout:.0f}s ({last}):\n{self.log_tail()}")

    def track(self) -> set[int]:
        """Record every live descendant (code server, webserver, daemon, run workers)."""
        if self.proc is None:
            return self.pids
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                self.pids.add(child.pid)
        return self.pids

    def stop(self, grace: float = 5.0) -> None:
        if self.proc is None:
            return
        self.track()
        pgid = self.proc.pid  # start_new_session: the group id is the leader's pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        for pid in sorted(self.pids):
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if proc.is_running():
                    proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace)
        psutil.wait_procs([p for p in (self._proc_or_none(pid) for pid in self.pids) if p is not None], timeout=grace)
        self.proc = None

    @staticmethod
    def _proc_or_none(pid: int) -> psutil.Process | None:
        try:
            return psutil.Process(pid)
        except psutil.Error:
            return None

    def alive_pids(self) -> list[int]:
        return sorted(pid for pid in self.pids if psutil.pid_exists(pid)
                      and self._proc_or_none(pid) is not None
                      and self._proc_or_none(pid).status() != psutil.STATUS_ZOMBIE)  # type: ignore[union-attr]

    def __enter__(self) -> DagsterDev:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, n: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    # ------------------------------------------------------------------------------ queries
    def graphql(self, query: str, variables: Mapping[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        resp = requests.post(f"{self.url}/graphql", json={"query": query, "variables": dict(variables or {})},
                             timeout=timeout)
        resp.raise_for_status()
        body = resp.json()
        if body.get("errors"):
            raise DagsterDevError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def cli_env(self) -> dict[str, str]:
        """Environment for CLI subprocesses that must see the same instance and yarnnn home."""
        return dict(self.env)

    def wait_for_runs(self, predicate: Callable[[Any], bool], count: int, timeout: float = 300.0,
                      poll: float = 1.0) -> list[Any]:
        """Wait until ``count`` runs matching ``predicate`` have finished; returns their DagsterRuns."""
        import dagster as dg

        finished = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
        deadline = time.monotonic() + timeout
        runs: list[Any] = []
        with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            while time.monotonic() < deadline:
                self.track()
                runs = [r for r in instance.get_runs() if predicate(r)]
                if len(runs) >= count and all(r.status in finished for r in runs):
                    return runs
                time.sleep(poll)
        states = [(r.run_id[:8], r.job_name, r.status.value) for r in runs]
        raise DagsterDevError(f"runs not finished after {timeout:.0f}s: {states}\n{self.log_tail()}")
