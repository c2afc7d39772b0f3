"""What each step type does, given the outputs of the steps before it (``scope``) and the runtime.

Plain Python, called by the Dagster ops (``build.py``) and usable directly in tests. Every
executor returns a :class:`StepResult`: the step's output (JSON data), the child steps it
activates (routes, branches, checks) and, for ``validation`` steps, the check outcomes.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, create_model

from io_managers.delta_store import TableSpec
from io_managers.json_steps import to_jsonable
from io_managers.predicates import Eq, In, Predicate, all_of
from yarn_assets.recipes import dsl, registry
from yarn_assets.recipes.expressions import evaluate, path_exists, truthy
from yarn_assets.recipes.registry import FlowCall
from yarn_assets.recipes.runtime import StepRuntime, parse_time
from yarn_assets.recipes.templates import format_value, resolve


class StepError(RuntimeError):
    """A step that cannot produce its output (the message names the step and the reason)."""


class WaitTimeout(StepError):
    pass


class DeliveryFailed(StepError):
    pass


@dataclass
class CheckOutcome:
    name: str
    metric: str
    value: float
    threshold: float
    op: str
    passed: bool
    severity: str
    blocking: bool
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "threshold": self.threshold, "op": self.op,
                "passed": self.passed, "severity": self.severity, **self.detail}


@dataclass
class StepResult:
    output: dict[str, Any]
    activate: list[str] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ helpers
def _declared(step: Any, produced: Mapping[str, Any], extra: tuple[str, ...] = ()) -> None:
    missing = [k for k in (*step.outputs, *extra) if k not in produced]
    if missing:
        raise StepError(f"step '{step.id}' did not produce declared output{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(missing)}; it produced: {', '.join(sorted(produced)) or '(nothing)'}")


def _usage(result: Any) -> dict[str, Any]:
    u = result.usage
    return {"model": result.model, "offline": bool(result.offline), "calls": u.calls,
            "input_tokens": u.input_tokens + u.cache_read_tokens + u.cache_write_tokens,
            "output_tokens": u.output_tokens, "cost_usd": round(u.cost_usd, 6)}


def route_targets(step: Any, output: Mapping[str, Any], scope: Mapping[str, Any]) -> list[str]:
    """Steps activated after ``step`` succeeded: legacy ``check`` rules, then ``on_success.routes``."""
    targets: list[str] = []
    for rule in step.check:
        if rule.exists is not None:
            hit = path_exists(output, rule.exists)
        elif rule.not_exists is not None:
            hit = not path_exists(output, rule.not_exists)
        else:
            hit = truthy(str(rule.boolean), scope, names=output)
        if hit:
            targets.extend(rule.run)
    if step.on_success is not None:
        here = {**scope, step.id: output}
        default = None
        matched = False
        for route in step.on_success.routes:
            if route.match is None:
                default = route
                continue
            if truthy(route.match.expression, here):
                matched = True
                targets.extend([*route.run, *(s.id for s in route.steps)])
        if not matched and default is not None:
            targets.extend([*default.run, *(s.id for s in default.steps)])
    return list(dict.fromkeys(targets))


# ------------------------------------------------------------------------------------------ function
def run_function(step: dsl.FunctionStep, scope: Mapping[str, Any], rt: StepRuntime) -> StepResult:
    fn = registry.function(step.method)
    values = fn.coerce(resolve(step.inputs, scope))
    produced = fn.fn(rt, **values)
    if not isinstance(produced, Mapping):
        raise StepError(f"function '{step.method}' returned {type(produced).__name__}, not a mapping of outputs")
    _declared(step, produced, fn.outputs)
    return StepResult(output=dict(produced))


# ------------------------------------------------------------------------------------------ llm_flow
_TYPES: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool, "list[str]": list[str],
                          "list[int]": list[int], "list[float]": list[float], "list[dict]": list[dict[str, Any]],
                          "dict": dict[str, Any]}


def output_model(step: dsl.LLMFlowStep) -> type[BaseModel] | None:
    if not isinstance(step.output, dict):
        return None
    name = "".join(part.capitalize() for part in step.id.split("_")) + "Output"
    fields: dict[str, Any] = {k: (_TYPES[v], ...) for k, v in step.output.items()}
    model = create_model(name, __config__=ConfigDict(extra="ignore"), **fields)
    model.__doc__ = step.description or f"The answer of recipe step {step.id}."
    return model


def offline_fill(model: type[BaseModel], prompt: str) -> dict[str, Any]:
    """The generic offline answer of an inline flow without ``offline:``: derived from the prompt only.

    Strings get the prompt's first line, string lists its first ten lines, numbers 0, booleans false.
    """
    lines = [ln.strip() for ln in prompt.splitlines() if ln.strip()]
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        ann = info.annotation
        if ann is str:
            out[name] = (lines[0] if lines else "")[:300]
        elif ann == list[str]:
            out[name] = [ln[:300] for ln in lines[:10]]
        elif ann is bool:
            out[name] = False
        elif ann in (int, float):
            out[name] = 0
        elif ann == dict[str, Any]:
            out[name] = {}
        else:
            out[name] = []
    return out


def _inline_call(step: dsl.LLMFlowStep, scope: Mapping[str, Any], model: type[BaseModel] | None) -> FlowCall:
    assert step.prompt is not None
    system = format_value(resolve(step.prompt.system, scope))
    prompt = format_value(resolve(step.prompt.user, scope))

    def offline() -> Any:
        if step.offline is not None:
            answer = resolve(step.offline, scope)
            return format_value(answer) if model is None else answer
        if model is None:
            return prompt
        return offline_fill(model, prompt)

    return FlowCall(system=system, prompt=prompt, offline=offline, max_tokens=step.max_tokens)


def run_llm_flow(step: dsl.LLMFlowStep, scope: Mapping[str, Any], rt: StepRuntime) -> StepResult:
    user_id: Any = None
    if step.flow is not None:
        flow = registry.flow(step.flow)
        values = flow.coerce(resolve(step.inputs, scope))
        call = flow.build(rt, **values)
        model, task = flow.output, flow.task
    else:
        model, task = output_model(step), step.task
        call = _inline_call(step, scope, model)
        user_id = resolve(step.inputs.get("user_id"), scope) if "user_id" in step.inputs else None
    user_id = getattr(call, "user_id", None) or user_id
    if model is None:
        result = rt.llm.text(task=task, user_id=user_id, system=call.system, prompt=call.prompt,
                             offline=call.offline, scope=rt.scope, max_tokens=call.max_tokens)
        value: Any = result.text
        output: dict[str, Any] = {"text": result.text}
    else:
        result = rt.llm.structured(task=task, user_id=user_id, system=call.system, prompt=call.prompt, output=model,
                                   offline=call.offline, scope=rt.scope, max_tokens=call.max_tokens)
        value = result.value
        output = result.value.model_dump(mode="json")
    if call.post is not None:
        output = dict(call.post(value))
    output["llm"] = _usage(result)
    _declared(step, output)
    return StepResult(output=output)


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


# ------------------------------------------------------------------------------------------ conditional
def run_conditional(step: dsl.ConditionalStep, scope: Mapping[str, Any], rt: StepRuntime) -> StepResult:
    value = truthy(step.condition.expression, scope)
    branch = step.branches.if_true if value else step.branches.if_false
    return StepResult(output={"value": value, "branch": "if_true" if value else "if_false"},
                      activate=[s.id for s in branch.steps])


# ------------------------------------------------------------------------------------------ validation
def _as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [value]
    raise StepError(f"{what} must be a list, got {type(value).__name__}")


def _filled(v: Any) -> bool:
    return v not in (None, "", [], {})


def measure(name: str, spec: dsl.CheckSpec, scope: Mapping[str, Any]) -> CheckOutcome:
    detail: dict[str, Any] = {}
    if spec.metric == "completeness":
        items = _as_list(resolve(spec.of, scope), f"check {name}: of")
        complete = sum(1 for it in items if isinstance(it, Mapping) and all(_filled(it.get(f)) for f in spec.fields))
        value = complete / len(items) if items else 0.0
        detail = {"items": len(items), "complete": complete}
    elif spec.metric == "relevance":
        texts = [str(t) for t in _as_list(resolve(spec.texts, scope), f"check {name}: texts")]
        terms = [str(t).casefold() for t in _as_list(resolve(spec.terms, scope), f"check {name}: terms") if str(t)]
        hits = sum(1 for t in texts if any(term in t.casefold() for term in terms))
        value = hits / len(texts) if texts else 0.0
        detail = {"texts": len(texts), "relevant": hits}
    else:
        raw = evaluate(spec.value, scope) if isinstance(spec.value, str) else resolve(spec.value, scope)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise StepError(f"check {name}: value {raw!r} is not a number") from None
    passed = {">=": value >= spec.threshold, ">": value > spec.threshold, "<=": value <= spec.threshold,
              "<": value < spec.threshold, "==": value == spec.threshold}[spec.op]
    return CheckOutcome(name, str(spec.metric), round(value, 6), spec.threshold, spec.op, passed, spec.severity,
                        spec.blocking, detail)


def run_validation(step: dsl.ValidationStep, scope: Mapping[str, Any], rt: StepRuntime) -> StepResult:
    outcomes = [measure(name, spec, scope) for name, spec in step.checks.items() if spec.enabled]
    output = {"checks": {o.name: o.as_dict() for o in outcomes}, "passed": all(o.passed for o in outcomes),
              "failed": [o.name for o in outcomes if not o.passed]}
    return StepResult(output=output, checks=outcomes)


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


# ------------------------------------------------------------------------------------------ dispatch
EXECUTORS: dict[type, Any] = {
    dsl.FunctionStep: run_function,
    dsl.LLMFlowStep: run_llm_flow,
    dsl.ReadAssetStep: run_read_asset,
    dsl.WaitForAssetStep: run_wait,
    dsl.ConditionalStep: run_conditional,
    dsl.ValidationStep: run_validation,
    dsl.OutputStep: run_output,
}


def execute(step: Any, scope: Mapping[str, Any], rt: StepRuntime) -> StepResult:
    """Run one (non-structural) step and work out which routes it activates."""
    runner = EXECUTORS.get(type(step))
    if runner is None:
        raise StepError(f"step '{step.id}' ({step.type}) is structural and has no executor")
    result = runner(step, scope, rt)
    result.output = to_jsonable(result.output)
    result.activate = list(dict.fromkeys([*result.activate, *route_targets(step, result.output, scope)]))
    return result
