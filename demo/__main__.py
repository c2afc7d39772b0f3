"""``python -m demo``: run the whole asset graph on the bundled sample data, locally.

Uses ``.yarnnn/`` (warehouse, SQLite control plane, Dagster instance) unless YARNNN_HOME or
DAGSTER_HOME say otherwise, and the offline LLM unless ANTHROPIC_API_KEY is set.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import warnings
from pathlib import Path


def _prepare_env() -> tuple[Path, Path]:
    home = Path(os.environ.setdefault("YARNNN_HOME", str(Path(".yarnnn").resolve()))).resolve()
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(home / "dagster_home"))).resolve()
    from yarn_assets.core.instance import ensure_instance_dir

    return home, ensure_instance_dir(dagster_home)


def main() -> int:
    home, dagster_home = _prepare_env()
    warnings.filterwarnings("ignore")
    import dagster as dg
    import polars as pl

    from demo.context import DemoContext
    from demo.stages import STAGES
    from io_managers.delta_store import DeltaStore
    from resources.settings import load_settings
    from yarn_assets.core.catalog import all_tables
    from yarn_assets.definitions import build_definitions

    settings = load_settings()
    mode = "offline (deterministic rules, labelled offline-rules)" if settings.llm_offline else "Anthropic API"
    print(f"yarnnn demo: home={home}  DAGSTER_HOME={dagster_home}  LLM={mode}", flush=True)
    instance = dg.DagsterInstance.get()
    ctx = DemoContext(
        settings=settings,
        instance=instance,
        defs=build_definitions(settings),
        now=dt.datetime.now(dt.UTC).replace(microsecond=0),
        workspace_dir=home / "sample_workspace",
    )
    for stage in STAGES:
        stage(ctx)

    store = DeltaStore(settings.resolved_warehouse_root, settings.warehouse_storage_options)
    print("\nTables (Delta, under the warehouse root):")
    for spec in all_tables():
        lf = store.scan(spec)
        count = "(none yet)" if lf is None else f"{lf.select(pl.len()).collect().item()} rows"
        print(f"  {spec.name:<34} {count:>13}   {store.uri(spec)}")
    print(f"\nControl plane: {settings.resolved_control_plane_url}")
    print("Open the UI:  DAGSTER_HOME=" + str(dagster_home) + " .venv/bin/dg dev")
    return 0


if __name__ == "__main__":
    sys.exit(main())
