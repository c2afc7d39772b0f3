"""What a Delta table is (``TableSpec``: name, schema, partitioning, keys) and what a merge did (``MergeStats``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from deltalake import ColumnProperties, WriterProperties


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
