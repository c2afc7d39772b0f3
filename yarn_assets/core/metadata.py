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
