"""Reading and writing rows of ``gold/deliverable_versions`` (the content and provenance of each version).

Kept small and separate: the run (:mod:`yarn_assets.deliverables.run`), the round, the recipes and
the CLI's resend go through these, so the table's physical layout is decided here only (see
:mod:`yarn_assets.deliverables.tables`). Writes are merges pinned to the rows' ``user_bucket``
partitions and ``created_at`` range, so a round's commit rewrites only the files its own rows are in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl
from deltalake import write_deltalake

from io_managers.delta_store import DeltaStore, MergeStats
from io_managers.predicates import Eq, In, Window, all_of
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS, version_bucket

_US = dt.timedelta(microseconds=1)


def ensure_layout(store: DeltaStore) -> bool:
    """Rewrite a table still partitioned by ``deliverable_id`` (before this layout) into ``user_bucket``.

    One overwrite commit against the snapshot it read: a concurrent migration or write makes it fail
    (``CommitFailedError``), the store's retry re-checks, and finds the table migrated. Returns True
    when this call migrated the table. Idempotent; cheap when the layout is current (metadata only).
    """
    def op() -> bool:
        table = store.table(DELIVERABLE_VERSIONS)
        if table is None or list(table.metadata().partition_columns) == list(DELIVERABLE_VERSIONS.partition_by):
            return False
        rows = pl.from_arrow(table.to_pyarrow_table())
        assert isinstance(rows, pl.DataFrame)
        rows = with_bucket(DELIVERABLE_VERSIONS.conform(rows))
        write_deltalake(table, rows.to_arrow(), mode="overwrite", schema_mode="overwrite",
                        partition_by=list(DELIVERABLE_VERSIONS.partition_by),
                        writer_properties=DELIVERABLE_VERSIONS.writer_properties())
        return True

    migrated, _ = store._retry(f"migrate {DELIVERABLE_VERSIONS.name} layout", op)
    return migrated


def with_bucket(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with its ``user_bucket`` column (hashed once per distinct user)."""
    users = [u for u in df["user_id"].unique().to_list() if u is not None]
    buckets = {u: version_bucket(u) for u in users}
    return df.with_columns(pl.col("user_id").replace_strict(buckets, default=None, return_dtype=pl.Utf8)
                           .alias("user_bucket"))


def _gold_row(store: DeltaStore, deliverable_id: str, version_id: str) -> dict[str, Any] | None:
    df = store.read(DELIVERABLE_VERSIONS, all_of(Eq("deliverable_id", deliverable_id), Eq("version_id", version_id)))
    return df.row(0, named=True) if df.height else None


def gold_rows(store: DeltaStore, version_ids: Sequence[str], *, since: dt.datetime | None = None
              ) -> dict[str, dict[str, Any]]:
    """The rows of these versions (one scan; ``since``: their earliest ``created_at``, prunes by file stats)."""
    if not version_ids:
        return {}
    pred = all_of(In("version_id", sorted(set(version_ids))),
                  Window("created_at", since, dt.datetime.max.replace(tzinfo=dt.UTC)) if since else None)
    df = store.read(DELIVERABLE_VERSIONS, pred)
    return {r["version_id"]: r for r in df.iter_rows(named=True)}


def previous_output(store: DeltaStore, deliverable_id: str, before_version: int) -> str | None:
    """The newest earlier version's delivered text (the original's 'past output' context)."""
    df = store.read(DELIVERABLE_VERSIONS, Eq("deliverable_id", deliverable_id),
                    columns=["version_number", "final_content", "status"])
    df = df.filter((pl.col("version_number") < before_version) & pl.col("final_content").is_not_null()
                   & pl.col("status").is_in(["delivered", "generated"]))
    if df.is_empty():
        return None
    return str(df.sort("version_number").row(-1, named=True)["final_content"])


def write_gold(store: DeltaStore, row: dict[str, Any]) -> None:
    write_gold_rows(store, [row])


def write_gold_rows(store: DeltaStore, rows: Sequence[dict[str, Any]]) -> MergeStats:
    """Upsert rows by ``version_id`` in one commit (a round's checkpoint or its delivery outcomes)."""
    if not rows:
        return MergeStats(attempts=0)
    ensure_layout(store)
    df = with_bucket(pl.DataFrame(list(rows), schema=dict(DELIVERABLE_VERSIONS.schema), strict=False))
    lo, hi = df["created_at"].min(), df["created_at"].max()
    pin = all_of(In("user_bucket", df["user_bucket"].unique().sort().to_list()),
                 Window("created_at", lo, hi + _US) if lo is not None and hi is not None else None)
    return store.merge(DELIVERABLE_VERSIONS, df, pin=pin)

