"""Validation level 2 (registry): registered functions and flows with matching inputs, catalog tables and columns."""

from __future__ import annotations

from typing import Any

from yarn_assets.recipes import dsl, registry


# ------------------------------------------------------------------------------------------ level 2
def _registry(recipe: dsl.Recipe, issue: Any) -> None:
    try:
        registry.load(recipe.functions_from)
    except registry.RegistryError as exc:
        issue("registry", ("functions_from",), str(exc))
    if recipe.dry_run.seed and recipe.dry_run.seed not in registry.FUNCTIONS:
        issue("registry", ("dry_run", "seed"), f"unknown function '{recipe.dry_run.seed}' (dry_run.seed)")
    for step, loc in dsl.iter_steps(recipe.steps):
        if isinstance(step, dsl.FunctionStep):
            fn = registry.FUNCTIONS.get(step.method)
            if fn is None:
                issue("registry", (*loc, "method"), f"unknown function '{step.method}'; registered: "
                      f"{', '.join(sorted(registry.FUNCTIONS))}", step.id)
                continue
            for problem in fn.signature_problems(set(step.inputs)):
                issue("registry", (*loc, "inputs"), problem, step.id)
            undeclared = [o for o in step.outputs if fn.outputs and o not in fn.outputs]
            if undeclared:
                issue("registry", (*loc, "outputs"), f"'{step.method}' does not produce {', '.join(undeclared)}; "
                      f"it produces: {', '.join(fn.outputs)}", step.id)
        elif isinstance(step, dsl.LLMFlowStep) and step.flow is not None:
            flow = registry.FLOWS.get(step.flow)
            if flow is None:
                issue("registry", (*loc, "flow"), f"unknown flow '{step.flow}'; registered: "
                      f"{', '.join(sorted(registry.FLOWS)) or '(none)'}", step.id)
                continue
            for problem in flow.signature_problems(set(step.inputs)):
                issue("registry", (*loc, "inputs"), problem, step.id)
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
