"""DeltaPolarsIOManager across partition shapes: the failures of the stock manager must not happen."""


import datetime as dt

import dagster as dg
import polars as pl
import pytest

from io_managers.delta_io_manager import DeltaPolarsIOManager, PartitionMappingError

U = dt.UTC
daily = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-10")
hourly = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", end_date="2026-01-02-00:00")
static = dg.StaticPartitionsDefinition(["gmail", "notion", "slack"])
multi = dg.MultiPartitionsDefinition({"date": daily, "platform": static})


def _day_rows(key: str, column: str, kind: str) -> pl.DataFrame:
    day = dt.date.fromisoformat(key)
    values: dict[str, object] = {
        "date": [day, day],
        "string": [key, key],
        "timestamp": [dt.datetime.combine(day, dt.time(1), U), dt.datetime.combine(day, dt.time(22), U)],
    }
    return pl.DataFrame({column: values[kind], "v": [f"{key}-1", f"{key}-2"]})


@pytest.mark.parametrize("kind", ["date", "string", "timestamp"])
def test_daily_partitions_on_any_column_type_keep_other_days(tmp_path, kind: str) -> None:
    @dg.asset(partitions_def=daily, metadata={"partition_expr": "day"}, key=["gold", f"daily_{kind}"])
    def daily_asset(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return _day_rows(context.partition_key, "day", kind)

    @dg.asset(deps=[], ins={"up": dg.AssetIn(key=["gold", f"daily_{kind}"])}, key=["gold", f"all_{kind}"])
    def downstream(up: pl.DataFrame) -> pl.DataFrame:
        return up.select(pl.len().alias("rows"))

    io = DeltaPolarsIOManager(root=str(tmp_path))
    for key in ("2026-01-01", "2026-01-02", "2026-01-01"):
        dg.materialize([daily_asset], partition_key=key, resources={"io_manager": io})
    out = dg.materialize([daily_asset, downstream], selection=[downstream], resources={"io_manager": io})
    assert out.output_for_node("gold__all_" + kind)["rows"].item() == 4  # both days, no truncation
    stored = pl.read_delta(str(tmp_path / "gold" / f"daily_{kind}"))
    assert sorted(stored["v"].to_list()) == ["2026-01-01-1", "2026-01-01-2", "2026-01-02-1", "2026-01-02-2"]


def test_hourly_tz_aware_partitions_and_single_run_range(tmp_path) -> None:
    @dg.asset(partitions_def=hourly, metadata={"partition_expr": "ts"}, backfill_policy=dg.BackfillPolicy.single_run())
    def hours(context: dg.AssetExecutionContext) -> pl.DataFrame:
        window = context.partition_time_window
        rows, t = [], window.start
        while t < window.end:
            rows.append({"ts": t.astimezone(U) + dt.timedelta(minutes=30), "v": t.hour})
            t += dt.timedelta(hours=1)
        return pl.DataFrame(rows, schema={"ts": pl.Datetime("us", "UTC"), "v": pl.Int64})

    io = DeltaPolarsIOManager(root=str(tmp_path))
    dg.materialize([hours], partition_key="2026-01-01-03:00", resources={"io_manager": io})
    dg.materialize([hours], partition_key="2026-01-01-04:00", resources={"io_manager": io})
    # a single-run range over 02:00..05:00 rewrites exactly those hours
    dg.materialize([hours], resources={"io_manager": io}, tags={
        "dagster/asset_partition_range_start": "2026-01-01-02:00",
        "dagster/asset_partition_range_end": "2026-01-01-05:00",
    })
    stored = pl.read_delta(str(tmp_path / "hours")).sort("ts")
    assert stored["v"].to_list() == [2, 3, 4, 5]


def test_static_and_multi_partitions_write_only_their_keys(tmp_path) -> None:
    @dg.asset(partitions_def=multi, metadata={"partition_expr": {"date": "day", "platform": "platform"}})
    def content(context: dg.AssetExecutionContext) -> pl.DataFrame:
        dims = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
        return pl.DataFrame({"day": [dt.date.fromisoformat(dims["date"])], "platform": [dims["platform"]],
                             "run": [context.run.run_id]})

    io = DeltaPolarsIOManager(root=str(tmp_path))
    for key in ("2026-01-01|slack", "2026-01-01|gmail", "2026-01-02|slack"):
        dg.materialize([content], partition_key=key, resources={"io_manager": io})
    first = pl.read_delta(str(tmp_path / "content"))
    again = dg.materialize([content], partition_key="2026-01-01|slack", resources={"io_manager": io})
    second = pl.read_delta(str(tmp_path / "content"))
    assert second.height == 3
    changed = second.join(first, on=["day", "platform"], suffix="_old").filter(pl.col("run") != pl.col("run_old"))
    assert changed.select("platform", "day").rows() == [("slack", dt.date(2026, 1, 1))]
    assert again.success


def test_dynamic_partitions_use_in_predicates(tmp_path) -> None:
    users = dg.DynamicPartitionsDefinition(name="users")

    @dg.asset(partitions_def=users, metadata={"partition_expr": "user_id"})
    def per_user(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"user_id": [context.partition_key] * 2, "n": [1, 2]})

    io = DeltaPolarsIOManager(root=str(tmp_path))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("users", ["u'1", "u2"])
        for key in ("u'1", "u2", "u'1"):
            dg.materialize([per_user], partition_key=key, instance=instance, resources={"io_manager": io})
    stored = pl.read_delta(str(tmp_path / "per_user"))
    assert stored.group_by("user_id").len().sort("user_id").rows() == [("u'1", 2), ("u2", 2)]


def test_partitioned_asset_without_partition_expr_fails_loudly(tmp_path) -> None:
    @dg.asset(partitions_def=static)
    def no_expr(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"platform": [context.partition_key]})

    io = DeltaPolarsIOManager(root=str(tmp_path))
    dg.materialize([no_expr], partition_key="slack", resources={"io_manager": io}, raise_on_error=False)
    with pytest.raises(PartitionMappingError):
        dg.materialize([no_expr], partition_key="gmail", resources={"io_manager": io})


def test_merge_mode_upserts_by_keys_inside_the_partition(tmp_path) -> None:
    @dg.asset(partitions_def=static, metadata={"partition_expr": "platform", "write_mode": "merge",
                                               "merge_keys": ["platform", "id"]})
    def items(context: dg.AssetExecutionContext) -> pl.DataFrame:
        n = int(context.run.tags.get("n", "1"))
        return pl.DataFrame({"platform": [context.partition_key] * n, "id": list(range(n)), "v": [n] * n})

    io = DeltaPolarsIOManager(root=str(tmp_path))
    dg.materialize([items], partition_key="slack", resources={"io_manager": io}, tags={"n": "2"})
    dg.materialize([items], partition_key="slack", resources={"io_manager": io}, tags={"n": "3"})
    dg.materialize([items], partition_key="gmail", resources={"io_manager": io}, tags={"n": "1"})
    stored = pl.read_delta(str(tmp_path / "items")).sort("platform", "id")
    assert stored.rows() == [("gmail", 0, 1), ("slack", 0, 3), ("slack", 1, 3), ("slack", 2, 3)]
