"""The ingest assets' keys, code versions and shared pieces.

Asset keys name the physical table they write. ``bronze/platform_items`` has two writers, export
imports and live syncs: different triggers, retries, pool and config, so two assets,
``bronze/platform_items/imports`` and ``bronze/platform_items/syncs``, both reporting
``dagster/table_name: bronze/platform_items``. They write disjoint slices of every (day, platform)
partition (``source_kind`` import | sync, one batch per import job or sync run), and silver reads
both.

Code versions (``code_version``; Dagster shows an asset stale when its version changed since the
partition was materialized):

* a reader change that alters what an export lands bumps :data:`BRONZE_IMPORTS_VERSION` (a replay
  re-lands the jobs: ``yarnnn backfill --select bronze/platform_items/imports,...``);
* a fetcher change bumps :data:`BRONZE_SYNCS_VERSION` (for the record only: APIs cannot serve the past);
* a normalizer (parser) change bumps its platform's ``Platform.normalize_version``, which is part
  of silver's version, so every silver partition shows stale: the README's "backfill after a
  parser fix" is then a backfill of the stale partitions; a change of the merge itself bumps
  :data:`SILVER_MERGE_VERSION`.
"""

from __future__ import annotations

import dagster as dg

from io_managers.delta_store import DeltaStore, TableSpec

BRONZE_IMPORTS = dg.AssetKey(["bronze", "platform_items", "imports"])
BRONZE_SYNCS = dg.AssetKey(["bronze", "platform_items", "syncs"])
SILVER_CONTENT = dg.AssetKey(["silver", "platform_content"])

BRONZE_SOURCES = (BRONZE_IMPORTS, BRONZE_SYNCS)

BRONZE_IMPORTS_VERSION = "1"
BRONZE_SYNCS_VERSION = "1"
SILVER_MERGE_VERSION = "1"

INGEST_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def silver_code_version() -> str:
    """The merge's version plus every platform normalizer's: ``1;calendar=1,gmail=1,...``."""
    from yarn_assets.ingest import platforms

    parts = sorted(f"{p.name}={p.normalize_version}" for p in platforms.all_platforms() if p.normalizers
                   or p.frame_normalizers)
    return f"{SILVER_MERGE_VERSION};{','.join(parts)}"


def partition_parts(context: dg.AssetExecutionContext) -> tuple[str, str]:
    """(day, platform) of an ingest partition key."""
    key = context.partition_key
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["date"], dims["platform"]
    day, platform = str(key).split("|")
    return day, platform


def table_metadata(store: DeltaStore, spec: TableSpec, **partition: object) -> dict[str, object]:
    """The catalog's standard table metadata (columns, table name, uri, row counts) from the Delta
    log only: the table's rows, and the rows of the physical partition ``partition`` when given."""
    import polars as pl

    from yarn_assets.core.metadata import table_metadata as standard

    files = store.files(spec)
    rows = int(files["num_records"].sum() or 0) if files.height else 0
    part = None
    if partition and files.height:
        cond = pl.lit(True)
        for col, value in partition.items():
            cond = cond & (pl.col(col).cast(pl.Utf8) == str(value))
        part = int(files.filter(cond)["num_records"].sum() or 0)
    elif partition:
        part = 0
    return standard(spec, rows=rows, uri=store.uri(spec), partition_rows=part)
