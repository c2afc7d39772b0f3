"""The embedded Dagster instance (SQLite under ``DAGSTER_HOME``) used by the demo, the CLI and laptops.

Production uses ``deploy/dagster.postgres.yaml``; both carry the same crash-recovery settings:
run monitoring with :class:`yarn_assets.core.runs.LocalRunLauncher` (a run whose worker died is
marked failed) and ``run_retries`` (such a run is re-executed once; a failing asset is retried by
its own ``RetryPolicy``, not here).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import DagsterInstance

INSTANCE_YAML = """\
# Embedded default instance: SQLite storage under this folder (see deploy/dagster.postgres.yaml).
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: "dagster/backfill"
        limit: 2
      # one sync run per connection at a time (tag set by the sync sensor and the CLI)
      - key: "yarnnn/connection"
        value: {applyLimitPerUniqueValue: true}
        limit: 1
  pools:
    default_limit: 2
# runs launched by the daemon go through a launcher that can tell a dead run worker from a slow one
run_launcher:
  module: yarn_assets.core.runs
  class: LocalRunLauncher
# a run whose worker died (kill -9, OOM, restart) is marked failed (which alerts) ...
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
# ... and re-executed once from the failed step; a failing asset is retried by its RetryPolicy instead
run_retries:
  enabled: true
  max_retries: 1
  retry_on_asset_or_op_failure: false
"""


def ensure_instance_dir(dagster_home: Path) -> Path:
    """Create ``dagster_home`` with the embedded ``dagster.yaml`` unless one is already there."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    cfg = dagster_home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(INSTANCE_YAML)
    return dagster_home


@contextmanager
def instance_for(home: Path) -> Iterator[DagsterInstance]:
    """The instance the UI reads: ``DAGSTER_HOME`` when set, else ``<yarnnn home>/dagster_home``.

    The CLI and the demo default to the folder ``dg dev`` is told to use in the README, so their runs
    land on the same instance as the daemon's and show in the UI (never a throwaway instance).
    """
    if os.environ.get("DAGSTER_HOME"):
        with DagsterInstance.get() as instance:
            yield instance
        return
    with DagsterInstance.from_config(str(ensure_instance_dir(home / "dagster_home"))) as instance:
        yield instance
