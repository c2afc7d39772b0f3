"""Partition-aware Delta Lake storage shared by the IO manager and the warehouse resource.

Guarantees (each has a test):

* writes never widen to a full-table overwrite: ``replace`` needs a predicate and Delta itself
  rejects rows outside it;
* merges carry the partition literals of the batch, so they read and rewrite only those files;
* the table schema evolves by merging new columns (``schema_mode="merge"``);
* commits that lose a race (``CommitFailedError``) are retried a bounded number of times;
* the root may be a local folder or an object-store URI with storage options.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from io_managers.predicates import In, Predicate, all_of

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class TableSpec:
    """A Delta table's name (relative to the root), schema, physical partitioning and keys."""

    name: str
    schema: Mapping[str, pl.DataType]
    partition_by: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    description: str = ""

    def conform(self, df: pl.DataFrame) -> pl.DataFrame:
        """Add missing declared columns as nulls, cast declared ones, keep extra columns last."""
        exprs = []
        for name, dtype in self.schema.items():
            if name in df.columns:
                exprs.append(pl.col(name).cast(dtype, strict=True).alias(name))
            else:
                exprs.append(pl.lit(None, dtype=dtype).alias(name))
        extra = [c for c in df.columns if c not in self.schema]
        return df.select([*exprs, *extra])

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=dict(self.schema))


@dataclass
class MergeStats:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    source_rows: int = 0
    files_scanned: int = 0
    files_skipped: int = 0
    files_added: int = 0
    files_removed: int = 0
    attempts: int = 1
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_delta(cls, raw: Mapping[str, Any], attempts: int) -> MergeStats:
        return cls(
            inserted=int(raw.get("num_target_rows_inserted", 0)),
            updated=int(raw.get("num_target_rows_updated", 0)),
            deleted=int(raw.get("num_target_rows_deleted", 0)),
            source_rows=int(raw.get("num_source_rows", 0)),
            files_scanned=int(raw.get("num_target_files_scanned", 0)),
            files_skipped=int(raw.get("num_target_files_skipped_during_scan", 0)),
            files_added=int(raw.get("num_target_files_added", 0)),
            files_removed=int(raw.get("num_target_files_removed", 0)),
            attempts=attempts,
            raw=dict(raw),
        )


class DeltaStore:
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
        return conformed.to_arrow()

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

    def merge(
        self,
        spec: TableSpec,
        df: pl.DataFrame,
        *,
        keys: Sequence[str] | None = None,
        pin: Predicate | None = None,
        update: Mapping[str, str] | None = None,
        update_when: str | None = None,
        delete_when: str | None = None,
        insert_when: str | None = None,
        insert: bool = True,
    ) -> MergeStats:
        """Upsert ``df`` by ``keys`` (``t`` = target, ``s`` = source in the SQL snippets).

        Source columns outside the spec (e.g. an ``is_deleted`` flag) may be used in the
        ``*_when`` predicates but are never written to the table.

        ``pin`` restricts the target side (normally the partition literals of the batch, e.g.
        ``platform IN (...) AND created_day IN (...)``): Delta then skips every other file, so the
        merge costs what the batch touches, not what the table holds. Without ``pin`` the partition
        columns' values in the batch are used.
        """
        keys = tuple(keys or spec.keys)
        if not keys:
            raise ValueError(f"merge into {spec.name} needs key columns")
        if df.is_empty():
            return MergeStats(attempts=0)
        data = self._prepare(spec, df)
        self.ensure(spec)
        self._evolve(spec, data)
        if pin is None:
            pin = partition_pin(spec, pl.from_arrow(data))  # type: ignore[arg-type]
        on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        if pin is not None:
            on = f"{on} AND {pin.to_sql('t')}"
        columns = [c for c in data.column_names if c in spec.schema]
        updates = dict(update) if update is not None else {c: f"s.{c}" for c in columns}

        def op() -> dict[str, Any]:
            table = DeltaTable(self.uri(spec), storage_options=self.storage_options or None)
            merger = table.merge(
                source=data, predicate=on, source_alias="s", target_alias="t", merge_schema=False
            )
            if delete_when is not None:
                merger = merger.when_matched_delete(predicate=delete_when)
            if updates:
                merger = merger.when_matched_update(updates=updates, predicate=update_when)
            if insert:
                merger = merger.when_not_matched_insert(
                    updates={c: f"s.{c}" for c in columns}, predicate=insert_when
                )
            return merger.execute()

        raw, attempts = self._retry(f"merge into {spec.name}", op)
        return MergeStats.from_delta(raw, attempts)

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
