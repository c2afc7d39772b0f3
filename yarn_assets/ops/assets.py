"""Housekeeping assets: hourly TTL cleanup of every copy of a body, daily Delta compaction and vacuum.

Both are partitioned by the period they cover, so a run is idempotent per partition and a missed
hour or day can be backfilled. Their materializations are the audit record (what was removed,
which files were touched); the tables they act on are the shared bronze/silver/gold tables.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from resources.control_plane import ControlPlane
from resources.maintenance import Maintenance
from resources.runtime import Runtime
from resources.warehouse import Warehouse
from yarn_assets.core.activity_log import write_events
from yarn_assets.core.catalog import all_tables
from yarn_assets.core.partitions import PARTITIONS_START
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.ops import cleanup
from yarn_assets.ops.maintenance import maintain
from yarn_assets.ops.maintenance import summary_table as maintenance_summary

CONTENT_CLEANUP = dg.AssetKey(["ops", "content_cleanup"])
TABLE_MAINTENANCE = dg.AssetKey(["ops", "table_maintenance"])

#: What the hourly cleanup reads and deletes from: bronze bodies (imports and syncs), silver content and
#: the people vectors of deleted items. Any partition can hold an expired row, so every partition is read.
CLEANED = (
    dg.AssetKey(["bronze", "platform_items", "imports"]),
    dg.AssetKey(["bronze", "platform_items", "syncs"]),
    dg.AssetKey(["silver", "platform_content"]),
    dg.AssetKey(["silver", "content_vectors"]),
)
CODE_VERSION = "1"

#: Housekeeping rewrites files that writers also touch; one at a time is plenty.
MAINTENANCE_POOL = "warehouse_maintenance"

cleanup_hours = dg.HourlyPartitionsDefinition(start_date=f"{PARTITIONS_START}-00:00", timezone="UTC")
maintenance_days = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")

HOUSEKEEPING_RETRY = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL,
                                    jitter=dg.Jitter.PLUS_MINUS)


def _window_end(context: AssetExecutionContext) -> dt.datetime:
    return context.partition_time_window.end.astimezone(dt.UTC)


@dg.asset(
    key=CONTENT_CLEANUP,
    partitions_def=cleanup_hours,
    deps=[dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping()) for key in CLEANED],
    code_version=CODE_VERSION,
    group_name="ops",
    kinds={"deltalake", "polars"},
    owners=["team:data-platform"],
    pool=MAINTENANCE_POOL,
    retry_policy=HOUSEKEEPING_RETRY,
    description=(
        "Hourly TTL enforcement (cutoff = end of the hour partition): deletes expired, non-retained rows "
        "of silver/platform_content (only the files holding them; a row a deliverable marked in "
        "gold/retained_items is marked retained instead, in the same merge), clears the raw bronze bodies and "
        "rejected bytes past their TTL (metadata kept as the audit trail), deletes fully expired archived "
        "export files, and writes one content_cleanup event per affected user with that user's counts."
    ),
    check_specs=[
        dg.AssetCheckSpec("nothing_expired_left", asset=CONTENT_CLEANUP,
                          description="After the run no silver row or bronze body is past its TTL at the cutoff."),
    ],
)
def content_cleanup(
    context: AssetExecutionContext,
    warehouse: Warehouse,
    control_plane: ControlPlane,
    runtime: Runtime,
    maintenance: Maintenance,
) -> dg.MaterializeResult:
    cutoff = _window_end(context)
    store = warehouse.store
    report = cleanup.CleanupReport(cutoff=cutoff)
    # bronze first: its rule does not depend on silver having been cleaned, so order is only about
    # never leaving a body behind if the run dies between steps (the next run completes it).
    cleanup.expire_bronze_bodies(store, cutoff, report)
    cleanup.clear_reject_bodies(store, cutoff, report)
    cleanup.delete_expired_content(store, cutoff, report)
    if maintenance.expire_import_archives:
        with control_plane.session() as session:
            cleanup.delete_expired_archives(store, session, Path(runtime.archive_dir), cutoff, report)
    events = cleanup.cleanup_events(report, context.partition_key)
    written = write_events(store, events, run_id=context.run.run_id)

    left_silver = store.scan(PLATFORM_CONTENT, cleanup.expired_content_predicate(cutoff))
    left_rows = 0 if left_silver is None else int(left_silver.select(pl.len()).collect().item())
    left_bodies, _ = cleanup.bronze_bodies_past_ttl(store, cutoff)
    context.log.info(
        f"cleanup at {cutoff.isoformat()}: {report.silver.rows} silver rows, {report.bronze.rows} bronze bodies, "
        f"{report.rejects.rows} reject bodies, {report.archives.rows} archives; {len(report.users)} users"
    )
    return dg.MaterializeResult(
        metadata={
            "cutoff": cutoff.isoformat(),
            "silver_rows_deleted": report.silver.rows,
            "silver_files_in_scope": report.silver.files_in_scope,
            "silver_files_total": report.silver.files_total,
            "silver_files_removed": report.silver.files_removed,
            "silver_files_added": report.silver.files_added,
            "silver_rows_retained_by_marks": report.retained_applied,
            "content_vectors_deleted": report.vectors.rows,
            "bronze_bodies_expired": report.bronze.rows,
            "bronze_bodies_kept_for_live_rows": report.bronze_protected,
            "bronze_files_in_scope": report.bronze.files_in_scope,
            "bronze_files_total": report.bronze.files_total,
            "bronze_files_removed": report.bronze.files_removed,
            "reject_bodies_cleared": report.rejects.rows,
            "import_archives_deleted": report.archives.rows,
            "users": len(report.users),
            "events_written": written,
            "per_user": dg.MetadataValue.json({u: report.user_counts(u) for u in report.users}),
            "summary": dg.MetadataValue.md(cleanup.summary_table(report)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="nothing_expired_left", passed=left_rows == 0 and left_bodies.is_empty(),
                metadata={"expired_silver_rows_left": left_rows, "expired_bronze_bodies_left": left_bodies.height},
            )
        ],
    )


@dg.asset(
    key=TABLE_MAINTENANCE,
    partitions_def=maintenance_days,
    # vacuum is when the files the day's cleanups unreferenced leave storage: a day follows its 24 hours
    deps=[CONTENT_CLEANUP],
    code_version=CODE_VERSION,
    group_name="ops",
    kinds={"deltalake"},
    owners=["team:data-platform"],
    pool=MAINTENANCE_POOL,
    retry_policy=HOUSEKEEPING_RETRY,
    description=(
        "Daily Delta housekeeping of every warehouse table (yarn_assets.core.catalog): optimize.compact, "
        "then vacuum of files unreferenced for longer than the retention (168 h unless configured), which "
        "is also when the bytes of expired bodies leave storage. Reports files and bytes per table."
    ),
)
def table_maintenance(
    context: AssetExecutionContext, warehouse: Warehouse, maintenance: Maintenance
) -> dg.MaterializeResult:
    store = warehouse.store
    retention = maintenance.vacuum_retention_hours
    if not maintenance.enforce_retention:
        context.log.warning(f"vacuum retention {retention} h is below Delta's safe minimum of 168 h: readers of "
                            "older table versions may fail")
    results = [maintain(store, spec, retention_hours=retention, enforce_retention=maintenance.enforce_retention)
               for spec in all_tables()]
    present = [r for r in results if r.exists]
    return dg.MaterializeResult(
        metadata={
            "tables": len(present),
            "tables_absent": len(results) - len(present),
            "vacuum_retention_hours": retention,
            "files_before": sum(r.files_before for r in present),
            "files_after": sum(r.files_after for r in present),
            "compacted_files_removed": sum(r.compact_files_removed for r in present),
            "compacted_files_added": sum(r.compact_files_added for r in present),
            "compacted_bytes_rewritten": sum(r.compact_bytes_removed for r in present),
            "vacuumed_files": sum(r.vacuumed_files for r in present),
            "vacuumed_bytes": sum(r.vacuumed_bytes or 0 for r in present),
            "per_table": dg.MetadataValue.json({r.table: r.as_dict() for r in results}),
            "summary": dg.MetadataValue.md(maintenance_summary(results)),
        }
    )
