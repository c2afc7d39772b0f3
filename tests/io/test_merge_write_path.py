"""DeltaStore.merge write path: rows for empty partitions are written, not joined; same table either way."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from io_managers import delta_merge, delta_store
from io_managers.delta_store import DeltaStore, TableSpec, partitions_predicate, sql_mask
from io_managers.predicates import In

U = dt.UTC
SPEC = TableSpec(
    "silver/w",
    {"k": pl.Utf8, "p": pl.Utf8, "day": pl.Date, "v": pl.Int64, "tags": pl.List(pl.Utf8)},
    partition_by=("p", "day"),
    keys=("k",),
)


def frame(rows: list[tuple[str, str, int, int]], deleted: list[bool] | None = None) -> pl.DataFrame:
    df = pl.DataFrame(
        [(k, p, dt.date(2026, 1, d), v, [f"t{v}"]) for k, p, d, v in rows], schema=dict(SPEC.schema), orient="row"
    )
    return df.with_columns(pl.Series("is_deleted", deleted or [False] * df.height))


def table(store: DeltaStore) -> pl.DataFrame:
    return store.read(SPEC).sort("k")


def operations(store: DeltaStore) -> list[str]:
    return [h["operation"] for h in reversed(DeltaTable(store.uri(SPEC)).history())]


BATCH = [("a", "slack", 1, 1), ("b", "slack", 2, 2), ("c", "gmail", 1, 3), ("d", "slack", 2, 4)]


def test_first_load_is_a_write_and_equals_the_merge(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fast, joined = DeltaStore(str(tmp_path / "fast")), DeltaStore(str(tmp_path / "joined"))
    stats = fast.merge(SPEC, frame(BATCH), insert_when="NOT s.is_deleted")
    # an explicit pin keeps the classic merge: the reference result
    ref = joined.merge(SPEC, frame(BATCH), insert_when="NOT s.is_deleted", pin=In("p", ["slack", "gmail"]))
    assert (stats.inserted, stats.source_rows, ref.inserted) == (4, 4, 4)
    assert table(fast).equals(table(joined))
    assert operations(fast)[-1] == "WRITE" and operations(joined)[-1] == "MERGE"


def test_insert_when_holds_on_the_write_path(store: DeltaStore) -> None:
    stats = store.merge(SPEC, frame(BATCH, deleted=[False, True, False, False]), insert_when="NOT s.is_deleted")
    assert stats.inserted == 3
    assert table(store)["k"].to_list() == ["a", "c", "d"]


def test_rows_for_populated_partitions_still_merge(store: DeltaStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delta_merge, "INSERT_BY_WRITE_MIN_ROWS", 2)
    store.merge(SPEC, frame([("a", "slack", 1, 1)]))
    # a, b land in populated slack/day1 (merged: a updated, b inserted); e, f, g in empty partitions (written)
    batch = frame([("a", "slack", 1, 10), ("b", "slack", 1, 20), ("e", "slack", 5, 5), ("f", "gmail", 5, 6),
                   ("g", "gmail", 6, 7)])
    stats = store.merge(SPEC, batch, update_when="t.v <> s.v")
    assert (stats.inserted, stats.updated) == (4, 1)
    assert dict(table(store).select("k", "v").iter_rows()) == {"a": 10, "b": 20, "e": 5, "f": 6, "g": 7}
    assert operations(store)[-2:] == ["WRITE", "MERGE"]


def test_a_few_rows_for_empty_partitions_ride_along_in_one_merge(store: DeltaStore) -> None:
    store.merge(SPEC, frame([("a", "slack", 1, 1)]))
    before = len(operations(store))
    stats = store.merge(SPEC, frame([("a", "slack", 1, 2), ("n", "slack", 9, 9)]))
    assert (stats.inserted, stats.updated) == (1, 1)
    assert operations(store)[before:] == ["MERGE"]  # one commit: the batch lands atomically


def test_a_writer_that_lost_the_race_for_an_empty_partition_fails_its_commit(store: DeltaStore) -> None:
    store.ensure(SPEC)
    stale = DeltaTable(store.uri(SPEC))  # snapshot in which slack/day1 is empty
    store.merge(SPEC, frame([("a", "slack", 1, 1)]))  # another writer fills it meanwhile
    batch = SPEC.conform(frame([("a", "slack", 1, 2)]))
    with pytest.raises(CommitFailedError):
        store._insert_into_empty(SPEC, stale, batch, list(SPEC.schema), None)
    assert table(store)["v"].to_list() == [1]  # nothing duplicated, nothing replaced


def test_retry_after_a_lost_race_merges_instead(store: DeltaStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.ensure(SPEC)
    real = delta_store.DeltaStore._insert_into_empty
    calls = {"n": 0}

    def racing(self, spec, tbl, frm, columns, insert_when):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:  # a concurrent first load commits the same key just before us
            DeltaStore(self.root).merge(SPEC, frame([("a", "slack", 1, 1)]), pin=In("p", ["slack"]))
        return real(self, spec, tbl, frm, columns, insert_when)

    monkeypatch.setattr(delta_store.DeltaStore, "_insert_into_empty", racing)
    stats = store.merge(SPEC, frame([("a", "slack", 1, 2)]), update_when="t.v <> s.v")
    assert stats.attempts == 2 and stats.updated == 1
    assert table(store).select("k", "v").rows() == [("a", 2)]


def test_partition_predicates_match_exactly_the_given_tuples() -> None:
    pred = partitions_predicate(["p", "day"], [("slack", dt.date(2026, 1, 1)), ("slack", dt.date(2026, 1, 2)),
                                               ("gmail", dt.date(2026, 1, 1))])
    assert pred.to_sql() == ("((p = 'gmail' AND day = '2026-01-01') OR "
                             "(p = 'slack' AND day IN ('2026-01-01', '2026-01-02')))")
    df = frame([("a", "slack", 1, 1), ("b", "gmail", 2, 2), ("c", "slack", 2, 3), ("d", "gmail", 1, 4)])
    assert df.filter(pred.to_polars())["k"].to_list() == ["a", "c", "d"]


def test_sql_mask_reads_merge_style_conditions() -> None:
    df = frame(BATCH, deleted=[False, True, False, True])
    assert sql_mask(df, "NOT s.is_deleted AND s.v > 1").to_list() == [False, False, True, False]
