"""Validation level 2 (registry): registered functions and flows with matching inputs, catalog tables and columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yarn_assets.recipes import dsl, registry


# ------------------------------------------------------------------------------------------ level 2
def check_registry(recipe: dsl.Recipe, issue: Any) -> None:
    """Level 2: every function, flow, table and asset a step names exists and fits how the step uses it."""
    try:
        registry.load(recipe.functions_from)
    except registry.RegistryError as exc:
        issue("registry", ("functions_from",), str(exc))
    if recipe.dry_run.seed and recipe.dry_run.seed not in registry.FUNCTIONS:
        issue("registry", ("dry_run", "seed"), f"unknown function '{recipe.dry_run.seed}' (dry_run.seed)")
    for step, loc in dsl.iter_steps(recipe.steps):
        if isinstance(step, dsl.FunctionStep):
            fn = _registered(registry.FUNCTIONS, "function", step.method, step, loc, "method", issue)
            undeclared = [o for o in step.outputs if fn is not None and fn.outputs and o not in fn.outputs]
            if undeclared:
                issue("registry", (*loc, "outputs"), f"'{step.method}' does not produce {', '.join(undeclared)}; "
                      f"it produces: {', '.join(fn.outputs)}", step.id)
        elif isinstance(step, dsl.LLMFlowStep) and step.flow is not None:
            _registered(registry.FLOWS, "flow", step.flow, step, loc, "flow", issue)
        elif isinstance(step, dsl.LLMFlowStep):
            unknown = sorted(set(step.inputs) - {"user_id"})
            if unknown:
                issue("registry", (*loc, "inputs"), f"an inline llm_flow takes only inputs.user_id (templates go into "
                      f"the prompt); unknown: {', '.join(unknown)}", step.id)
            if "user_id" not in step.inputs:
                issue("budget", (*loc, "prompt"), "inline llm_flow without inputs.user_id: its calls are counted "
                      "against no user's budget", step.id, warning=True)
        elif isinstance(step, dsl.ReadAssetStep):
            _table(step, loc, issue)
        elif isinstance(step, dsl.WaitForAssetStep):
            for i, name in enumerate(step.assets):
                _asset_name(name, (*loc, "assets", i), issue, step.id)
    for i, name in enumerate(recipe.reads):
        _asset_name(name, ("reads", i), issue, None)


def _registered(entries: Mapping[str, Any], what: str, name: str, step: Any, loc: tuple[Any, ...], field: str,
                issue: Any) -> Any:
    """The registered function or flow ``name``, its signature checked against the step's inputs; None if unknown."""
    entry = entries.get(name)
    if entry is None:
        issue("registry", (*loc, field), f"unknown {what} '{name}'; registered: "
              f"{', '.join(sorted(entries)) or '(none)'}", step.id)
        return None
    for problem in entry.signature_problems(set(step.inputs)):
        issue("registry", (*loc, "inputs"), problem, step.id)
    return entry


def _asset_name(name: str, loc: tuple[Any, ...], issue: Any, step: str | None) -> None:
    from yarn_assets.core.catalog import all_tables

    known = {s.name for s in all_tables()}
    if name not in known and not name.startswith("gold/recipes/"):
        issue("registry", loc, f"unknown asset '{name}'; known assets are the catalog tables "
              f"({', '.join(sorted(known))}) and gold/recipes/<recipe>", step)


def _table(step: dsl.ReadAssetStep, loc: tuple[Any, ...], issue: Any) -> None:
    from yarn_assets.core.catalog import all_tables
    from yarn_assets.recipes.executors import readable_columns

    specs = {s.name: s for s in all_tables()}
    spec = specs.get(step.table)
    if spec is None:
        issue("registry", (*loc, "table"), f"unknown table '{step.table}'; tables: {', '.join(sorted(specs))}", step.id)
        return
    readable = readable_columns(spec)
    named = [("filter", c) for c in step.filter] + [("columns", c) for c in step.columns or []] + \
        [("order_by", o.column) for o in step.order_by] + [("group_by", c) for c in step.group_by] + \
        ([("since", step.since.column)] if step.since else [])
    for aggregate in step.aggregate.values():
        fn, _, column = aggregate.partition(":")
        if fn not in ("count", "min", "max", "sum", "mean", "n_unique"):
            issue("registry", (*loc, "aggregate"), f"unknown aggregate '{fn}' (count, min, max, sum, mean, n_unique)",
                  step.id)
        if column:
            named.append(("aggregate", column))
    if step.group_by and step.order_by:
        produced = set(step.group_by) | set(step.aggregate)
        named = [(w, c) for w, c in named if not (w == "order_by" and c in produced)]
    for where, column in named:
        if column not in spec.schema:
            issue("registry", (*loc, where), f"{spec.name} has no column '{column}'; columns: "
                  f"{', '.join(spec.schema)}", step.id)
        elif column not in readable and where in ("columns",):
            issue("registry", (*loc, where), f"column '{column}' of {spec.name} is binary and cannot be read by a "
                  "recipe", step.id)
    if "user_id" in spec.schema and "user_id" not in step.filter:
        issue("registry", (*loc, "filter"), f"{spec.name} holds every user's rows: filter on user_id (one user's "
              "content never reaches another user's output)", step.id)
