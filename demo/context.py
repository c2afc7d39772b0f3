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

    def run_job(self, job_name: str, partition_key: str | None = None, **kwargs: Any) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(job_name)
        kwargs.setdefault("run_config", quiet_run_config())
        result = job.execute_in_process(instance=self.instance, partition_key=partition_key, **kwargs)
        if not result.success:
            raise SystemExit(f"demo: {job_name} [{partition_key}] failed; see `dagster dev` run logs")
        return result

    def note(self, line: str) -> None:
        self.summary.append(line)
        print(line, flush=True)
