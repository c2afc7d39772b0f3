"""Cross-cutting asset checks over whole tables (the inline checks of each asset see only what it wrote).

Each reads a cheap projection (keys, users, a few timestamps), never the content column, and
reports counts and a few offending examples in its metadata. They run on the hourly
``warehouse_checks_schedule`` over the whole table, and, because Dagster runs a job's asset checks
with its assets, along with every ingest/sync run, scoped there to the run's platform.
"""

import datetime as dt
from typing import Any

import dagster as dg
import polars as pl
from sqlalchemy import select

from control_plane.models import PlatformConnection, SyncRegistry
from io_managers.delta_store import DeltaStore, TableSpec
from io_managers.predicates import Eq
from resources.control_plane import ControlPlane
from resources.warehouse import Warehouse
from yarn_assets.core.tables import BRONZE_ITEMS, PLATFORM_CONTENT, REJECTS, UTC_TS
from yarn_assets.ingest.normalize import context_only
from yarn_assets.ingest.sources import BRONZE_IMPORTS, BRONZE_SYNCS, SILVER_CONTENT

KEY = list(PLATFORM_CONTENT.keys)

#: A sync's bronze rows may be stamped a little before the registry's ``last_synced_at`` (fetch
#: start vs. commit); rows within this window count as fetched by that sync.
SYNC_STAMP_TOLERANCE = dt.timedelta(minutes=15)


def _examples(df: pl.DataFrame, n: int = 5) -> dg.MetadataValue:
    return dg.MetadataValue.json(df.head(n).with_columns(pl.all().cast(pl.Utf8)).to_dicts())


def run_scope(context: dg.AssetCheckExecutionContext) -> tuple[str, str | None]:
    """(label, platform) of what to check: inside an ingest partition run only that platform's files
    are read; elsewhere (the hourly ``warehouse_checks_job``, the UI) the whole table."""
    key = context.run.tags.get("dagster/partition") if context.run is not None else None
    if key and "|" in key:
        platform = key.split("|", 1)[1]
        return f"platform {platform} (run of partition {key})", platform
    return "whole table", None


def _scan(store: DeltaStore, spec: TableSpec, platform: str | None) -> pl.LazyFrame | None:
    return store.scan(spec, Eq("platform", platform) if platform else None)


def unique_keys(store: DeltaStore, platform: str | None) -> tuple[bool, dict[str, Any]]:
    lf = _scan(store, PLATFORM_CONTENT, platform)
    if lf is None:
        return True, {"rows_checked": 0, "note": "table absent"}
    counts = lf.select(KEY).group_by(KEY).agg(pl.len().alias("rows")).collect()
    dupes = counts.filter(pl.col("rows") > 1)
    return dupes.is_empty(), {"rows_checked": int(counts["rows"].sum() or 0), "duplicate_keys": dupes.height,
                              "examples": _examples(dupes)}


def rows_expire(store: DeltaStore, platform: str | None) -> tuple[bool, dict[str, Any]]:
    lf = _scan(store, PLATFORM_CONTENT, platform)
    if lf is None:
        return True, {"rows_checked": 0, "note": "table absent"}
    rows = lf.select([*KEY, "retained", "retained_reason", "expires_at"]).collect()
    retained = pl.col("retained").fill_null(False)
    never_expire = rows.filter(~retained & pl.col("expires_at").is_null())
    unexplained = rows.filter(retained & pl.col("retained_reason").is_null())
    return never_expire.is_empty(), {"rows_checked": rows.height, "non_retained_without_expiry": never_expire.height,
                                     "retained_without_reason": unexplained.height,
                                     "examples": _examples(never_expire)}


def _timestamp_problems(store: DeltaStore, spec: TableSpec) -> dict[str, str]:
    """Columns whose stored type is not a UTC timestamp although the spec declares one, or naive ones."""
    lf = store.scan(spec)
    if lf is None:
        return {}
    problems = {}
    for name, dtype in lf.collect_schema().items():
        naive_or_other_zone = isinstance(dtype, pl.Datetime) and dtype.time_zone != "UTC"
        if naive_or_other_zone or (spec.schema.get(name) == UTC_TS and dtype != UTC_TS):
            problems[name] = f"{dtype} (expected {UTC_TS})"
    return problems


def timestamps_utc(store: DeltaStore, specs: list[TableSpec]) -> tuple[bool, dict[str, Any]]:
    problems = {f"{spec.name}.{col}": why for spec in specs for col, why in _timestamp_problems(store, spec).items()}
    return not problems, {"tables": [spec.name for spec in specs if store.exists(spec)],
                          "problems": dg.MetadataValue.json(problems)}


def users_match(store: DeltaStore, control_plane: ControlPlane, platform: str | None) -> tuple[bool, dict[str, Any]]:
    silver = _scan(store, PLATFORM_CONTENT, platform)
    bronze = _scan(store, BRONZE_ITEMS, platform)
    if silver is None:
        return True, {"rows_checked": 0, "note": "table absent"}
    rows = silver.group_by("batch_id", "user_id", "connection_id").agg(pl.len().alias("rows")).collect()
    batches = (bronze.select("batch_id", "user_id").unique().collect() if bronze is not None
               else pl.DataFrame(schema={"batch_id": pl.Utf8, "user_id": pl.Utf8}))
    dup_batches = batches.group_by("batch_id").len().filter(pl.col("len") > 1)
    joined = rows.join(batches.rename({"user_id": "batch_user"}), on="batch_id", how="left")
    wrong_batch = joined.filter(pl.col("batch_user").is_not_null() & (pl.col("batch_user") != pl.col("user_id")))
    orphan = joined.filter(pl.col("batch_user").is_null())
    with control_plane.session() as session:
        owners = pl.DataFrame(
            [{"connection_id": c.id, "owner": c.user_id} for c in session.scalars(select(PlatformConnection))],
            schema={"connection_id": pl.Utf8, "owner": pl.Utf8},
        )
    wrong_conn = (rows.join(owners, on="connection_id", how="inner")
                  .filter(pl.col("owner") != pl.col("user_id")).drop("owner"))
    mismatched = int(wrong_batch["rows"].sum() or 0) + int(wrong_conn["rows"].sum() or 0)
    return mismatched == 0 and dup_batches.is_empty(), {
        "rows_checked": int(rows["rows"].sum() or 0),
        "rows_with_other_batch_user": int(wrong_batch["rows"].sum() or 0),
        "rows_with_other_connection_user": int(wrong_conn["rows"].sum() or 0),
        "bronze_batches_with_several_users": dup_batches.height,
        "rows_without_bronze_batch": int(orphan["rows"].sum() or 0),
        "examples": _examples(pl.concat([wrong_batch.drop("batch_user"), wrong_conn])),
    }


@dg.multi_asset_check(
    name="warehouse_integrity",
    specs=[
        dg.AssetCheckSpec("unique_keys_whole_table", asset=SILVER_CONTENT, blocking=False,
                          description="No two rows share (user, platform, resource, external id) across all "
                                      "partitions (the asset's inline check sees only the files it merged)."),
        dg.AssetCheckSpec("non_retained_rows_expire", asset=SILVER_CONTENT, blocking=False,
                          description="Every non-retained row has expires_at (else the TTL cleanup would never "
                                      "remove it); retained rows carry a reason."),
        dg.AssetCheckSpec("users_match_batches", asset=SILVER_CONTENT, blocking=False,
                          description="Every row belongs to the user of the bronze batch it came from, and rows "
                                      "of a synced connection to that connection's user."),
        dg.AssetCheckSpec("timestamps_utc", asset=SILVER_CONTENT, blocking=False,
                          description="Every timestamp column of silver/platform_content is stored as UTC."),
        dg.AssetCheckSpec("timestamps_utc", asset=BRONZE_IMPORTS, blocking=False,
                          description="Every timestamp column of bronze/platform_items and bronze/rejects is UTC."),
    ],
    can_subset=True,
)
def warehouse_integrity(context: dg.AssetCheckExecutionContext, warehouse: Warehouse,
                        control_plane: ControlPlane):  # type: ignore[no-untyped-def]
    """One step for all cross-cutting checks (a job selecting silver runs them along, so they cost one
    process, not five); scoped to the run's platform inside partition runs."""
    store = warehouse.store
    label, platform = run_scope(context)
    for key in sorted(context.selected_asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        if key.name == "unique_keys_whole_table":
            passed, meta = unique_keys(store, platform)
        elif key.name == "non_retained_rows_expire":
            passed, meta = rows_expire(store, platform)
        elif key.name == "users_match_batches":
            passed, meta = users_match(store, control_plane, platform)
        elif key.asset_key == SILVER_CONTENT:
            passed, meta = timestamps_utc(store, [PLATFORM_CONTENT])
        else:
            passed, meta = timestamps_utc(store, [BRONZE_ITEMS, REJECTS])
        yield dg.AssetCheckResult(asset_key=key.asset_key, check_name=key.name, passed=passed,
                                  metadata={"scope": label, **meta})


def zero_item_syncs_report(store: DeltaStore, registry: pl.DataFrame, platform: str | None = None
                           ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(sources whose latest sync fetched nothing although they had items before, connections whose
    latest sync fetched nothing from ANY source that had items).

    ``registry`` holds sync_registry rows (user_id, platform, resource_id, item_count, last_synced_at,
    last_error). A source "had items" when its running ``item_count`` is positive or bronze holds
    synced items from it; its latest sync "fetched nothing" when bronze has no synced row of that
    source stamped at or after ``last_synced_at - SYNC_STAMP_TOLERANCE``. A quiet source is normal
    for incremental syncs (listed, not failed); a connection where every such source came back
    empty is the silent-failure signature (a missing key reported as success) and fails the check.
    Sources whose latest sync failed are the sync asset's own check's business.
    """
    cols = {"user_id": pl.Utf8, "platform": pl.Utf8, "resource_id": pl.Utf8, "item_count": pl.Int64,
            "last_synced_at": UTC_TS, "last_fetched_at": UTC_TS, "bronze_items": pl.Int64}
    conn_cols = {"user_id": pl.Utf8, "platform": pl.Utf8, "sources_with_items": pl.UInt32,
                 "sources_empty": pl.UInt32, "last_synced_at": UTC_TS}
    if registry.is_empty():
        return pl.DataFrame(schema=cols), pl.DataFrame(schema=conn_cols)
    lf = _scan(store, BRONZE_ITEMS, platform)
    if lf is None:
        history = pl.DataFrame(schema={k: cols[k] for k in ("user_id", "platform", "resource_id",
                                                            "last_fetched_at", "bronze_items")})
    else:
        history = (
            lf.filter((pl.col("source_kind") == "sync") & ~pl.col("is_tombstone").fill_null(False)
                      & ~pl.col("object_type").is_in(list(context_only())))
            .group_by("user_id", "platform", "resource_id")
            .agg(pl.col("fetched_at").max().alias("last_fetched_at"), pl.len().cast(pl.Int64).alias("bronze_items"))
            .collect()
        )
    src = registry.filter(pl.col("last_synced_at").is_not_null() & pl.col("last_error").is_null())
    joined = src.join(history, on=["user_id", "platform", "resource_id"], how="left").with_columns(
        pl.col("bronze_items").fill_null(0)
    )
    had_items = joined.filter((pl.col("item_count") > 0) | (pl.col("bronze_items") > 0)).with_columns(
        (pl.col("last_fetched_at").is_null()
         | (pl.col("last_fetched_at") < pl.col("last_synced_at") - pl.lit(SYNC_STAMP_TOLERANCE))).alias("empty")
    )
    sources = had_items.filter(pl.col("empty")).select(list(cols)).sort("user_id", "platform", "resource_id")
    connections = (
        had_items.group_by("user_id", "platform")
        .agg(pl.len().alias("sources_with_items"), pl.col("empty").sum().cast(pl.UInt32).alias("sources_empty"),
             pl.col("last_synced_at").max())
        .filter(pl.col("sources_empty") == pl.col("sources_with_items"))
        .select(list(conn_cols)).cast(conn_cols).sort("user_id", "platform")
    )
    return sources, connections


def _registry_frame(control_plane: ControlPlane) -> pl.DataFrame:
    schema = {"user_id": pl.Utf8, "platform": pl.Utf8, "resource_id": pl.Utf8, "item_count": pl.Int64,
              "last_synced_at": UTC_TS, "last_error": pl.Utf8}
    with control_plane.session() as session:
        rows = [
            {"user_id": r.user_id, "platform": r.platform, "resource_id": r.resource_id,
             "item_count": int(r.item_count or 0), "last_synced_at": r.last_synced_at, "last_error": r.last_error}
            for r in session.scalars(
                select(SyncRegistry).where(~SyncRegistry.resource_id.startswith("__", autoescape=True)))
        ]
    return pl.DataFrame(rows, schema=schema)


@dg.asset_check(asset=BRONZE_SYNCS, name="no_silent_zero_item_syncs", blocking=False,
                description="Fails (WARN) when a connection's latest successful sync fetched zero items from every "
                            "source that had items before (sync_registry item_count / bronze history): the "
                            "original's silent failure (a missing key reported as success). Quiet single sources "
                            "are listed in the metadata.")
def no_silent_zero_item_syncs(context: dg.AssetCheckExecutionContext, warehouse: Warehouse,
                              control_plane: ControlPlane) -> dg.AssetCheckResult:
    label, platform = run_scope(context)
    registry = _registry_frame(control_plane)
    if platform:
        registry = registry.filter(pl.col("platform") == platform)
    sources, connections = zero_item_syncs_report(warehouse.store, registry, platform)
    return dg.AssetCheckResult(
        passed=connections.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "scope": label,
            "sources_checked": registry.height,
            "sources_empty_in_latest_sync": sources.height,
            "connections_flagged": connections.height,
            "flagged_connections": _examples(connections, 20),
            "empty_sources": _examples(sources, 20),
        },
    )


CHECKS = [warehouse_integrity, no_silent_zero_item_syncs]
