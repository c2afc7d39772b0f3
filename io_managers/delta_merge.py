"""The partition-pinned merge of ``DeltaStore`` (a mixin: the store's I/O and retry come from the class)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl
from deltalake import DeltaTable, write_deltalake

from io_managers.frames import (
    _present_partitions,
    partition_pin,
    partitions_predicate,
    record_batches,
    sql_mask,
    to_arrow,
)
from io_managers.predicates import Predicate
from io_managers.table_spec import MergeStats, TableSpec

#: Merges with a source up to this size materialize it (lets delta-rs prune target files by its stats).
STREAMED_MERGE_ROWS = 200_000

#: Rows bound for empty partitions are written separately only from this count (else merged along).
INSERT_BY_WRITE_MIN_ROWS = 20_000


class MergeMixin:
    """``merge`` and its insert-into-empty-partitions shortcut; needs ``uri``, ``ensure``, ``_evolve``, ``_retry``."""

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

