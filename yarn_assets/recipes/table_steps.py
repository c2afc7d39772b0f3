"""Steps that touch tables and assets: ``read_asset``/``data_transform``, ``wait_for_asset``, ``output``."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping
from typing import Any

import polars as pl

from io_managers.delta_store import TableSpec
from io_managers.json_steps import to_jsonable
from io_managers.predicates import Eq, In, Predicate, all_of
from yarn_assets.recipes import dsl
from yarn_assets.recipes.runtime import StepRuntime, parse_time
from yarn_assets.recipes.step_results import DeliveryFailed, StepError, StepResult, WaitTimeout
from yarn_assets.recipes.templates import format_value, resolve


# ------------------------------------------------------------------------------------------ read_asset
def table_spec(name: str) -> TableSpec:
    from yarn_assets.core.catalog import all_tables

    for spec in all_tables():
        if spec.name == name:
            return spec
    raise StepError(f"unknown table '{name}'; tables: {', '.join(sorted(s.name for s in all_tables()))}")


def readable_columns(spec: TableSpec) -> list[str]:
    return [c for c, t in spec.schema.items() if t != pl.Binary]


def _predicate(spec: TableSpec, filters: Mapping[str, Any], step_id: str) -> Predicate | None:
    parts: list[Predicate] = []
    for column, value in filters.items():
        if column not in spec.schema:
            raise StepError(f"step '{step_id}': {spec.name} has no column '{column}'")
        if isinstance(value, list):
            parts.append(In(column, value))
        elif value is None:
            raise StepError(f"step '{step_id}': filter {column} resolved to null")
        else:
            parts.append(Eq(column, value))
    return all_of(*parts)


def _agg(spec: TableSpec, name: str, how: str) -> pl.Expr:
    fn, _, column = how.partition(":")
    if fn == "count":
        return pl.len().alias(name)
    if column not in spec.schema:
        raise StepError(f"aggregate {name}: {spec.name} has no column '{column}'")
    exprs = {"min": pl.col(column).min(), "max": pl.col(column).max(), "sum": pl.col(column).sum(),
             "n_unique": pl.col(column).n_unique(), "mean": pl.col(column).mean()}
    if fn not in exprs:
        raise StepError(f"aggregate {name}: unknown function '{fn}' (count, min, max, sum, mean, n_unique)")
    return exprs[fn].alias(name)


def run_read_asset(step: dsl.ReadAssetStep, scope: Mapping[str, Any], rt: StepRuntime) -> StepResult:
    spec = table_spec(step.table)
    filters = resolve(step.filter, scope)
    if "user_id" in spec.schema and not filters.get("user_id"):
        raise StepError(f"step '{step.id}': {spec.name} holds every user's rows; filter on user_id")
    lf = rt.store.scan(spec, _predicate(spec, filters, step.id))
    columns = step.columns or readable_columns(spec)
    if lf is None:
        return StepResult(output={"table": spec.name, "rows": [], "count": 0, "truncated": False})
    if "expires_at" in spec.schema and "retained" in spec.schema:  # expired, unretained content is not used
        lf = lf.filter(pl.col("retained").fill_null(False) | pl.col("expires_at").is_null()
                       | (pl.col("expires_at") > rt.now))
    if step.since is not None:
        if step.since.start is not None:
            start = parse_time(resolve(step.since.start, scope), f"since.start of step '{step.id}'")
        else:
            start = rt.now - dt.timedelta(days=step.since.days or 0, hours=step.since.hours or 0)
        lf = lf.filter(pl.col(step.since.column) >= start)
    if step.group_by:
        aggs = [_agg(spec, name, how) for name, how in step.aggregate.items()] or [pl.len().alias("count")]
        lf = lf.group_by(step.group_by).agg(aggs).sort(step.group_by)
        columns = [*step.group_by, *(step.aggregate or {"count": "count"})]
    if step.order_by:
        lf = lf.sort([o.column for o in step.order_by], descending=[o.descending for o in step.order_by],
                     nulls_last=True)
    limit = min(step.limit, rt.limits.max_rows)
    df = lf.select(columns).head(limit + 1).collect()
    truncated = df.height > limit
    rows = to_jsonable(df.head(limit).to_dicts())
    return StepResult(output={"table": spec.name, "rows": rows, "count": len(rows), "truncated": truncated})


# ------------------------------------------------------------------------------------------ wait_for_asset
def run_wait(step: dsl.WaitForAssetStep, scope: Mapping[str, Any], rt: StepRuntime,
             sleep: Any = time.sleep) -> StepResult:
    import dagster as dg

    if rt.instance is None:
        raise StepError(f"step '{step.id}' needs a Dagster instance to look up materializations")
    after_raw = resolve(step.after, scope) if step.after is not None else None
    after = parse_time(after_raw, f"after of step '{step.id}'") if after_raw else None
    minutes = min(step.timeout_minutes, rt.limits.max_wait_minutes)
    started = time.monotonic()
    deadline = started + minutes * 60
    keys = {a: dg.AssetKey.from_user_string(a) for a in step.assets}
    while True:
        found: dict[str, Any] = {}
        for name, key in keys.items():
            event = rt.instance.get_latest_materialization_event(key)
            if event is not None and (after is None or event.timestamp >= after.timestamp()):
                found[name] = {"materialized_at": dt.datetime.fromtimestamp(event.timestamp, dt.UTC).isoformat(),
                               "run_id": event.run_id}
        if len(found) == len(keys):
            return StepResult(output={"assets": found, "waited_seconds": round(time.monotonic() - started, 3)})
        if time.monotonic() >= deadline:
            missing = [a for a in keys if a not in found]
            raise WaitTimeout(f"step '{step.id}': no materialization of {', '.join(missing)}"
                              f"{' after ' + after.isoformat() if after else ''} within {minutes:g} min")
        sleep(min(step.poll_interval_seconds, max(0.0, deadline - time.monotonic())))


# ------------------------------------------------------------------------------------------ output
def run_output(step: dsl.OutputStep, scope: Mapping[str, Any], rt: StepRuntime) -> StepResult:
    output: dict[str, Any] = {}
    if step.table is not None:
        output["table"] = _write_table_row(step, scope, rt)
    if step.deliver is not None:
        output["delivery"] = _deliver(step, scope, rt)
    return StepResult(output=output)


def _render(content: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(content, ensure_ascii=False, sort_keys=True, default=str)
    return format_value(content)


def _write_table_row(step: dsl.OutputStep, scope: Mapping[str, Any], rt: StepRuntime) -> dict[str, Any]:
    from yarn_assets.recipes.tables import RECIPE_OUTPUTS

    spec = step.table
    assert spec is not None
    user_id = resolve(spec.user_id, scope)
    key = resolve(spec.key, scope)
    if not user_id or not key:
        raise StepError(f"step '{step.id}': the output row needs a user_id and a key (got {user_id!r}, {key!r})")
    content = resolve(spec.content, scope)
    data = resolve(spec.data, scope)
    offline = bool(getattr(rt.llm, "is_offline", False))
    row = {
        "recipe_id": rt.recipe_id, "user_id": str(user_id), "output_key": str(key), "step_id": step.id,
        "title": format_value(resolve(spec.title, scope)) if spec.title is not None else None,
        "format": step.format, "content": _render(content, step.format) if content is not None else None,
        "data": json.dumps(to_jsonable(data), ensure_ascii=False, sort_keys=True) if data is not None else None,
        "offline": offline, "run_id": rt.run_id, "root_run_id": rt.root_run_id, "created_at": rt.now,
        "updated_at": dt.datetime.now(dt.UTC),
    }
    df = pl.DataFrame([row], schema=dict(RECIPE_OUTPUTS.schema), strict=False)
    rt.store.merge(RECIPE_OUTPUTS, df, pin=Eq("recipe_id", rt.recipe_id))
    return {"table": RECIPE_OUTPUTS.name, "user_id": row["user_id"], "key": row["output_key"],
            "chars": len(row["content"] or "")}


def _deliver(step: dsl.OutputStep, scope: Mapping[str, Any], rt: StepRuntime) -> dict[str, Any]:
    """Deliver as a version of the named deliverable, exactly once per run lineage, to its configured destination."""
    from yarn_assets.recipes import delivery

    spec = step.deliver
    assert spec is not None
    deliverable_id = resolve(spec.deliverable, scope)
    content = _render(resolve(spec.content, scope), step.format)
    title = format_value(resolve(spec.title, scope)) if spec.title is not None else None
    llm = resolve(spec.llm, scope) if spec.llm is not None else None
    result = delivery.deliver_version(rt, deliverable_id=str(deliverable_id), content=content, title=title, llm=llm)
    if result["status"] != "delivered":
        raise DeliveryFailed(f"step '{step.id}': delivery of {result['version_id']} failed: {result.get('error')}")
    return result
