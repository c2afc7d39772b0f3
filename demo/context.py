"""What every demo stage gets: settings, the Dagster instance, the definitions, a fixed 'now'."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from resources.settings import YarnSettings
from yarn_assets.cli.common import quiet_run_config


@dataclass
class DemoContext:
    settings: YarnSettings
    instance: dg.DagsterInstance
    defs: dg.Definitions
    now: dt.datetime
    workspace_dir: Path
    summary: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def today(self) -> str:
        return self.now.date().isoformat()

    def run_job(self, job_name: str, partition_key: str | None = None, **kwargs: Any) -> Any:
        """Submit the job to the instance (queued when a daemon serves it, else run here) and wait for it."""
        from yarn_assets.core.submit import RecordedRun, submit_run

        kwargs.setdefault("run_config", quiet_run_config())
        run = submit_run(job_name, settings=self.settings, instance=self.instance, partition=partition_key,
                         wait=True, tags={"yarnnn/trigger": "demo", **kwargs.pop("tags", {})}, **kwargs)
        if not run.success:
            raise SystemExit(f"demo: {job_name} [{partition_key}] {run.status}; see run {run.run_id} in the UI")
        return RecordedRun(self.instance, run.run_id)

    def note(self, line: str) -> None:
        self.summary.append(line)
        print(line, flush=True)
