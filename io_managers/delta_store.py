"""Partition-aware Delta Lake storage shared by the IO manager and the warehouse resource.

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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
from deltalake import ColumnProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from io_managers.predicates import And, Eq, In, Or, Predicate, all_of

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
    #: High-cardinality columns (ids, hashes, text) written without dictionary encoding: a dictionary
    #: there never pays off, and a partitioned write keeps one dictionary per column per open file.
    plain_columns: tuple[str, ...] = ()
    #: Rows per Parquet row group when writing (None: delta-rs's default). A partitioned write keeps
    #: one open row group per partition until it fills; small groups bound that buffer on wide
    #: first loads. Compaction rewrites files with the default, so reads end up on large groups.
    row_group_rows: int | None = None

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

    def writer_properties(self) -> WriterProperties:
        return WriterProperties(
            compression="SNAPPY",  # delta-rs's default, which an explicit WriterProperties would drop
            max_row_group_size=self.row_group_rows,
            column_properties={c: ColumnProperties(dictionary_enabled=False) for c in self.plain_columns} or None,
        )


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
        columns' values in the batch are used, and rows bound for partitions that hold no file yet
        are inserted by a write instead of a join (see :meth:`_insert_into_empty`): on an empty
        partition a merge can only insert, so the result is the same and costs an append.
        """
        keys = tuple(keys or spec.keys)
        if not keys:
            raise ValueError(f"merge into {spec.name} needs key columns")
        if df.is_empty():
            return MergeStats(attempts=0)
        frame = spec.conform(df)
        if self.is_local:
            self._local_dir(spec).parent.mkdir(parents=True, exist_ok=True)
        self.ensure(spec)
        self._evolve(spec, to_arrow(frame.head(0)))
        columns = [c for c in frame.columns if c in spec.schema]
        updates = dict(update) if update is not None else {c: f"s.{c}" for c in columns}
        split = pin is None and insert and bool(spec.partition_by)

        def op() -> MergeStats:
            table = DeltaTable(self.uri(spec), storage_options=self.storage_options or None)
            rest, inserted = frame, 0
            if split:
                inserted, rest = self._insert_into_empty(spec, table, frame, columns, insert_when)
                if rest.is_empty():
                    return MergeStats(inserted=inserted, source_rows=frame.height)
                if inserted:
                    table = DeltaTable(self.uri(spec), storage_options=self.storage_options or None)
            target = pin if pin is not None else partition_pin(spec, rest)
            on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
            if target is not None:
                on = f"{on} AND {target.to_sql('t')}"
            merger = table.merge(
                source=to_arrow(rest), predicate=on, source_alias="s", target_alias="t", merge_schema=False,
                writer_properties=spec.writer_properties(),
                # a small source is materialized so delta-rs can also prune target files by its key ranges
                streamed_exec=rest.height > STREAMED_MERGE_ROWS,
            )
            if delete_when is not None:
                merger = merger.when_matched_delete(predicate=delete_when)
            if updates:
                merger = merger.when_matched_update(updates=updates, predicate=update_when)
            if insert:
                merger = merger.when_not_matched_insert(
                    updates={c: f"s.{c}" for c in columns}, predicate=insert_when
                )
            stats = MergeStats.from_delta(merger.execute(), attempts=1)
            stats.inserted += inserted
            stats.source_rows = frame.height
            return stats

        stats, attempts = self._retry(f"merge into {spec.name}", op)
        stats.attempts = attempts
        return stats

    def _insert_into_empty(
        self, spec: TableSpec, table: DeltaTable, frame: pl.DataFrame, columns: list[str], insert_when: str | None
    ) -> tuple[int, pl.DataFrame]:
        """Write the rows whose partitions hold no file in ``table``'s snapshot; return the rest.

        The write is a replace of exactly those partitions, committed against the same snapshot:
        if another writer added files there meanwhile, Delta rejects the commit
        (``CommitFailedError``) and the retry merges instead, so concurrent first loads never
        duplicate a key. Small remainders stay in the merge (one commit beats two).
        """
        parts = list(spec.partition_by)
        if frame.select(pl.any_horizontal(pl.col(parts).is_null()).any()).item():
            return 0, frame  # null partition values: leave them to the merge
        present = _present_partitions(table, parts)
        batch = frame.select(parts).unique()
        if present:
            have = pl.DataFrame(list(present), schema=dict(batch.schema), orient="row")
            empty = batch.join(have, on=parts, how="anti", nulls_equal=True)
        else:
            empty = batch
        if empty.is_empty():
            return 0, frame
        if empty.height == batch.height:  # every partition of the batch is empty (a first load)
            rows, rest = frame, frame.clear()
        else:
            mask = frame.select(pl.struct(parts).is_in(empty.to_struct().implode()).alias("m")).to_series()
            if mask.sum() < INSERT_BY_WRITE_MIN_ROWS:
                return 0, frame
            rows, rest = frame.filter(mask), frame.filter(~mask)
        if insert_when is not None:
            keep = sql_mask(rows, insert_when)
            if not keep.all():
                rows = rows.filter(keep)
        where = partitions_predicate(parts, empty.rows())
        if rows.height:
            write_deltalake(
                table, record_batches(rows.select(columns)), mode="overwrite", predicate=where.to_sql(),
                partition_by=parts, schema_mode="merge", writer_properties=spec.writer_properties(),
            )
        return rows.height, rest

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


#: Merges with a source up to this size materialize it (lets delta-rs prune target files by its stats).
STREAMED_MERGE_ROWS = 200_000

#: Rows bound for empty partitions are written separately only from this count (else merged along).
INSERT_BY_WRITE_MIN_ROWS = 20_000


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
