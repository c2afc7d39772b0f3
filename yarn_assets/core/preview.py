"""Previews on demand: a few rows of one user's data, read from the current tables.

Run history keeps no item text (:mod:`yarn_assets.core.metadata`); an operator who needs to look
at rows asks for them here (``yarnnn preview silver/platform_content --user alice --date D``).
Reading the live tables means a preview only ever shows what retention still keeps, and always
for one user at a time.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from io_managers.delta_store import DeltaStore, TableSpec
from io_managers.predicates import Eq, all_of
from yarn_assets.core.catalog import all_tables

#: Columns shown by default when the table has them (the rest is available with ``columns``).
DEFAULT_COLUMNS = ("user_id", "platform", "created_day", "content_type", "resource_name", "author", "title",
                   "content", "occurred_at", "session_id", "role", "key", "value", "summary", "final_content",
                   "object_type", "external_id", "reason", "event_type")


class PreviewError(ValueError):
    pass


def table_spec(name: str) -> TableSpec:
    for spec in all_tables():
        if spec.name == name:
            return spec
    raise PreviewError(f"unknown table {name!r}; known: {', '.join(s.name for s in all_tables())}")


def day_column(spec: TableSpec) -> str | None:
    """The partition column that holds a day (ingest day, creation day, session day...)."""
    return next((c for c in spec.partition_by if c.endswith(("_date", "_day"))), None)


def preview(store: DeltaStore, table: str, *, user_id: str, day: dt.date | None = None, limit: int = 10,
            columns: list[str] | None = None, width: int = 80) -> pl.DataFrame:
    """Up to ``limit`` rows of ``user_id`` in ``table`` (of one ``day`` if given), text cut to ``width``."""
    spec = table_spec(table)
    if "user_id" not in spec.schema:
        raise PreviewError(f"{table} has no user_id column")
    conds = [Eq("user_id", user_id)]
    if day is not None:
        col = day_column(spec)
        if col is None:
            raise PreviewError(f"{table} has no day partition to filter on (partitioned by {spec.partition_by})")
        conds.append(Eq(col, day if spec.schema[col] == pl.Date else day.isoformat()))
    lf = store.scan(spec, all_of(*conds))
    if lf is None:
        return pl.DataFrame()
    wanted = [c for c in (columns or DEFAULT_COLUMNS) if c in spec.schema]
    if columns:
        unknown = sorted(set(columns) - set(spec.schema))
        if unknown:
            raise PreviewError(f"{table} has no column(s) {', '.join(unknown)}")
    frame = lf.select(wanted).head(limit).collect()
    text = [c for c in frame.columns if frame.schema[c] in (pl.Utf8, pl.Binary)]
    return frame.with_columns(
        [pl.col(c).cast(pl.Utf8, strict=False).str.replace_all(r"\s+", " ").str.slice(0, width) for c in text]
    )
