"""Daily maintenance: compaction merges small files, vacuum respects its retention, data unchanged."""

import datetime as dt
from pathlib import Path

import dagster as dg

from io_managers.delta_store import DeltaStore
from resources.maintenance import Maintenance
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.core.catalog import all_tables
from yarn_assets.core.tables import ACTIVITY_LOG
from yarn_assets.ops.assets import table_maintenance

YESTERDAY = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
DAY = YESTERDAY.date().isoformat()  # the daily partition the maintenance run covers


def _many_small_commits(store: DeltaStore, n: int = 6) -> None:
    for i in range(n):
        when = YESTERDAY + dt.timedelta(hours=i)
        write_events(store, [ActivityEvent(user_id="alice", event_type="chat_session", summary=f"session {i}",
                                           idempotency_key=f"s{i}", created_at=when)])


def _parquet_files(store: DeltaStore, table: str) -> int:
    return sum(1 for _ in Path(store.uri(table)).rglob("*.parquet"))


def _run(resources: dict, retention: int) -> dg.ExecuteInProcessResult:  # type: ignore[type-arg]
    return dg.materialize([table_maintenance], partition_key=DAY,
                          resources={**resources, "maintenance": Maintenance(vacuum_retention_hours=retention)})


def test_compaction_then_safe_vacuum_keeps_recent_files(store, resources) -> None:  # type: ignore[no-untyped-def]
    _many_small_commits(store)
    rows = store.read(ACTIVITY_LOG).sort("event_id")
    files_before = store.files(ACTIVITY_LOG).height
    assert files_before >= 6
    result = _run(resources, 168)
    assert result.success
    md = result.asset_materializations_for_node("ops__table_maintenance")[0].metadata
    per_table = md["per_table"].value
    assert set(per_table) == {spec.name for spec in all_tables()}
    log = per_table[ACTIVITY_LOG.name]
    assert log["exists"] and log["files_before"] == files_before and log["files_after"] == 1
    assert log["compact_files_removed"] == files_before and log["compact_files_added"] == 1
    assert log["compact_bytes_removed"] > 0
    assert log["vacuumed_files"] == 0  # nothing is older than 168 h: time travel still works
    assert _parquet_files(store, ACTIVITY_LOG.name) == files_before + 1
    assert not per_table["silver/platform_content"]["exists"]  # absent tables are reported, not created
    assert not store.exists("silver/platform_content")
    assert md["vacuum_retention_hours"].value == 168
    assert store.read(ACTIVITY_LOG).sort("event_id").equals(rows)


def test_vacuum_with_a_short_retention_removes_the_compacted_files(store, resources) -> None:  # type: ignore[no-untyped-def]
    _many_small_commits(store)
    files_before = store.files(ACTIVITY_LOG).height
    rows = store.read(ACTIVITY_LOG).sort("event_id")
    result = _run(resources, 0)  # explicit opt-in below Delta's 168 h minimum
    md = result.asset_materializations_for_node("ops__table_maintenance")[0].metadata
    log = md["per_table"].value[ACTIVITY_LOG.name]
    assert log["vacuumed_files"] == files_before
    assert log["vacuumed_bytes"] > 0
    assert _parquet_files(store, ACTIVITY_LOG.name) == 1
    assert store.read(ACTIVITY_LOG).sort("event_id").equals(rows)
    again = _run(resources, 0).asset_materializations_for_node("ops__table_maintenance")[0].metadata
    assert again["per_table"].value[ACTIVITY_LOG.name]["compact_files_removed"] == 0
    assert again["vacuumed_files"].value == 0
    assert again["per_table"].value[ACTIVITY_LOG.name]["files_after"] == 1
