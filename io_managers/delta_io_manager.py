"""A Delta Lake IO manager for polars DataFrames that is correct for every partition shape.

Configure per asset with definition metadata:

* ``partition_expr``: the column holding the partition (a dict ``{dimension: column}`` for
  multi-partitions);
* ``write_mode``: ``replace`` (default: replace exactly the partitions being written),
  ``append`` or ``merge`` (upsert by ``merge_keys``, pinned to the written partitions);
* ``partition_by``: physical partition columns (default: none).

Time partitions become ``col >= start AND col < end`` (UTC, any granularity; the column may be a
date, a timestamp or a string in the partition format); static, dynamic and multi keys become
``IN`` lists; a range (single-run backfill) is the union of its windows, on write and on read.
A partitioned asset without ``partition_expr`` is an error, never a full-table overwrite.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import polars as pl
from pydantic import Field

from io_managers.delta_store import DeltaStore, TableSpec
from io_managers.predicates import And, In, Or, Predicate, Window


class PartitionMappingError(ValueError):
    """The asset's partitioning cannot be expressed as a predicate on its table."""


def _time_predicate(column: str, windows: Sequence[dg.TimeWindow], dtype: pl.DataType | None,
                    fmt: str | None) -> Predicate:
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for w in sorted(windows, key=lambda w: w.start):
        start, end = w.start.astimezone(dt.UTC), w.end.astimezone(dt.UTC)
        if merged and merged[-1][1] >= start:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    preds: list[Predicate] = []
    for start, end in merged:
        if dtype == pl.Date:
            if start.time() != dt.time(0) or end.time() != dt.time(0):
                raise PartitionMappingError(f"column {column} is a date but partitions are sub-daily")
            preds.append(Window(column, start.date(), end.date()))
        elif dtype is not None and dtype in (pl.Utf8, pl.String):
            if not fmt:
                raise PartitionMappingError(f"string column {column} needs the partition format")
            preds.append(Window(column, start.strftime(fmt), end.strftime(fmt)))
        else:
            preds.append(Window(column, start, end))
    return preds[0] if len(preds) == 1 else Or(tuple(preds))


def _dimension_predicate(pdef: dg.PartitionsDefinition, keys: Sequence[str], column: str,
                         dtype: pl.DataType | None) -> Predicate:
    if isinstance(pdef, dg.TimeWindowPartitionsDefinition):
        windows = [pdef.time_window_for_partition_key(k) for k in keys]
        return _time_predicate(column, windows, dtype, pdef.fmt)
    return In(column, list(keys))


def partition_predicate(
    pdef: dg.PartitionsDefinition,
    keys: Sequence[str],
    partition_expr: str | Mapping[str, str],
    dtypes: Mapping[str, pl.DataType],
) -> Predicate:
    """The rows of exactly these partition keys, for any partitions definition."""
    if isinstance(pdef, dg.MultiPartitionsDefinition):
        if not isinstance(partition_expr, Mapping):
            raise PartitionMappingError("multi-partitioned assets need partition_expr as {dimension: column}")
        dims = [d.name for d in pdef.partitions_defs]
        missing = [d for d in dims if d not in partition_expr]
        if missing:
            raise PartitionMappingError(f"partition_expr has no column for dimensions {missing}")
        by_dim: dict[str, set[str]] = {d: set() for d in dims}
        parsed = []
        for key in keys:
            mk = key if isinstance(key, dg.MultiPartitionKey) else pdef.get_partition_key_from_str(str(key))
            values = mk.keys_by_dimension  # type: ignore[union-attr]
            parsed.append(values)
            for d in dims:
                by_dim[d].add(values[d])
        product = 1
        for values in by_dim.values():
            product *= len(values)

        def dim_pred(d: str, vals: Sequence[str]) -> Predicate:
            sub = pdef.get_partitions_def_for_dimension(d)
            column = partition_expr[d]
            return _dimension_predicate(sub, sorted(vals), column, dtypes.get(column))

        if product == len({tuple(v[d] for d in dims) for v in parsed}):
            return And(tuple(dim_pred(d, sorted(by_dim[d])) for d in dims))
        return Or(tuple(And(tuple(dim_pred(d, [v[d]]) for d in dims)) for v in parsed))
    if not isinstance(partition_expr, str):
        raise PartitionMappingError("single-dimension partitions need partition_expr as a column name")
    return _dimension_predicate(pdef, keys, partition_expr, dtypes.get(partition_expr))


class DeltaPolarsIOManager(dg.ConfigurableIOManager):
    """Stores each asset as ``<root>/<asset key path>`` (e.g. ``gold/signal_summaries``)."""

    root: str = Field(description="Warehouse root: folder or object-store URI.")
    storage_options: dict[str, Any] = Field(default_factory=dict)

    @property
    def _store(self) -> DeltaStore:
        return DeltaStore(self.root, {k: str(v) for k, v in self.storage_options.items()})

    @staticmethod
    def _table_name(key: dg.AssetKey) -> str:
        return "/".join(key.path)

    def _spec(self, key: dg.AssetKey, df: pl.DataFrame, meta: Mapping[str, Any]) -> TableSpec:
        return TableSpec(
            name=self._table_name(key),
            schema=dict(df.schema),
            partition_by=tuple(meta.get("partition_by") or ()),
            keys=tuple(meta.get("merge_keys") or ()),
        )

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | None) -> None:
        if obj is None:
            return
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a polars DataFrame, got {type(obj)}")
        meta = dict(context.definition_metadata or {})
        mode = meta.get("write_mode", "replace")
        spec = self._spec(context.asset_key, obj, meta)
        store = self._store
        predicate: Predicate | None = None
        if context.has_asset_partitions:
            if "partition_expr" not in meta:
                raise PartitionMappingError(
                    f"{context.asset_key.to_user_string()} is partitioned but has no partition_expr metadata"
                )
            pdef = context.asset_partitions_def
            predicate = partition_predicate(pdef, list(context.asset_partition_keys), meta["partition_expr"],
                                            dict(obj.schema))
        if mode == "append":
            rows = store.append(spec, obj)
        elif mode == "merge":
            if not spec.keys:
                raise ValueError(f"{spec.name}: write_mode=merge needs merge_keys metadata")
            rows = store.merge(spec, obj, pin=predicate).source_rows
        elif mode == "replace":
            if predicate is None:
                context.log.info(f"{spec.name}: unpartitioned asset, replacing the whole table")
                rows = store.replace_all(spec, obj)
            else:
                rows = store.replace(spec, obj, predicate)
        else:
            raise ValueError(f"{spec.name}: unknown write_mode {mode!r}")
        context.add_output_metadata(
            {"rows": rows, "table": store.uri(spec), "predicate": predicate.to_sql() if predicate else "(all)"}
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        upstream = context.upstream_output
        assert upstream is not None
        key = context.asset_key
        store = self._store
        meta = dict(upstream.definition_metadata or {})
        lf = store.scan(self._table_name(key))
        if lf is None:
            raise FileNotFoundError(f"no Delta table for {key.to_user_string()} at {store.uri(self._table_name(key))}")
        if context.has_asset_partitions:
            pdef = context.asset_partitions_def
            if "partition_expr" not in meta:
                raise PartitionMappingError(f"{key.to_user_string()} is partitioned but has no partition_expr")
            schema = lf.collect_schema()
            predicate = partition_predicate(pdef, list(context.asset_partition_keys), meta["partition_expr"],
                                            dict(schema))
            lf = lf.filter(predicate.to_polars())
        return lf.collect()
