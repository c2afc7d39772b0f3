"""Materialization metadata that describes data without carrying it.

Run history (the Dagster event log) is kept long after the content TTL has deleted an item, so
metadata holds counts, ids and schemas only, never a title, a body or a generated text. To look
at rows, use ``yarnnn preview <table> --user U`` (:mod:`yarn_assets.core.preview`), which reads
the current tables and so only ever shows what retention still allows.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg
import polars as pl

from io_managers.delta_store import DeltaStore, TableSpec


def schema(df: pl.DataFrame, columns: Iterable[str] | None = None) -> dg.MetadataValue:
    """The frame's column names and types (``dagster/column_schema`` style)."""
    cols = [c for c in (columns or df.columns) if c in df.columns]
    return dg.MetadataValue.table_schema(
        dg.TableSchema(columns=[dg.TableColumn(name=c, type=str(df.schema[c])) for c in cols])
    )


def counts(df: pl.DataFrame, *by: str) -> dg.MetadataValue:
    """Row counts per value of categorical columns (e.g. content type, decision), as JSON."""
    cols = [c for c in by if c in df.columns]
    if df.is_empty() or not cols:
        return dg.MetadataValue.json({})
    grouped = df.group_by(cols).len().sort(cols, nulls_last=True)
    out = {"|".join("" if v is None else str(v) for v in row[:-1]): int(row[-1]) for row in grouped.iter_rows()}
    return dg.MetadataValue.json(out)


def ids(values: Iterable[object], limit: int = 50) -> dg.MetadataValue:
    """Up to ``limit`` distinct ids (batch ids, version ids), in first-seen order."""
    seen: list[str] = []
    for v in values:
        s = str(v)
        if v is not None and s not in seen:
            seen.append(s)
            if len(seen) >= limit:
                break
    return dg.MetadataValue.json(seen)


def table_metadata(spec: TableSpec, *, rows: int, uri: str | None = None, partition_rows: int | None = None) -> dict:
    """The catalog's standard table metadata for an asset that writes ``spec``.

    ``dagster/column_schema`` comes from the declared schema, ``dagster/table_name`` is the physical
    table name the CLI prints, ``dagster/row_count`` the table's (or partition's) row count, and
    ``dagster/partition_row_count`` the rows of the materialized partition when it differs.
    """
    md: dict = {
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=c, type=str(t)) for c, t in spec.schema.items()]
        ),
        "dagster/table_name": spec.name,
        "dagster/row_count": int(rows),
    }
    if partition_rows is not None:
        md["dagster/partition_row_count"] = int(partition_rows)
    if uri:
        md["dagster/uri"] = uri
    return md


def table_metadata_of(store: DeltaStore, spec: TableSpec, *, partition_rows: int | None = None) -> dict:
    """:func:`table_metadata` for a table in ``store``: row count from the Delta log (no data read), its URI."""
    files = store.files(spec)
    rows = int(files["num_records"].fill_null(0).sum()) if files.height else 0
    return table_metadata(spec, rows=rows, uri=store.uri(spec), partition_rows=partition_rows)
