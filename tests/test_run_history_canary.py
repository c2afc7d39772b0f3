"""Run history keeps no item text: a canary test over every stage of the demo.

Every sample user's content carries a unique marker (``ALICE-CANARY-7Q2``…) on every platform.
After the whole asset graph ran over the sample workspace (imports, memory, signals,
deliverables, housekeeping), no event of any run (materialization metadata, check metadata,
log lines, step outputs) may contain one: the Dagster event log outlives the content TTL.
The rows themselves stay reachable on demand, one user at a time (``yarnnn preview``).
"""

import datetime as dt

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from demo.context import DemoContext
from demo.sample_workspace import USERS
from demo.stages import STAGES
from io_managers.delta_store import DeltaStore
from resources.settings import load_settings
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.definitions import build_definitions

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _event_texts(instance: dg.DagsterInstance) -> list[tuple[str, str]]:
    out = []
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            data = repr(event.event_specific_data) if event is not None and event.event_specific_data else ""
            where = f"{run.job_name}/{event.event_type_value if event else 'LOG'}"
            out.append((where, f"{entry.user_message}\n{data}"))
    return out


def test_no_run_event_of_the_whole_demo_carries_item_text(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YARNNN_EXECUTOR", "in_process")
    settings = load_settings()
    markers = [u.marker for u in USERS if u.marker]
    with dg.instance_for_test() as instance:
        ctx = DemoContext(settings=settings, instance=instance, defs=build_definitions(settings),
                          now=dt.datetime.now(dt.UTC).replace(microsecond=0), workspace_dir=tmp_path / "workspace")
        for stage in STAGES:
            stage(ctx)
        texts = _event_texts(instance)
    assert len(texts) > 500  # the whole graph ran

    silver = DeltaStore(settings.resolved_warehouse_root).read(PLATFORM_CONTENT)
    for marker in markers:  # the canaries are in the data...
        assert silver.filter(pl.col("content").str.contains(marker, literal=True)).height > 0, marker
    leaks = [(where, marker) for where, text in texts for marker in markers if marker in text]
    assert not leaks, leaks[:10]  # ...and nowhere in run history

    from yarn_assets.cli import main

    out = CliRunner().invoke(main, ["preview", "silver/platform_content", "--user", "alice", "--limit", "200",
                                    "--columns", "user_id,platform,content"], catch_exceptions=False).output
    assert markers[0] in out and not any(m in out for m in markers[1:])  # on demand, one user at a time
