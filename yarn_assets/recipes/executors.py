"""What each step type does, given the outputs of the steps before it (``scope``) and the runtime.

Plain Python, called by the Dagster ops (``build.py``) and usable directly in tests. Every
executor returns a :class:`StepResult`: the step's output (JSON data), the child steps it
activates (routes, branches, checks) and, for ``validation`` steps, the check outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from io_managers.json_steps import to_jsonable
from yarn_assets.recipes import dsl, registry
from yarn_assets.recipes.expressions import evaluate, path_exists, truthy
from yarn_assets.recipes.llm_steps import offline_fill, output_model, run_llm_flow
from yarn_assets.recipes.runtime import StepRuntime
from yarn_assets.recipes.step_results import (
    CheckOutcome,
    DeliveryFailed,
    StepError,
    StepResult,
    WaitTimeout,
    check_declared,
)
from yarn_assets.recipes.table_steps import readable_columns, run_output, run_read_asset, run_wait, table_spec
from yarn_assets.recipes.templates import resolve

#: the step results, errors and per-type executors, importable from here as before the split
__all__ = ["EXECUTORS", "CheckOutcome", "DeliveryFailed", "StepError", "StepResult", "WaitTimeout", "execute",
           "measure", "offline_fill", "output_model", "readable_columns", "route_targets", "run_conditional",
           "run_function", "run_llm_flow", "run_output", "run_read_asset", "run_validation", "run_wait", "table_spec"]


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
    check_declared(step, produced, fn.outputs)
    return StepResult(output=dict(produced))


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
