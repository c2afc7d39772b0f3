"""Frame and predicate helpers of the Delta write path: arrow views, streamed batches, partition predicates."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

from io_managers.predicates import And, Eq, In, Or, Predicate, all_of
from io_managers.table_spec import TableSpec


def to_arrow(df: pl.DataFrame) -> pa.Table:
    """Arrow view of a polars frame without copying strings (Delta reads string views natively)."""
    return df.to_arrow(compat_level=pl.CompatLevel.newest())


def record_batches(df: pl.DataFrame, rows_per_batch: int = 65_536) -> pa.RecordBatchReader:
    """The frame as a stream of small record batches, converted one at a time: Delta encodes them as
    they come, and columns polars keeps as a single value (a batch's user, fetched_at...) are only
    expanded one slice at a time. Bounds the extra memory of a large write."""
    schema = to_arrow(df.head(0)).schema

    def batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, df.height, rows_per_batch):
            yield from to_arrow(df.slice(start, rows_per_batch)).to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())


def sql_mask(df: pl.DataFrame, where: str, alias: str = "s") -> pl.Series:
    """Evaluate a merge-style SQL condition (``s.col``) on a frame, as a boolean mask."""
    out = pl.SQLContext({alias: df}).execute(f"SELECT ({where}) AS _keep FROM {alias}", eager=True)
    return out.get_column("_keep").fill_null(False)


def _present_partitions(table: DeltaTable, parts: Sequence[str]) -> set[tuple[Any, ...]]:
    """Partition value tuples that hold at least one file in this snapshot (from the log only)."""
    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return set()
    cols = [actions.column(f"partition.{p}").to_pylist() for p in parts]
    return set(zip(*cols, strict=True))


def partitions_predicate(columns: Sequence[str], values: Iterable[tuple[Any, ...]]) -> Predicate:
    """``(a = x AND b IN (...)) OR ...`` matching exactly the given partition value tuples."""
    tuples = sorted(set(values))
    if len(columns) == 1:
        return In(columns[0], [v[0] for v in tuples])
    groups: dict[Any, list[tuple[Any, ...]]] = {}
    for v in tuples:
        groups.setdefault(v[0], []).append(v[1:])
    parts = [And((Eq(columns[0], head), partitions_predicate(columns[1:], tails))) for head, tails in groups.items()]
    return parts[0] if len(parts) == 1 else Or(tuple(parts))


def _columns(predicate: Predicate) -> Iterable[str]:
    for attr in ("column",):
        if hasattr(predicate, attr):
            yield getattr(predicate, attr)
    for part in getattr(predicate, "parts", ()):
        yield from _columns(part)


def partition_pin(spec: TableSpec, df: pl.DataFrame) -> Predicate | None:
    """``IN`` predicates over the batch's values of each partition column."""
    parts: list[Predicate] = []
    for column in spec.partition_by:
        if column not in df.columns:
            continue
        values = df.get_column(column).drop_nulls().unique().sort().to_list()
        parts.append(In(column, values))
    return all_of(*parts)
