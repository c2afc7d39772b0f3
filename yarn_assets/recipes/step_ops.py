"""The ops of one recipe step: run it under its retry/on_error policy, yield its envelope, checks and activations.

Also the input op (run config inputs, the run's clock) and the result op (per-step status, LLM totals).
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from resources.llm import LLMScope
from yarn_assets.recipes import dsl
from yarn_assets.recipes.executors import StepResult, execute
from yarn_assets.recipes.expressions import ExpressionError
from yarn_assets.recipes.inputs import INPUT, InputError, coerce_inputs
from yarn_assets.recipes.keys import IO_KEY, PARALLEL_TAG, RESOURCE_KEYS, asset_key, check_name, op_name
from yarn_assets.recipes.plan import Node, Plan
from yarn_assets.recipes.registry import RegistryError
from yarn_assets.recipes.runtime import Limits, StepRuntime, parse_time
from yarn_assets.recipes.templates import TemplateError


def envelope(step: str, status: str, output: Mapping[str, Any] | None = None, *, error: str | None = None,
             attempts: int = 1, ms: float = 0.0) -> dict[str, Any]:
    return {"step": step, "status": status, "output": dict(output or {}), "error": error, "attempts": attempts,
            "ms": round(ms, 1)}


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
class BuildContext:
    """What every op factory of one recipe needs: the recipe, its plan, its asset key and who activates whom."""

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


def _check_result(b: BuildContext, step_id: str, outcome: Any) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=b.key, check_name=check_name(step_id, outcome.name), passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.severity == "error" else dg.AssetCheckSeverity.WARN,
        metadata={"metric": outcome.metric, "value": dg.MetadataValue.float(float(outcome.value)),
                  "threshold": dg.MetadataValue.float(float(outcome.threshold)), "op": outcome.op,
                  **{k: v for k, v in outcome.detail.items() if isinstance(v, int | float)}},
    )


def run_with_policy(context: dg.OpExecutionContext, b: BuildContext, node: Node, scope: dict[str, Any],
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


def make_step_op(b: BuildContext, node: Node) -> dg.OpDefinition:
    """The op of one non-loop step: inputs from its dependencies, outputs for its result, activations and checks."""
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
        result, error, ms = run_with_policy(context, b, node, scope, hints, now)
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


def make_input_op(b: BuildContext, upstream: list[dg.AssetKey]) -> dg.OpDefinition:
    """The first op: the run's inputs checked and its clock fixed, after the upstream tables (lineage)."""
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


def make_result_op(b: BuildContext) -> dg.OpDefinition:
    """The last op: the asset's value, per-step status and LLM totals as metadata."""
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
