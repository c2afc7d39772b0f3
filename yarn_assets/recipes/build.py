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

import hashlib
import inspect
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import dagster as dg

from yarn_assets.recipes import dsl
from yarn_assets.recipes.inputs import INPUT, InputError, coerce_inputs
from yarn_assets.recipes.keys import (
    GROUP,
    IO_KEY,
    PARALLEL_TAG,
    RESOURCE_KEYS,
    asset_key,
    check_name,
    job_name,
    op_name,
    run_config,
)
from yarn_assets.recipes.loop_ops import make_loop_ops
from yarn_assets.recipes.plan import Plan
from yarn_assets.recipes.step_ops import (
    BuildContext,
    envelope,
    make_input_op,
    make_result_op,
    make_step_op,
    retry_policy,
    scope_from,
)

#: what callers use as ``build.<name>`` (CLI, jobs, dry runs, tests); the pieces live in keys/inputs/step_ops
__all__ = ["GROUP", "INPUT", "IO_KEY", "PARALLEL_TAG", "RESOURCE_KEYS", "InputError", "asset_key", "build_definitions",
           "check_name", "coerce_inputs", "envelope", "job_name", "op_name", "replay_options", "retry_policy",
           "run_config", "scope_from"]


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
    b = BuildContext(recipe, plan, key, dict(activated_by), parallel)

    check_specs = [dg.AssetCheckSpec(check_name(step_id, name), asset=key, blocking=spec.blocking,
                                     description=spec.description or f"{spec.metric} {spec.op} {spec.threshold:g} "
                                     f"(validation step {step_id})")
                   for step_id, name, spec in plan.validation_checks()]
    upstream = _upstream_assets(plan)
    input_op = make_input_op(b, upstream)
    result_op = make_result_op(b)
    step_ops: dict[str, dg.OpDefinition] = {}
    loops: dict[str, tuple[dg.OpDefinition, list[dg.OpDefinition], dg.OpDefinition]] = {}
    for n in plan.top():
        if isinstance(n.step, dsl.LoopStep):
            loops[n.id] = make_loop_ops(b, n)
        else:
            step_ops[n.id] = make_step_op(b, n)

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
