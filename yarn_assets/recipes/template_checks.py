"""Validation level 3 (dependency), templates and expressions: fields referenced exist, expressions parse."""

from __future__ import annotations

from typing import Any

from yarn_assets.recipes import dsl, registry
from yarn_assets.recipes.expressions import ExpressionError, check_syntax
from yarn_assets.recipes.plan import Node, Plan
from yarn_assets.recipes.templates import INPUT_ROOT, TEMPLATE, TemplateError, parse, references

# ------------------------------------------------------------------------------------------ level 3
#: output fields each structural/built-in step type produces, with the ones that are arrays
_KNOWN_FIELDS: dict[type, dict[str, str]] = {
    dsl.ReadAssetStep: {"table": "string", "rows": "array", "count": "number", "truncated": "boolean"},
    dsl.WaitForAssetStep: {"assets": "object", "waited_seconds": "number"},
    dsl.ConditionalStep: {"value": "boolean", "branch": "string"},
    dsl.LoopStep: {"items": "array", "results": "array", "count": "number", "failed": "array"},
    dsl.ValidationStep: {"checks": "object", "passed": "boolean", "failed": "array"},
    dsl.OutputStep: {"table": "object", "delivery": "object"},
}


def known_fields(node: Node, plan: Plan) -> dict[str, str] | None:
    """Fields the step will produce (name -> kind, '' when unknown), or None when anything may come."""
    step = node.step
    for kind, fields in _KNOWN_FIELDS.items():
        if isinstance(step, kind):
            return dict(fields)
    if isinstance(step, dsl.ParallelGroupStep):
        return dict.fromkeys(node.members, "object")
    if isinstance(step, dsl.LLMFlowStep):
        if step.flow is not None:
            flow = registry.FLOWS.get(step.flow)
            return dict.fromkeys(flow.outputs, "") if flow else None
        if step.output == "text":
            return {"text": "string", "llm": "object"}
        kinds = {k: ("array" if v.startswith("list") else "") for k, v in (step.output or {}).items()}
        return {**kinds, "llm": "object"}
    if isinstance(step, dsl.FunctionStep):
        fn = registry.FUNCTIONS.get(step.method)
        declared = (*(fn.outputs if fn else ()), *step.outputs)
        return dict.fromkeys(declared, "") if declared else None
    return None


def check_templates(recipe: dsl.Recipe, plan: Plan, issue: Any) -> None:
    """Level 3, templates: expressions parse and every ``{{step.field}}`` names a field that will exist."""
    inputs = set(recipe.inputs) | {"now"}
    for node in plan.nodes.values():
        step = node.step
        for expr in _expressions(step):
            try:
                check_syntax(expr)
            except ExpressionError as exc:
                issue("dependency", node.loc, str(exc), node.id)
        try:
            refs = list(references(_own(step)))
        except TemplateError:
            continue  # reported by the plan
        loop_var = plan.nodes[node.scope].step.loop_variable if node.scope else None
        for ref in refs:
            root, segments = parse(ref.path)
            if root == INPUT_ROOT:
                name = segments[0][1] if segments and segments[0][0] == "field" else None
                if name is not None and name not in inputs:
                    issue("dependency", node.loc, f"Field '{name}' not found in input (in {{{{{ref.path}}}}}); "
                          f"inputs that exist: {', '.join(sorted(inputs))}", node.id)
                continue
            if root == loop_var or root not in plan.nodes:
                continue
            fields = known_fields(plan.nodes[root], plan)
            if fields is None or not segments:
                continue
            kind, name = segments[0]
            if kind != "field":
                issue("dependency", node.loc, f"Cannot apply [*] to non-array at '{root}' (in {{{{{ref.path}}}}}): a "
                      "step's output is an object", node.id)
                continue
            if name not in fields:
                issue("dependency", node.loc, f"Field '{name}' not found in step '{root}' (in {{{{{ref.path}}}}}); "
                      f"fields that exist: {', '.join(sorted(fields))}", node.id)
                continue
            if len(segments) > 1 and segments[1][0] == "splat" and fields[str(name)] not in ("array", ""):
                issue("dependency", node.loc, f"Cannot apply [*] to non-array at '{root}.{name}' (in "
                      f"{{{{{ref.path}}}}}): it is {fields[str(name)]}", node.id)


def _own(step: Any) -> Any:
    from yarn_assets.recipes.plan import step_templates

    return [step_templates(step), *_expressions(step)]


def _expressions(step: Any) -> list[str]:
    from yarn_assets.recipes.plan import expression_sources

    out = expression_sources(step)
    out.extend(rule.boolean for rule in step.check if rule.boolean)
    if isinstance(step, dsl.ValidationStep):
        out.extend(c.value for c in step.checks.values()
                   if isinstance(c.value, str) and not TEMPLATE.fullmatch(c.value))
    return out
