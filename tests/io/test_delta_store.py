"""DeltaStore: window/IN replaces, refusal of full overwrites, pruned merges, evolution, retries."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp

import polars as pl
import pytest

from io_managers.delta_store import DeltaStore, TableSpec
from io_managers.predicates import And, Eq, In, Or, Window, sql_literal

U = dt.UTC
SPEC = TableSpec(
    "silver/t",
    {"k": pl.Utf8, "p": pl.Utf8, "day": pl.Date, "ts": pl.Datetime("us", "UTC"), "v": pl.Int64},
    partition_by=("p", "day"),
    keys=("k",),
)


def frame(rows: list[tuple[str, str, dt.date, dt.datetime, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=dict(SPEC.schema), orient="row")


def ts(d: int, h: int = 0) -> dt.datetime:
    return dt.datetime(2026, 1, d, h, tzinfo=U)


@pytest.fixture
def table(store: DeltaStore) -> DeltaStore:
    store.append(SPEC, frame([
        ("a", "slack", dt.date(2026, 1, 1), ts(1, 5), 1),
        ("b", "slack", dt.date(2026, 1, 1), ts(1, 23), 2),
        ("c", "gmail", dt.date(2026, 1, 2), ts(2, 1), 3),
        ("d", "slack", dt.date(2026, 1, 3), ts(3, 0), 4),
    ]))
    return store


def keys(store: DeltaStore) -> dict[str, int]:
    return dict(store.read(SPEC).select("k", "v").iter_rows())


def test_sql_literals_are_typed_and_quoted() -> None:
    assert sql_literal("o'brien") == "'o''brien'"
    assert sql_literal(dt.date(2026, 1, 2)) == "'2026-01-02'"
    assert sql_literal(dt.datetime(2026, 1, 2, 3, tzinfo=U)) == "'2026-01-02T03:00:00.000000Z'"
    with pytest.raises(ValueError, match="naive"):
        sql_literal(dt.datetime(2026, 1, 2))
    assert In("k", []).to_sql() == "false"
    assert Or((Eq("k", "a"), And((Eq("p", "x"), In("k", ["b", "c"]))))).to_sql() == \
        "(k = 'a' OR (p = 'x' AND k IN ('b', 'c')))"


def test_replace_by_timestamp_window_keeps_other_days(table: DeltaStore) -> None:
    # a tz-aware hour window: rows at 05:00 and 23:00 of day 1 are both inside the day's window
    table.replace(SPEC, frame([("a2", "slack", dt.date(2026, 1, 1), ts(1, 7), 10)]), Window("ts", ts(1), ts(2)))
    assert keys(table) == {"a2": 10, "c": 3, "d": 4}


def test_replace_hourly_window_touches_only_that_hour(table: DeltaStore) -> None:
    table.replace(SPEC, frame([("b2", "slack", dt.date(2026, 1, 1), ts(1, 23), 20)]), Window("ts", ts(1, 23), ts(2)))
    assert keys(table) == {"a": 1, "b2": 20, "c": 3, "d": 4}


def test_replace_a_range_of_days_replaces_the_whole_range(table: DeltaStore) -> None:
    window = Window("day", dt.date(2026, 1, 1), dt.date(2026, 1, 3))
    table.replace(SPEC, frame([("x", "slack", dt.date(2026, 1, 2), ts(2, 2), 9)]), window)
    assert keys(table) == {"x": 9, "d": 4}


def test_replace_by_in_list_of_static_keys(table: DeltaStore) -> None:
    table.replace(SPEC, frame([("g", "gmail", dt.date(2026, 1, 5), ts(5), 7)]), In("p", ["gmail"]))
    assert keys(table) == {"a": 1, "b": 2, "d": 4, "g": 7}


def test_rows_outside_the_predicate_are_refused_and_nothing_changes(table: DeltaStore) -> None:
    before = table.version(SPEC)
    with pytest.raises(ValueError, match="outside the write window"):
        table.replace(SPEC, frame([("z", "gmail", dt.date(2026, 1, 9), ts(9), 0)]), Eq("p", "slack"))
    assert table.version(SPEC) == before
    assert keys(table) == {"a": 1, "b": 2, "c": 3, "d": 4}


def test_a_predicate_is_mandatory(table: DeltaStore) -> None:
    with pytest.raises(ValueError, match="full-table overwrite"):
        table.replace(SPEC, frame([]), None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="every row"):
        table.delete(SPEC, None)  # type: ignore[arg-type]


def test_empty_replace_deletes_the_window_only(table: DeltaStore) -> None:
    table.replace(SPEC, frame([]), Eq("p", "gmail"))
    assert keys(table) == {"a": 1, "b": 2, "d": 4}


def test_reads_of_a_range_return_the_whole_range(table: DeltaStore) -> None:
    got = table.read(SPEC, Window("ts", ts(1), ts(3)))
    assert sorted(got["k"].to_list()) == ["a", "b", "c"]


def test_pinned_merge_skips_other_partitions(table: DeltaStore) -> None:
    day = dt.date(2026, 1, 1)
    batch = frame([("a", "slack", day, ts(1, 5), 100), ("n", "slack", day, ts(1, 6), 5)])
    stats = table.merge(SPEC, batch, update_when="t.v <> s.v")
    assert (stats.inserted, stats.updated) == (1, 1)
    assert stats.files_skipped >= 2  # gmail/day2 and slack/day3 files never read
    assert keys(table) == {"a": 100, "b": 2, "c": 3, "d": 4, "n": 5}


def test_merge_adds_new_columns_and_ignores_source_only_columns(table: DeltaStore) -> None:
    wider = TableSpec(SPEC.name, {**SPEC.schema, "note": pl.Utf8}, SPEC.partition_by, SPEC.keys)
    batch = frame([("a", "slack", dt.date(2026, 1, 1), ts(1, 5), 1)]).with_columns(
        pl.lit("hello").alias("note"), pl.lit(True).alias("only_in_source")
    )
    stats = table.merge(wider, batch, update_when="s.only_in_source")
    assert stats.updated == 1
    out = table.read(wider)
    assert "only_in_source" not in out.columns
    assert out.filter(pl.col("k") == "a")["note"].item() == "hello"
    assert out.filter(pl.col("k") == "b")["note"].item() is None


def test_append_evolves_schema(table: DeltaStore) -> None:
    wider = TableSpec(SPEC.name, {**SPEC.schema, "extra": pl.Int64}, SPEC.partition_by, SPEC.keys)
    table.append(wider, frame([("e", "slack", dt.date(2026, 1, 4), ts(4), 5)]).with_columns(pl.lit(1).alias("extra")))
    assert table.read(wider).filter(pl.col("k") == "e")["extra"].item() == 1


def _merge_worker(root: str, user: str, n: int) -> None:
    store = DeltaStore(root, backoff_seconds=0.05, max_commit_attempts=20)
    for i in range(n):
        store.merge(SPEC, frame([(f"{user}-{i % 2}", "slack", dt.date(2026, 1, 1), ts(1, 1), i)]),
                    pin=Eq("p", "slack"))


def test_concurrent_merges_on_one_partition_retry_until_committed(store: DeltaStore) -> None:
    store.ensure(SPEC)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_merge_worker, args=(store.root, f"u{j}", 4)) for j in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    got = keys(store)
    assert got == {f"u{j}-{i}": v for j in range(3) for i, v in ((0, 2), (1, 3))}
