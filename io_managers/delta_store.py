"""Partition-aware Delta Lake storage behind the warehouse resource (all Delta I/O goes through it).

Guarantees (each has a test):

* writes never widen to a full-table overwrite: ``replace`` needs a predicate and Delta itself
  rejects rows outside it;
* merges carry the partition literals of the batch, so they read and rewrite only those files;
  rows bound for partitions that hold no file yet are written, not merged (a conflict-checked
  replace of exactly those partitions), so a first load costs an append, not a join;
* the table schema evolves by merging new columns (``schema_mode="merge"``);
* commits that lose a race (``CommitFailedError``) are retried a bounded number of times;
* the root may be a local folder or an object-store URI with storage options.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from io_managers.delta_merge import INSERT_BY_WRITE_MIN_ROWS, STREAMED_MERGE_ROWS, MergeMixin
from io_managers.frames import (
    _columns,
    _present_partitions,
    partition_pin,
    partitions_predicate,
    record_batches,
    sql_mask,
    to_arrow,
)
from io_managers.predicates import Predicate
from io_managers.table_spec import MergeStats, TableSpec

log = logging.getLogger(__name__)

T = TypeVar("T")


class DeltaStore(MergeMixin):
    """Delta tables under one root. Stateless apart from configuration; safe to build per run."""

    def __init__(
        self,
        root: str,
        storage_options: Mapping[str, str] | None = None,
        max_commit_attempts: int = 6,
        backoff_seconds: float = 0.2,
    ) -> None:
        self.root = root.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.max_commit_attempts = max_commit_attempts
        self.backoff_seconds = backoff_seconds

    # ---------------------------------------------------------------- paths and tables
    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")

    def _local_dir(self, spec: TableSpec) -> Path:
        return Path(self.uri(spec).removeprefix("file://"))

    def uri(self, table: str | TableSpec) -> str:
        name = table.name if isinstance(table, TableSpec) else table
        return f"{self.root}/{name.strip('/')}"

    def table(self, table: str | TableSpec) -> DeltaTable | None:
        try:
            return DeltaTable(self.uri(table), storage_options=self.storage_options or None)
        except TableNotFoundError:
            return None

    def exists(self, table: str | TableSpec) -> bool:
        return self.table(table) is not None

    def version(self, table: str | TableSpec) -> int | None:
        dt = self.table(table)
        return None if dt is None else dt.version()

    def ensure(self, spec: TableSpec) -> None:
        """Create the table (schema and partitioning, no rows) if it does not exist yet."""
        if self.exists(spec):
            return
        if self.is_local:
            self._local_dir(spec).parent.mkdir(parents=True, exist_ok=True)
        write_deltalake(
            self.uri(spec),
            spec.empty().to_arrow(),
            mode="ignore",
            partition_by=list(spec.partition_by) or None,
            storage_options=self.storage_options or None,
        )

    def _evolve(self, spec: TableSpec, data: pa.Table) -> None:
        """Add spec columns the table lacks (merge writes never add columns by themselves)."""
        dt = self.table(spec)
        if dt is None:
            return
        have = {f.name for f in dt.schema().to_arrow()}
        missing = [f for f in data.schema if f.name in spec.schema and f.name not in have]
        if missing:
            fields = list(DeltaSchema.from_arrow(pa.schema(missing)).fields)
            self._retry(f"add columns to {spec.name}", lambda: dt.alter.add_columns(fields))

    def _prepare(self, spec: TableSpec, df: pl.DataFrame) -> pa.Table:
        conformed = spec.conform(df)
        if self.is_local:
            self._local_dir(spec).parent.mkdir(parents=True, exist_ok=True)
        return to_arrow(conformed)

    def _retry(self, what: str, op: Callable[[], T]) -> tuple[T, int]:
        for attempt in range(1, self.max_commit_attempts + 1):
            try:
                return op(), attempt
            except CommitFailedError as exc:
                if attempt == self.max_commit_attempts:
                    raise
                delay = self.backoff_seconds * (2 ** (attempt - 1)) * (0.5 + random.random())
                log.warning("%s lost a commit race (attempt %d): %s; retrying in %.2fs", what, attempt, exc, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------- reads
    def file_stats(self, spec: str | TableSpec) -> pl.DataFrame | None:
        """The table's live files from the Delta log: ``path``, ``num_records``, ``partition.<col>``,
        ``min.<col>``/``max.<col>``/``null_count.<col>`` statistics. No data file is read."""
        dt = self.table(spec)
        if dt is None:
            return None
        return pl.from_arrow(pa.table(dt.get_add_actions(flatten=True)))  # type: ignore[return-value]

    def scan(self, spec: str | TableSpec, predicate: Predicate | None = None) -> pl.LazyFrame | None:
        if not self.exists(spec):
            return None
        lf = pl.scan_delta(self.uri(spec), storage_options=self.storage_options or None)
        return lf.filter(predicate.to_polars()) if predicate is not None else lf

    def read(
        self,
        spec: TableSpec,
        predicate: Predicate | None = None,
        columns: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Rows matching ``predicate`` (all partitions of a range), or an empty frame of the schema."""
        lf = self.scan(spec, predicate)
        if lf is None:
            empty = spec.empty()
            return empty.select(columns) if columns else empty
        if columns:
            return lf.select(list(columns)).collect()
        names = lf.collect_schema().names()
        ordered = [c for c in spec.schema if c in names] + [c for c in names if c not in spec.schema]
        return lf.select(ordered).collect()

    # ---------------------------------------------------------------- writes
    def append(self, spec: TableSpec, df: pl.DataFrame) -> int:
        if df.is_empty():
            return 0
        data = self._prepare(spec, df)
        self._retry(
            f"append {spec.name}",
            lambda: write_deltalake(
                self.uri(spec),
                data,
                mode="append",
                partition_by=list(spec.partition_by) or None,
                schema_mode="merge",
                storage_options=self.storage_options or None,
                writer_properties=spec.writer_properties(),
            ),
        )
        return data.num_rows

    def replace(self, spec: TableSpec, df: pl.DataFrame, predicate: Predicate) -> int:
        """Atomically replace the rows matching ``predicate`` with ``df`` (replaceWhere).

        Every row of ``df`` must satisfy the predicate (Delta rejects the commit otherwise), so
        a partition write can never touch another partition.
        """
        if predicate is None:
            raise ValueError(f"refusing a full-table overwrite of {spec.name}: a predicate is required")
        where = predicate.to_sql()
        if df.is_empty():
            self.delete(spec, predicate)
            return 0
        bad = df.filter(~predicate.to_polars()) if set(_columns(predicate)) <= set(df.columns) else None
        if bad is not None and bad.height:
            raise ValueError(f"{bad.height} rows fall outside the write window {where} of {spec.name}")
        data = self._prepare(spec, df)
        self._retry(
            f"replace {spec.name} where {where}",
            lambda: write_deltalake(
                self.uri(spec),
                data,
                mode="overwrite",
                predicate=where,
                partition_by=list(spec.partition_by) or None,
                schema_mode="merge",
                storage_options=self.storage_options or None,
                writer_properties=spec.writer_properties(),
            ),
        )
        return data.num_rows

    def replace_all(self, spec: TableSpec, df: pl.DataFrame) -> int:
        """Explicit whole-table overwrite, for unpartitioned assets only (the caller says so)."""
        data = self._prepare(spec, df)
        self._retry(
            f"overwrite {spec.name}",
            lambda: write_deltalake(
                self.uri(spec),
                data,
                mode="overwrite",
                partition_by=list(spec.partition_by) or None,
                schema_mode="merge",
                storage_options=self.storage_options or None,
                writer_properties=spec.writer_properties(),
            ),
        )
        return data.num_rows

    def delete(self, spec: TableSpec, predicate: Predicate) -> int:
        return int(self.delete_with_metrics(spec, predicate).get("num_deleted_rows", 0))

    def delete_with_metrics(self, spec: TableSpec, predicate: Predicate) -> dict[str, Any]:
        """Delete matching rows; Delta's metrics (rows deleted/copied, files added/removed)."""
        if predicate is None:
            raise ValueError(f"refusing to delete every row of {spec.name}")
        if self.table(spec) is None:
            return {}

        def op() -> dict[str, Any]:
            table = DeltaTable(self.uri(spec), storage_options=self.storage_options or None)
            return table.delete(predicate.to_sql())

        result, _ = self._retry(f"delete from {spec.name}", op)
        return dict(result)

    def update(self, spec: TableSpec, predicate: Predicate, updates: Mapping[str, str]) -> dict[str, Any]:
        """``UPDATE spec SET col = <sql> WHERE predicate``; Delta's metrics. A predicate is required."""
        if predicate is None:
            raise ValueError(f"refusing to update every row of {spec.name}")
        if self.table(spec) is None:
            return {}

        def op() -> dict[str, Any]:
            table = DeltaTable(self.uri(spec), storage_options=self.storage_options or None)
            return table.update(updates=dict(updates), predicate=predicate.to_sql())

        result, _ = self._retry(f"update {spec.name}", op)
        return dict(result)

    def files(self, spec: TableSpec) -> pl.DataFrame:
        """The table's live data files: ``path``, ``size_bytes``, ``num_records`` and one column per
        partition column (named as the column), for reporting what a write touched."""
        dt = self.table(spec)
        if dt is None:
            return pl.DataFrame(schema={"path": pl.Utf8, "size_bytes": pl.Int64, "num_records": pl.Int64})
        actions = pl.DataFrame(pa.table(dt.get_add_actions(flatten=True)))
        keep = ["path", "size_bytes", "num_records"]
        renames = {f"partition.{c}": c for c in spec.partition_by if f"partition.{c}" in actions.columns}
        return actions.select([*keep, *renames]).rename(renames)

    # ---------------------------------------------------------------- maintenance
    def compact(self, spec: TableSpec) -> dict[str, Any]:
        if self.table(spec) is None:
            return {}

        def op() -> dict[str, Any]:  # re-open per attempt: a retry must see the winner's commit
            return DeltaTable(self.uri(spec), storage_options=self.storage_options or None).optimize.compact()

        result, _ = self._retry(f"compact {spec.name}", op)
        return dict(result)

    def vacuum(self, spec: TableSpec, retention_hours: int = 168, *, enforce_retention_duration: bool = True,
               dry_run: bool = False) -> list[str]:
        """Delete files unreferenced for longer than ``retention_hours`` (Delta refuses < 168 h unless
        ``enforce_retention_duration=False``: a shorter window breaks readers of older versions)."""
        dt = self.table(spec)
        if dt is None:
            return []
        return list(dt.vacuum(retention_hours=retention_hours, dry_run=dry_run,
                              enforce_retention_duration=enforce_retention_duration))




__all__ = [
    "INSERT_BY_WRITE_MIN_ROWS", "STREAMED_MERGE_ROWS", "DeltaStore", "MergeStats", "TableSpec", "_columns",
    "_present_partitions", "partition_pin", "partitions_predicate", "record_batches", "sql_mask", "to_arrow",
]
