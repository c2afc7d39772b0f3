"""The four validation levels a recipe passes before anything runs.

1. **schema**: the YAML against the pydantic DSL (``dsl.Recipe``), errors with line and column;
   refused source step types (crawler, ml_model, ...) are reported here with their reason.
2. **registry**: every ``method``/``flow`` is registered and the step's inputs match its signature;
   tables exist in the catalog with the named columns; user tables are filtered on ``user_id``.
3. **dependency**: every ``depends_on`` and template target exists, no cycle (named),
   ``is_child`` steps are reachable from a check/route/fallback, template fields exist where the
   step's outputs are known, expressions parse.
4. **resources/budget**: no GPU/other resources the platform cannot give, limits from settings
   (rows, loop items, steps), estimated LLM tokens and cost within the tier's daily budget.

All errors of all levels that can be determined are returned together; the schema level must
pass for the others to run (without a model there are no steps to check).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from yarn_assets.recipes import dsl
from yarn_assets.recipes.budget import TEMPLATE_TOKENS, BudgetPolicy, Estimate, check_recipe_budget, estimate_step
from yarn_assets.recipes.plan import Plan, build_plan
from yarn_assets.recipes.registry_checks import check_registry
from yarn_assets.recipes.source import RecipeSource, SourceError, parse_text, read_file
from yarn_assets.recipes.template_checks import check_templates, known_fields

#: the report types and level functions, importable from here as before the split
__all__ = ["LEVELS", "TEMPLATE_TOKENS", "BudgetPolicy", "Estimate", "Issue", "Report", "estimate_step", "known_fields",
           "validate_file", "validate_source", "validate_text"]

LEVELS = ("schema", "registry", "dependency", "budget")


@dataclass
class Issue:
    level: str
    message: str
    line: int | None = None
    column: int | None = None
    step: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}: " if self.line is not None else ""
        step = f"[{self.step}] " if self.step else ""
        return f"{self.level}: {where}{step}{self.message}"


@dataclass
class Report:
    path: str | None
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    recipe: dsl.Recipe | None = None
    plan: Plan | None = None
    estimate: Estimate | None = None
    source: RecipeSource | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def by_level(self, level: str) -> list[Issue]:
        return [e for e in self.errors if e.level == level]

    def text(self) -> str:
        lines = [str(e) for e in self.errors] + [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------ entry points
def validate_file(path: str | Path, policy: BudgetPolicy | None = None, *, tier: str | None = None) -> Report:
    policy = policy or BudgetPolicy()
    try:
        source = read_file(path, max_bytes=policy.max_file_bytes, max_depth=policy.max_yaml_depth)
    except SourceError as exc:
        return Report(path=str(path), errors=[Issue("schema", str(exc).split(" (line")[0], exc.line, exc.column)])
    return validate_source(source, policy, tier=tier)


def validate_text(text: str, policy: BudgetPolicy | None = None, *, tier: str | None = None,
                  path: str | None = None) -> Report:
    policy = policy or BudgetPolicy()
    try:
        source = parse_text(text, path=path, max_bytes=policy.max_file_bytes, max_depth=policy.max_yaml_depth)
    except SourceError as exc:
        return Report(path=path, errors=[Issue("schema", str(exc).split(" (line")[0], exc.line, exc.column)])
    return validate_source(source, policy, tier=tier)


def validate_source(source: RecipeSource, policy: BudgetPolicy | None = None, *, tier: str | None = None) -> Report:
    policy = policy or BudgetPolicy()
    report = Report(path=source.path, source=source)
    recipe = _schema(source, report)
    if recipe is None:
        return report
    report.recipe = recipe
    step_locs = {step.id: loc for step, loc in dsl.iter_steps(recipe.steps) if hasattr(step, "id")}

    def issue(level: str, loc: tuple[Any, ...] | None, message: str, step: str | None = None,
              warning: bool = False) -> None:
        if loc is None and step in step_locs:
            loc = step_locs[step]
        pos = source.position(loc) if loc is not None else None
        item = Issue(level, message, pos[0] if pos else None, pos[1] if pos else None, step)
        (report.warnings if warning else report.errors).append(item)

    plan = build_plan(recipe)
    report.plan = plan
    check_registry(recipe, issue)
    for p in plan.problems:
        issue(p.level, p.loc, p.message, p.step)
    check_templates(recipe, plan, issue)
    report.estimate = check_recipe_budget(recipe, plan, policy, issue, tier or recipe.budget.tier)
    return report


# ------------------------------------------------------------------------------------------ level 1
def _schema(source: RecipeSource, report: Report) -> dsl.Recipe | None:
    try:
        return dsl.Recipe.model_validate(source.data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            pos = source.position((*loc, "type") if err.get("type") == "unknown_step_type" else loc)
            message = err.get("msg", "invalid")
            if err.get("type") == "unknown_step_type" and isinstance(err.get("input"), Mapping):
                message = f"{message} (got '{err['input'].get('type')}')"
            where = ".".join(str(x) for x in loc if x not in ("unsupported", *dsl.SUPPORTED_TYPES))
            report.errors.append(Issue("schema", f"{where}: {message}" if where else message,
                                       pos[0] if pos else None, pos[1] if pos else None, _step_at(source.data, loc)))
        return None


def _step_at(data: Any, loc: tuple[Any, ...]) -> str | None:
    """The id of the innermost step on ``loc`` (for grouping errors by step)."""
    found = None
    node = data
    for part in loc:
        inside = (isinstance(node, Mapping) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node))
        if not inside:
            continue
        node = node[part]
        if isinstance(node, Mapping) and isinstance(node.get("id"), str) and "type" in node:
            found = node["id"]
    return found
