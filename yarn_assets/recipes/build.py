"""A validated recipe as Dagster definitions: one graph-backed asset whose steps are ops, plus a job.

Every step is its own op (``<recipe>__<step>``): its own retry policy, logs, status in the run
view and re-execution. Data between ops is a JSON *envelope* ``{step, status, output, error,
attempts, ms}`` stored by ``recipe_io_manager`` (files keyed by run and step), so Dagster's
re-execution from failure or of a step selection reuses what the earlier run produced.

How the DSL maps onto the op graph (see ``plan.py`` for the dependency rules):

* ``input`` op: validates the run's inputs (run config ``{"inputs": {...}}``) and fixes ``now``.
* hard dependencies are plain op inputs (a skipped upstream skips this step: Dagster's skip),
  soft ones and the input envelope go through one fan-in input ``ctx`` (it waits, never skips).
* activation (``is_child``, branches, routes, fallbacks): the activating op yields an optional
  ``to_<target>`` output; the target's ``act`` input is a fan-in of those, so it runs when at
  least one activator fired and is skipped otherwise.
* ``loop``: a fan-out op with a dynamic output per item, the body ops chained per item
  (``.map``), and a ``collect`` op; ``max_parallel`` and a group's ``max_parallel`` become
  ``tag_concurrency_limits`` of the recipe job's executor.
* ``validation`` checks are asset checks of the recipe asset, yielded by the validation op.
* ``retry_policy`` is the op's ``RetryPolicy``; the op raises ``RetryRequested`` with the capped
  backoff (``max_backoff_seconds``, which RetryPolicy cannot express) for the attempts it handles.
"""

import datetime as dt
import hashlib
import inspect
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from resources.llm import LLMScope
from yarn_assets.recipes import dsl
from yarn_assets.recipes.executors import StepResult, execute
from yarn_assets.recipes.expressions import ExpressionError
from yarn_assets.recipes.plan import Node, Plan
from yarn_assets.recipes.registry import RegistryError
from yarn_assets.recipes.runtime import Limits, StepRuntime, parse_time
from yarn_assets.recipes.templates import TemplateError, resolve

IO_KEY = "recipe_io_manager"
RESOURCE_KEYS = {"warehouse", "control_plane", "llm", "search", "delivery", "recipe_limits"}
GROUP = "recipes"
INPUT = "input"
PARALLEL_TAG = "yarnnn/recipe_parallel"

def asset_key(recipe: dsl.Recipe) -> dg.AssetKey:
    return dg.AssetKey(["gold", "recipes", recipe.pipeline_id])


def op_name(recipe: dsl.Recipe, step_id: str) -> str:
    return f"{recipe.pipeline_id}__{step_id}"


def job_name(recipe: dsl.Recipe) -> str:
    return f"recipe_{recipe.pipeline_id}"


def check_name(step_id: str, check: str) -> str:
    return f"{step_id}_{check}"


def envelope(step: str, status: str, output: Mapping[str, Any] | None = None, *, error: str | None = None,
             attempts: int = 1, ms: float = 0.0) -> dict[str, Any]:
    return {"step": step, "status": status, "output": dict(output or {}), "error": error, "attempts": attempts,
            "ms": round(ms, 1)}


def run_config(recipe: dsl.Recipe, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Run config that passes ``inputs`` to a run of the recipe's asset or job."""
    return {"ops": {asset_key(recipe).to_python_identifier(): {"config": {"inputs": dict(inputs)}}}}


# ------------------------------------------------------------------------------------------ inputs
_INPUT_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
                                "list": list, "object": dict}


class InputError(ValueError):
    pass


def _is_type(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return kind == "boolean"
    return isinstance(value, _INPUT_TYPES[kind])


def coerce_inputs(recipe: dsl.Recipe, given: Mapping[str, Any]) -> dict[str, Any]:
    """The run's inputs: declared ones checked and defaulted, ``now`` fixed (ISO, UTC)."""
    unknown = sorted(set(given) - set(recipe.inputs) - {"now"})
    problems = [f"unknown input{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; the recipe takes: "
                f"{', '.join(recipe.inputs) or '(none)'}"] if unknown else []
    values: dict[str, Any] = {}
    for name, spec in recipe.inputs.items():
        if name in given and given[name] is not None:
            value = given[name]
        elif spec.required:
            problems.append(f"input '{name}' is required")
            continue
        else:
            value = spec.default
        if value is not None:
            if spec.type == "datetime":
                try:
                    value = parse_time(value, f"input '{name}'").isoformat()
                except ValueError as exc:
                    problems.append(str(exc))
                    continue
            elif not _is_type(value, spec.type):
                problems.append(f"input '{name}' must be {spec.type}, got {type(value).__name__}")
                continue
        values[name] = value
    now = given.get("now")
    try:
        values["now"] = parse_time(now, "input 'now'").isoformat() if now else dt.datetime.now(dt.UTC).isoformat()
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise InputError(f"recipe {recipe.pipeline_id}: " + "; ".join(problems))
    return values


# ------------------------------------------------------------------------------------------ runtime
def scope_from(envelopes: list[Any], extra: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Template scope from upstream envelopes; failed steps are absent, with a hint saying why."""
    scope: dict[str, Any] = {}
    hints: dict[str, str] = {}
    for env in envelopes:
        if not isinstance(env, Mapping) or "step" not in env:
            continue
        if env.get("status") == "ok":
            scope[env["step"]] = env["output"]
        else:
            hints[env["step"]] = f"step '{env['step']}' failed ({env.get('error')}); it has no outputs"
    scope.update(extra or {})
    return scope, hints


def _runtime(context: dg.OpExecutionContext, recipe: dsl.Recipe, step_id: str, now: str) -> StepRuntime:
    r = context.resources
    run = context.run
    limits = r.recipe_limits
    return StepRuntime(
        store=r.warehouse.store, session_factory=r.control_plane.session, llm=r.llm, search=r.search,
        delivery=r.delivery, now=parse_time(now, "now"), recipe_id=recipe.pipeline_id, step_id=step_id,
        run_id=run.run_id, root_run_id=run.root_run_id or run.run_id, instance=context.instance,
        scope=LLMScope(run_id=run.run_id, asset_key=asset_key(recipe).to_user_string()), log=context.log,
        limits=Limits(max_rows=limits.max_rows, max_loop_items=limits.max_loop_items,
                      max_wait_minutes=limits.max_wait_minutes),
        retry_number=context.retry_number,
    )


def retry_policy(spec: dsl.RetrySpec) -> dg.RetryPolicy | None:
    if spec.max_attempts <= 1:
        return None
    backoff = {"exponential": dg.Backoff.EXPONENTIAL, "linear": dg.Backoff.LINEAR, "constant": None}[spec.backoff]
    return dg.RetryPolicy(max_retries=spec.max_attempts - 1, delay=spec.delay_seconds, backoff=backoff,
                          jitter=dg.Jitter.PLUS_MINUS if spec.jitter else None)


def _not_retryable(exc: BaseException) -> bool:
    from pydantic import ValidationError

    from yarn_assets.recipes.executors import StepError

    return isinstance(exc, TemplateError | RegistryError | ExpressionError | ValidationError | InputError) or (
        type(exc) is StepError)


@dataclass
class _Build:
    recipe: dsl.Recipe
    plan: Plan
    key: dg.AssetKey
    activated_by: dict[str, list[str]]  # activator id -> node ids it can turn on
    parallel: dict[str, int]  # tag value -> limit

    def expand(self, targets: list[str]) -> list[str]:
        """Targets plus the members of targeted parallel groups (recursively)."""
        out: list[str] = []
        stack = list(targets)
        while stack:
            t = stack.pop(0)
            if t in out:
                continue
            out.append(t)
            node = self.plan.nodes.get(t)
            if node is not None and isinstance(node.step, dsl.ParallelGroupStep):
                stack.extend(node.members)
        return out

    def tags(self, node: Node) -> dict[str, str]:
        tags = {"yarnnn/recipe": self.recipe.pipeline_id, "yarnnn/step_type": node.kind}
        parent = self.plan.nodes.get(node.parent) if node.parent else None
        if node.scope is not None:
            loop = self.plan.nodes[node.scope].step
            if loop.max_parallel:
                tags[PARALLEL_TAG] = f"{self.recipe.pipeline_id}.{node.scope}"
        elif parent is not None and isinstance(parent.step, dsl.ParallelGroupStep) and parent.step.max_parallel:
            tags[PARALLEL_TAG] = f"{self.recipe.pipeline_id}.{parent.id}"
        return tags


def _check_result(b: _Build, step_id: str, outcome: Any) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=b.key, check_name=check_name(step_id, outcome.name), passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.severity == "error" else dg.AssetCheckSeverity.WARN,
        metadata={"metric": outcome.metric, "value": dg.MetadataValue.float(float(outcome.value)),
                  "threshold": dg.MetadataValue.float(float(outcome.threshold)), "op": outcome.op,
                  **{k: v for k, v in outcome.detail.items() if isinstance(v, int | float)}},
    )


def _run_with_policy(context: dg.OpExecutionContext, b: _Build, node: Node, scope: dict[str, Any],
                     hints: dict[str, str], now: str) -> tuple[StepResult | None, str | None, float]:
    """Execute the step; on failure either ask Dagster for a retry (capped backoff) or hand the error back."""
    step = node.step
    rt = _runtime(context, b.recipe, node.id, now)
    started = time.perf_counter()
    try:
        try:
            return execute(step, scope, rt), None, (time.perf_counter() - started) * 1000
        except TemplateError as exc:
            if hints:
                raise TemplateError(f"{exc}; " + "; ".join(hints.values())) from exc
            raise
    except Exception as exc:
        ms = (time.perf_counter() - started) * 1000
        attempt = context.retry_number + 1
        if attempt < step.retry_policy.max_attempts and not _not_retryable(exc):
            wait = step.retry_policy.wait_before(attempt)
            context.log.warning(f"step {node.id} attempt {attempt}/{step.retry_policy.max_attempts} failed "
                                f"({type(exc).__name__}: {exc}); retrying in {wait:g}s")
            raise dg.RetryRequested(max_retries=step.retry_policy.max_attempts - 1, seconds_to_wait=wait) from exc
        message = f"{type(exc).__name__}: {exc}"[:1000]
        handled = step.on_error is not None and (step.on_error.continue_on_failure or step.on_error.fallback_step)
        if not handled:
            # the step's own policy decided: no further retry by the op's RetryPolicy
            raise dg.Failure(description=f"step {node.id} failed after {attempt} attempt(s): {message}",
                             metadata={"attempts": attempt, "error_type": type(exc).__name__},
                             allow_retries=False) from exc
        context.log.error(f"step {node.id} failed after {attempt} attempt(s): {message}; handled by on_error")
        return None, message, ms


def _step_op(b: _Build, node: Node) -> dg.OpDefinition:
    step = node.step
    ins: dict[str, dg.In] = {"ctx": dg.In()}
    for d in node.hard:
        ins[f"dep_{d}"] = dg.In()
    if node.activators:
        ins["act"] = dg.In()
    outs: dict[str, dg.Out] = {"result": dg.Out(io_manager_key=IO_KEY, is_required=False)}
    for t in b.activated_by.get(node.id, []):
        outs[f"to_{t}"] = dg.Out(io_manager_key=IO_KEY, is_required=False)
    checks = list(step.checks) if isinstance(step, dsl.ValidationStep) else []
    for c in checks:
        outs[f"check_{c}"] = dg.Out(is_required=False)

    def compute(context: dg.OpExecutionContext, **kwargs: Any) -> Any:
        upstream = [*kwargs["ctx"], *(kwargs[f"dep_{d}"] for d in node.hard)]
        scope, hints = scope_from(upstream)
        now = scope[INPUT]["now"]
        if isinstance(step, dsl.ParallelGroupStep):
            output = {m: scope[m] for m in node.members if m in scope}
            yield dg.Output(envelope(node.id, "ok", output), "result",
                            metadata={"status": "ok", "members_ran": len(output), "members": len(node.members)})
            return
        result, error, ms = _run_with_policy(context, b, node, scope, hints, now)
        attempts = context.retry_number + 1
        if result is None:  # failed, handled by on_error
            if step.on_error and step.on_error.continue_on_failure:
                yield dg.Output(envelope(node.id, "failed", error=error, attempts=attempts, ms=ms), "result",
                                metadata={"status": "failed", "attempts": attempts, "handled": "continue_on_failure"})
            fallback = step.on_error.fallback_step if step.on_error else None
            for t in b.expand([fallback] if fallback else []):
                if f"to_{t}" in outs:
                    yield dg.Output({"from": node.id, "reason": "fallback"}, f"to_{t}")
            return
        for outcome in result.checks:
            yield _check_result(b, node.id, outcome)
        blocking = [o.name for o in result.checks if o.blocking and not o.passed]
        if blocking:
            raise dg.Failure(description=f"step {node.id}: blocking check{'s' if len(blocking) > 1 else ''} failed: "
                             f"{', '.join(blocking)}", metadata={"failed_checks": ", ".join(blocking)},
                             allow_retries=False)
        activated = [t for t in b.expand(result.activate) if f"to_{t}" in outs]
        md: dict[str, Any] = {"status": "ok", "attempts": attempts, "ms": dg.MetadataValue.float(round(ms, 1)),
                              "fields": ", ".join(sorted(result.output)) or "-",
                              "activated": ", ".join(activated) or "-"}
        llm = result.output.get("llm")
        if isinstance(llm, Mapping):
            md.update({"llm_model": str(llm.get("model")), "llm_offline": bool(llm.get("offline")),
                       "llm_input_tokens": int(llm.get("input_tokens") or 0),
                       "llm_output_tokens": int(llm.get("output_tokens") or 0),
                       "llm_cost_usd": dg.MetadataValue.float(float(llm.get("cost_usd") or 0.0))})
        if "count" in result.output and isinstance(result.output["count"], int):
            md["rows"] = result.output["count"]
        yield dg.Output(envelope(node.id, "ok", result.output, attempts=attempts, ms=ms), "result", metadata=md)
        for t in activated:
            yield dg.Output({"from": node.id, "reason": "route"}, f"to_{t}")

    return dg.OpDefinition(
        name=op_name(b.recipe, node.id), ins=ins, outs=outs, compute_fn=_wrap(compute),
        description=step.description or f"{step.type} step of recipe {b.recipe.pipeline_id}",
        required_resource_keys=RESOURCE_KEYS, tags=b.tags(node), retry_policy=retry_policy(step.retry_policy),
        pool="llm" if isinstance(step, dsl.LLMFlowStep) else None,
    )


def _wrap(fn: Any) -> Any:
    """OpDefinition's compute_fn takes (context, inputs dict)."""

    def compute(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Any:
        yield from fn(context, **inputs)

    return compute


def _input_op(b: _Build, upstream: list[dg.AssetKey]) -> dg.OpDefinition:
    recipe = b.recipe

    def compute(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Any:
        try:
            values = coerce_inputs(recipe, context.op_config.get("inputs") or {})
        except InputError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        yield dg.Output(envelope(INPUT, "ok", values), "result",
                        metadata={"inputs": ", ".join(sorted(values)), "now": values["now"]})

    return dg.OpDefinition(
        name=op_name(recipe, INPUT), ins={f"after_{i}": dg.In(dg.Nothing) for i in range(len(upstream))},
        outs={"result": dg.Out(io_manager_key=IO_KEY)}, compute_fn=compute,
        config_schema={"inputs": dg.Field(dg.Permissive(), default_value={}, is_required=False)},
        description=f"Inputs of recipe {recipe.pipeline_id} (run config inputs) and the run's clock",
        tags={"yarnnn/recipe": recipe.pipeline_id, "yarnnn/step_type": "input"},
    )


def _loop_ops(b: _Build, node: Node) -> tuple[dg.OpDefinition, list[dg.OpDefinition], dg.OpDefinition]:
    loop: dsl.LoopStep = node.step
    body = b.plan.body(node.id)
    ins: dict[str, dg.In] = {"ctx": dg.In(), **{f"dep_{d}": dg.In() for d in node.hard}}
    if node.activators:
        ins["act"] = dg.In()

    def fan_out(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Any:
        upstream = [*inputs["ctx"], *(inputs[f"dep_{d}"] for d in node.hard)]
        scope, _ = scope_from(upstream)
        items = resolve(loop.iterate_over, scope)
        if not isinstance(items, list):
            raise TemplateError(f"iterate_over of loop '{loop.id}' resolved to {type(items).__name__}, not an array")
        cap = min(loop.max_items, context.resources.recipe_limits.max_loop_items)
        if len(items) > cap:
            raise dg.Failure(description=f"loop '{loop.id}' has {len(items)} items; the limit is {cap} (max_items / "
                             "YARNNN_RECIPE_MAX_LOOP_ITEMS)", allow_retries=False)
        yield dg.Output({"count": len(items), "now": scope[INPUT]["now"]}, "summary", metadata={"items": len(items)})
        for i, item in enumerate(items):
            state = {"index": i, "item": item, "scope": scope, "outputs": {}, "failed": {}}
            yield dg.DynamicOutput(state, mapping_key=str(i), output_name="items")

    fan = dg.OpDefinition(
        name=op_name(b.recipe, node.id), ins=ins, compute_fn=fan_out, required_resource_keys={"recipe_limits"},
        outs={"items": dg.DynamicOut(io_manager_key=IO_KEY), "summary": dg.Out(io_manager_key=IO_KEY)},
        description=loop.description or f"loop of recipe {b.recipe.pipeline_id}: one branch per item",
        tags={"yarnnn/recipe": b.recipe.pipeline_id, "yarnnn/step_type": "loop"},
    )

    def body_op(member: Node) -> dg.OpDefinition:
        def compute(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Any:
            state = dict(inputs["state"])
            scope = {**state["scope"], **state["outputs"], loop.loop_variable: state["item"]}
            hints = {k: f"step '{k}' failed ({v}); it has no outputs" for k, v in state["failed"].items()}
            result, error, ms = _run_with_policy(context, b, member, scope, hints, state["scope"][INPUT]["now"])
            outputs, failed = dict(state["outputs"]), dict(state["failed"])
            if result is None:
                failed[member.id] = error
                status = "failed"
            else:
                outputs[member.id] = result.output
                status = "ok"
            state.update(outputs=outputs, failed=failed)
            yield dg.Output(state, "result", metadata={"status": status, "item": state["index"],
                                                       "ms": dg.MetadataValue.float(round(ms, 1))})

        return dg.OpDefinition(
            name=op_name(b.recipe, member.id), ins={"state": dg.In()},
            outs={"result": dg.Out(io_manager_key=IO_KEY)}, compute_fn=compute,
            description=member.step.description or f"{member.step.type} step in loop {loop.id}",
            required_resource_keys=RESOURCE_KEYS, tags=b.tags(member),
            retry_policy=retry_policy(member.step.retry_policy),
            pool="llm" if isinstance(member.step, dsl.LLMFlowStep) else None,
        )

    def collect(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Any:
        states = sorted(inputs["items"], key=lambda s: s["index"])
        results = [s["outputs"] for s in states]
        failures = {s["index"]: s["failed"] for s in states if s["failed"]}
        output = {"items": [s["item"] for s in states], "results": results, "count": len(states),
                  "failed": [{"index": i, "steps": f} for i, f in failures.items()]}
        yield dg.Output(envelope(node.id, "ok", output), "result",
                        metadata={"status": "ok", "items": len(states), "items_with_failures": len(failures)})

    coll = dg.OpDefinition(
        name=op_name(b.recipe, f"{node.id}__collect"), ins={"items": dg.In(), "summary": dg.In()},
        outs={"result": dg.Out(io_manager_key=IO_KEY)}, compute_fn=collect,
        description=f"results of loop {loop.id}, in item order",
        tags={"yarnnn/recipe": b.recipe.pipeline_id, "yarnnn/step_type": "loop_collect"},
    )
    return fan, [body_op(m) for m in body], coll


def _result_op(b: _Build) -> dg.OpDefinition:
    recipe = b.recipe
    top = [n.id for n in b.plan.top()]

    def compute(context: dg.OpExecutionContext, inputs: Mapping[str, Any]) -> Any:
        envs = {e["step"]: e for e in inputs["ctx"] if isinstance(e, Mapping) and "step" in e}
        steps = {s: (envs[s]["status"] if s in envs else "skipped") for s in top}
        tokens_in = tokens_out = 0
        cost = 0.0
        offline = None
        for e in envs.values():
            llm = e.get("output", {}).get("llm") if isinstance(e.get("output"), Mapping) else None
            if isinstance(llm, Mapping):
                tokens_in += int(llm.get("input_tokens") or 0)
                tokens_out += int(llm.get("output_tokens") or 0)
                cost += float(llm.get("cost_usd") or 0.0)
                offline = bool(llm.get("offline")) if offline is None else offline and bool(llm.get("offline"))
        inputs_given = sorted(envs.get(INPUT, {}).get("output", {}))
        summary = {"recipe": recipe.pipeline_id, "steps": steps, "inputs": inputs_given,
                   "llm_input_tokens": tokens_in, "llm_output_tokens": tokens_out, "llm_cost_usd": round(cost, 6)}
        yield dg.Output(summary, "result", metadata={
            "steps": dg.MetadataValue.json(steps),
            "steps_ok": sum(1 for s in steps.values() if s == "ok"),
            "steps_failed": sum(1 for s in steps.values() if s == "failed"),
            "steps_skipped": sum(1 for s in steps.values() if s == "skipped"),
            "llm_input_tokens": tokens_in, "llm_output_tokens": tokens_out,
            "llm_cost_usd": dg.MetadataValue.float(round(cost, 6)),
            "offline": bool(offline) if offline is not None else "-",
        })

    return dg.OpDefinition(
        name=op_name(recipe, "result"), ins={"ctx": dg.In()}, outs={"result": dg.Out(io_manager_key=IO_KEY)},
        compute_fn=compute, description=f"per-step status of recipe {recipe.pipeline_id}",
        tags={"yarnnn/recipe": recipe.pipeline_id, "yarnnn/step_type": "result"},
    )


def build_definitions(recipe: dsl.Recipe, plan: Plan, *, source_text: str = "",
                      metadata: Mapping[str, Any] | None = None,
                      executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """The recipe's asset (graph of step ops), its asset checks and its job.

    The job runs steps in parallel processes (spawn) with the recipe's ``max_parallel`` limits;
    ``executor`` replaces that (tests and dry runs use the in-process executor).
    """
    key = asset_key(recipe)
    activated_by: dict[str, list[str]] = defaultdict(list)
    for n in plan.nodes.values():
        for a in n.activators:
            if n.id not in activated_by[a]:
                activated_by[a].append(n.id)
    parallel: dict[str, int] = {}
    for n in plan.nodes.values():
        if isinstance(n.step, dsl.LoopStep):
            parallel[f"{recipe.pipeline_id}.{n.id}"] = n.step.max_parallel
        if isinstance(n.step, dsl.ParallelGroupStep) and n.step.max_parallel:
            parallel[f"{recipe.pipeline_id}.{n.id}"] = n.step.max_parallel
    b = _Build(recipe, plan, key, dict(activated_by), parallel)

    check_specs = [dg.AssetCheckSpec(check_name(step_id, name), asset=key, blocking=spec.blocking,
                                     description=spec.description or f"{spec.metric} {spec.op} {spec.threshold:g} "
                                     f"(validation step {step_id})")
                   for step_id, name, spec in plan.validation_checks()]
    upstream = _upstream_assets(plan)
    input_op = _input_op(b, upstream)
    result_op = _result_op(b)
    step_ops: dict[str, dg.OpDefinition] = {}
    loops: dict[str, tuple[dg.OpDefinition, list[dg.OpDefinition], dg.OpDefinition]] = {}
    for n in plan.top():
        if isinstance(n.step, dsl.LoopStep):
            loops[n.id] = _loop_ops(b, n)
        else:
            step_ops[n.id] = _step_op(b, n)

    def compose(**assets: Any) -> Any:
        inp = input_op(**{f"after_{i}": assets[f"upstream_{i}"] for i in range(len(upstream))})
        results: dict[str, Any] = {INPUT: inp}
        invoked: dict[str, Any] = {}
        for n in plan.top():
            kwargs: dict[str, Any] = {"ctx": [inp, *(results[s] for s in n.soft)]}
            for d in n.hard:
                kwargs[f"dep_{d}"] = results[d]
            if n.activators:
                kwargs["act"] = [getattr(invoked[a], f"to_{n.id}") for a in n.activators]
            if n.id in loops:
                fan, body, coll = loops[n.id]
                items, summary = fan(**kwargs)

                def chain(item: Any, body: list[dg.OpDefinition] = body) -> Any:
                    state = item
                    for op in body:
                        state = op(state=state)
                    return state

                results[n.id] = coll(items=items.map(chain).collect(), summary=summary)
                continue
            out = step_ops[n.id](**kwargs)
            invoked[n.id] = out
            results[n.id] = out.result if hasattr(out, "result") else out
        final = result_op(ctx=[inp, *(results[n.id] for n in plan.top())])
        mapped = {"result": final}
        for spec, (step_id, name, _) in zip(check_specs, plan.validation_checks(), strict=True):
            mapped[spec.get_python_identifier()] = getattr(invoked[step_id], f"check_{name}")
        return mapped

    compose.__name__ = key.to_python_identifier()
    # upstream tables are data-less inputs of the input op: lineage edges in the asset graph
    compose.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(f"upstream_{i}", inspect.Parameter.KEYWORD_ONLY) for i in range(len(upstream))])
    code_version = hashlib.sha256(source_text.encode()).hexdigest()[:16] if source_text else None
    description = (recipe.description or recipe.name).strip()
    ins = {f"upstream_{i}": dg.AssetIn(key=k, dagster_type=dg.Nothing, partition_mapping=dg.AllPartitionMapping())
           for i, k in enumerate(upstream)}
    asset = dg.graph_asset(
        key=key, group_name=GROUP, ins=ins, description=f"Recipe '{recipe.name}': {description}",
        owners=list(recipe.owners), kinds={"yaml", "deltalake"}, check_specs=check_specs or None,
        code_version=code_version, config=dg.ConfigMapping(
            config_schema={"inputs": dg.Field(dg.Permissive(), default_value={}, is_required=False)},
            config_fn=lambda cfg: {op_name(recipe, INPUT): {"config": {"inputs": cfg.get("inputs") or {}}}},
        ),
        metadata={"recipe_id": recipe.pipeline_id, "recipe_version": recipe.version,
                  "steps": len(plan.nodes), **dict(metadata or {})},
        tags={"yarnnn/recipe": recipe.pipeline_id},
    )(compose)
    executor = executor or dg.multiprocess_executor.configured({
        "max_concurrent": max([4, *parallel.values()]),
        "start_method": {"spawn": {}},
        "tag_concurrency_limits": [{"key": PARALLEL_TAG, "value": tag, "limit": limit}
                                   for tag, limit in sorted(parallel.items())],
    })
    tags: dict[str, str] = {"yarnnn/recipe": recipe.pipeline_id}
    if recipe.execution.timeout_minutes:
        tags["dagster/max_runtime"] = str(int(recipe.execution.timeout_minutes * 60))
    job = dg.define_asset_job(job_name(recipe), selection=dg.AssetSelection.assets(key), executor_def=executor,
                              tags=tags, description=f"Run recipe '{recipe.name}' (steps in parallel where the "
                              "recipe allows, with its max_parallel limits)")
    return dg.Definitions(assets=[asset], jobs=[job])


def _upstream_assets(plan: Plan) -> list[dg.AssetKey]:
    """Tables read and assets waited for: lineage edges of the recipe asset."""
    keys: list[dg.AssetKey] = [dg.AssetKey.from_user_string(name) for name in plan.recipe.reads]
    for n in plan.nodes.values():
        names = [n.step.table] if isinstance(n.step, dsl.ReadAssetStep) else (
            list(n.step.assets) if isinstance(n.step, dsl.WaitForAssetStep) else [])
        for name in names:
            k = dg.AssetKey.from_user_string(name)
            if k not in keys:
                keys.append(k)
    return keys


def replay_options(recipe: dsl.Recipe, run_id: str, instance: dg.DagsterInstance,
                   from_step: str | None = None) -> dg.ReexecutionOptions:
    """Re-execution of ``run_id``: from its failure, or from ``from_step`` and everything after it.

    Steps that are not re-executed are not run again: their stored outputs (``recipe_io_manager``,
    keyed by the parent run) feed the steps that are.
    """
    if from_step is None:
        return dg.ReexecutionOptions.from_failure(run_id, instance)
    graph = asset_key(recipe).to_python_identifier()
    return dg.ReexecutionOptions(parent_run_id=run_id, step_selection=[f"{graph}.{op_name(recipe, from_step)}*"])
