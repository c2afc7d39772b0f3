"""A ``loop`` step as ops: a fan-out with one dynamic output per item, the body ops per item, a collect op."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from yarn_assets.recipes import dsl
from yarn_assets.recipes.inputs import INPUT
from yarn_assets.recipes.keys import IO_KEY, RESOURCE_KEYS, op_name
from yarn_assets.recipes.plan import Node
from yarn_assets.recipes.step_ops import BuildContext, envelope, retry_policy, run_with_policy, scope_from
from yarn_assets.recipes.templates import TemplateError, resolve


def make_loop_ops(b: BuildContext, node: Node) -> tuple[dg.OpDefinition, list[dg.OpDefinition], dg.OpDefinition]:
    """The fan-out op, the body ops (chained per item) and the collect op of a ``loop`` step."""
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
            result, error, ms = run_with_policy(context, b, member, scope, hints, state["scope"][INPUT]["now"])
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
