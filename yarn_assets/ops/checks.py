"""Cross-cutting asset checks over whole tables (the inline checks of each asset see only its partition).

Each reads a cheap projection (keys, users, a few timestamps), never the content column, and
reports counts and a few offending examples in its metadata. They run on the hourly
``warehouse_checks_schedule`` and from the UI.
"""

import datetime as dt

import dagster as dg
import polars as pl
from sqlalchemy import select

from control_plane.models import PlatformConnection, SyncRegistry
from io_managers.delta_store import DeltaStore, TableSpec
from resources.control_plane import ControlPlane
from resources.warehouse import Warehouse
from yarn_assets.core.tables import BRONZE_ITEMS, PLATFORM_CONTENT, REJECTS, UTC_TS
from yarn_assets.ingest.normalizers import CONTEXT_ONLY
from yarn_assets.ingest.sources import BRONZE_IMPORTS, BRONZE_SYNCS, SILVER_CONTENT

KEY = list(PLATFORM_CONTENT.keys)

#: A sync's bronze rows may be stamped a little before the registry's ``last_synced_at`` (fetch
#: start vs. commit); rows within this window count as fetched by that sync.
SYNC_STAMP_TOLERANCE = dt.timedelta(minutes=15)


def _examples(df: pl.DataFrame, n: int = 5) -> dg.MetadataValue:
    return dg.MetadataValue.json(df.head(n).with_columns(pl.all().cast(pl.Utf8)).to_dicts())


@dg.asset_check(asset=SILVER_CONTENT, name="unique_keys_whole_table", blocking=False,
                description="No two rows of silver/platform_content share (user, platform, resource, external id), "
                            "across all partitions.")
def unique_keys_whole_table(warehouse: Warehouse) -> dg.AssetCheckResult:
    lf = warehouse.store.scan(PLATFORM_CONTENT)
    if lf is None:
        return dg.AssetCheckResult(passed=True, metadata={"rows_checked": 0, "note": "table absent"})
    counts = lf.select(KEY).group_by(KEY).agg(pl.len().alias("rows")).collect()
    dupes = counts.filter(pl.col("rows") > 1)
    return dg.AssetCheckResult(
        passed=dupes.is_empty(),
        metadata={"rows_checked": int(counts["rows"].sum() or 0), "duplicate_keys": dupes.height,
                  "examples": _examples(dupes)},
    )


@dg.asset_check(asset=SILVER_CONTENT, name="non_retained_rows_expire", blocking=False,
                description="Every non-retained row has expires_at (else the TTL cleanup would never remove it), "
                            "and retained rows carry a reason.")
def non_retained_rows_expire(warehouse: Warehouse) -> dg.AssetCheckResult:
    lf = warehouse.store.scan(PLATFORM_CONTENT)
    if lf is None:
        return dg.AssetCheckResult(passed=True, metadata={"rows_checked": 0, "note": "table absent"})
    rows = lf.select([*KEY, "retained", "retained_reason", "expires_at"]).collect()
    retained = pl.col("retained").fill_null(False)
    never_expire = rows.filter(~retained & pl.col("expires_at").is_null())
    unexplained = rows.filter(retained & pl.col("retained_reason").is_null())
    return dg.AssetCheckResult(
        passed=never_expire.is_empty(),
        metadata={"rows_checked": rows.height, "non_retained_without_expiry": never_expire.height,
                  "retained_without_reason": unexplained.height, "examples": _examples(never_expire)},
    )


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


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec("timestamps_utc", asset=SILVER_CONTENT, blocking=False,
                          description="Every timestamp column of silver/platform_content is stored as UTC."),
        dg.AssetCheckSpec("timestamps_utc", asset=BRONZE_IMPORTS, blocking=False,
                          description="Every timestamp column of bronze/platform_items and bronze/rejects is UTC."),
    ],
    can_subset=True,
)
def timestamps_utc(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):  # type: ignore[no-untyped-def]
    store = warehouse.store
    targets = {SILVER_CONTENT: [PLATFORM_CONTENT], BRONZE_IMPORTS: [BRONZE_ITEMS, REJECTS]}
    for key in context.selected_asset_check_keys:
        problems = {f"{spec.name}.{col}": why for spec in targets[key.asset_key]
                    for col, why in _timestamp_problems(store, spec).items()}
        checked = [spec.name for spec in targets[key.asset_key] if store.exists(spec)]
        yield dg.AssetCheckResult(asset_key=key.asset_key, check_name=key.name, passed=not problems,
                                  metadata={"tables": checked, "problems": dg.MetadataValue.json(problems)})


@dg.asset_check(asset=SILVER_CONTENT, name="users_match_batches", blocking=False,
                description="Every silver row belongs to the user of the bronze batch it came from, and rows of "
                            "a synced connection belong to that connection's user (whole table).")
def users_match_batches(warehouse: Warehouse, control_plane: ControlPlane) -> dg.AssetCheckResult:
    store = warehouse.store
    silver = store.scan(PLATFORM_CONTENT)
    bronze = store.scan(BRONZE_ITEMS)
    if silver is None:
        return dg.AssetCheckResult(passed=True, metadata={"rows_checked": 0, "note": "table absent"})
    rows = (silver.group_by("batch_id", "user_id", "connection_id").agg(pl.len().alias("rows")).collect())
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
    return dg.AssetCheckResult(
        passed=mismatched == 0 and dup_batches.is_empty(),
        metadata={
            "rows_checked": int(rows["rows"].sum() or 0),
            "rows_with_other_batch_user": int(wrong_batch["rows"].sum() or 0),
            "rows_with_other_connection_user": int(wrong_conn["rows"].sum() or 0),
            "bronze_batches_with_several_users": dup_batches.height,
            "rows_without_bronze_batch": int(orphan["rows"].sum() or 0),
            "examples": _examples(pl.concat([wrong_batch.drop("batch_user"), wrong_conn])),
        },
    )


def zero_item_syncs_report(store: DeltaStore, registry: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
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
    lf = store.scan(BRONZE_ITEMS)
    if lf is None:
        history = pl.DataFrame(schema={k: cols[k] for k in ("user_id", "platform", "resource_id",
                                                            "last_fetched_at", "bronze_items")})
    else:
        history = (
            lf.filter((pl.col("source_kind") == "sync") & ~pl.col("is_tombstone").fill_null(False)
                      & ~pl.col("object_type").is_in(list(CONTEXT_ONLY)))
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
def no_silent_zero_item_syncs(warehouse: Warehouse, control_plane: ControlPlane) -> dg.AssetCheckResult:
    registry = _registry_frame(control_plane)
    sources, connections = zero_item_syncs_report(warehouse.store, registry)
    return dg.AssetCheckResult(
        passed=connections.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "sources_checked": registry.height,
            "sources_empty_in_latest_sync": sources.height,
            "connections_flagged": connections.height,
            "flagged_connections": _examples(connections, 20),
            "empty_sources": _examples(sources, 20),
        },
    )


CHECKS = [unique_keys_whole_table, non_retained_rows_expire, timestamps_utc, users_match_batches,
          no_silent_zero_item_syncs]
