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

from yarn_assets.recipes import dsl, registry
from yarn_assets.recipes.expressions import ExpressionError, check_syntax
from yarn_assets.recipes.plan import Node, Plan, build_plan
from yarn_assets.recipes.source import RecipeSource, SourceError, parse_text, read_file
from yarn_assets.recipes.templates import INPUT_ROOT, TEMPLATE, TemplateError, parse, references

LEVELS = ("schema", "registry", "dependency", "budget")

#: tokens assumed for each template embedded in an inline prompt (its value is unknown before the run)
TEMPLATE_TOKENS = 500


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
class Estimate:
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    per_step: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


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


@dataclass(frozen=True)
class BudgetPolicy:
    """What the budget level checks against (from settings; defaults match the settings' defaults)."""

    daily_token_budgets: Mapping[str, int | None] = field(
        default_factory=lambda: {"free": 50_000, "starter": 250_000, "pro": None})
    models: Mapping[str, str] = field(default_factory=lambda: {
        "signals": "claude-haiku-4-5-20251001", "generation": "claude-sonnet-4-6", "memory": "claude-sonnet-4-6",
        "analysis": "claude-sonnet-4-6"})
    price_overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    max_steps: int = 200
    max_rows: int = 5000
    max_loop_items: int = 200
    max_wait_minutes: float = 60.0
    max_file_bytes: int = 262_144
    max_yaml_depth: int = 32

    @classmethod
    def from_settings(cls, settings: Any) -> BudgetPolicy:
        return cls(
            daily_token_budgets=dict(settings.llm_daily_token_budgets),
            models={t: getattr(settings, f"llm_model_{t}") for t in ("signals", "generation", "memory", "analysis")},
            price_overrides={k: dict(v) for k, v in settings.llm_price_overrides.items()},
            max_steps=settings.recipe_max_steps, max_rows=settings.recipe_max_rows,
            max_loop_items=settings.recipe_max_loop_items, max_wait_minutes=settings.recipe_max_wait_minutes,
            max_file_bytes=settings.recipe_max_file_bytes, max_yaml_depth=settings.recipe_max_yaml_depth,
        )


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
    _registry(recipe, issue)
    for p in plan.problems:
        issue(p.level, p.loc, p.message, p.step)
    _templates(recipe, plan, issue)
    report.estimate = _budget(recipe, plan, policy, issue, tier or recipe.budget.tier)
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


def _templates(recipe: dsl.Recipe, plan: Plan, issue: Any) -> None:
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


# ------------------------------------------------------------------------------------------ level 4
def estimate_step(step: dsl.LLMFlowStep, policy: BudgetPolicy) -> tuple[int, int, str]:
    """(input tokens, output tokens, model) of one call of an llm_flow step."""
    if step.estimate is not None:
        inp, out = step.estimate.input_tokens, step.estimate.output_tokens
        task = step.task
    elif step.flow is not None:
        flow = registry.FLOWS.get(step.flow)
        if flow is None:  # reported by the registry level
            return 0, 0, policy.models.get("generation", "claude-sonnet-4-6")
        inp, out, task = flow.estimate_input_tokens, flow.estimate_output_tokens, flow.task
    else:
        assert step.prompt is not None
        text = step.prompt.system + step.prompt.user
        n_templates = len(TEMPLATE.findall(text))
        inp = len(TEMPLATE.sub("", text)) // 4 + 1 + n_templates * TEMPLATE_TOKENS
        out, task = step.max_tokens, step.task
    return inp, out, policy.models.get(task, policy.models.get("generation", "claude-sonnet-4-6"))


def _budget(recipe: dsl.Recipe, plan: Plan, policy: BudgetPolicy, issue: Any, tier: str) -> Estimate:
    from resources.llm_pricing import cost_usd

    est = Estimate()
    n_steps = len(plan.nodes)
    if n_steps > policy.max_steps:
        issue("budget", ("steps",), f"the recipe has {n_steps} steps; the limit is {policy.max_steps} "
              "(YARNNN_RECIPE_MAX_STEPS)")
    for node in plan.nodes.values():
        step = node.step
        res = step.resources
        if res is not None and res.gpu:
            issue("budget", (*node.loc, "resources", "gpu"), f"step '{step.id}' requests {res.gpu} GPU(s); this "
                  "platform runs steps on CPU workers only (no GPU is ever available)", step.id)
        if res is not None and (res.cpu or res.memory):
            issue("budget", (*node.loc, "resources"), f"step '{step.id}': cpu/memory requests are not enforced here "
                  "(steps share the run worker)", step.id, warning=True)
        if isinstance(step, dsl.ReadAssetStep) and step.limit > policy.max_rows:
            issue("budget", (*node.loc, "limit"), f"step '{step.id}' reads up to {step.limit:,} rows; the limit is "
                  f"{policy.max_rows:,} (YARNNN_RECIPE_MAX_ROWS)", step.id)
        if isinstance(step, dsl.LoopStep) and step.max_items > policy.max_loop_items:
            issue("budget", (*node.loc, "max_items"), f"loop '{step.id}' allows {step.max_items} items; the limit is "
                  f"{policy.max_loop_items} (YARNNN_RECIPE_MAX_LOOP_ITEMS)", step.id)
        if isinstance(step, dsl.WaitForAssetStep) and step.timeout_minutes > policy.max_wait_minutes:
            issue("budget", (*node.loc, "timeout_minutes"), f"step '{step.id}' waits up to {step.timeout_minutes:g} "
                  f"min; the limit is {policy.max_wait_minutes:g} (YARNNN_RECIPE_MAX_WAIT_MINUTES)", step.id)
        if isinstance(step, dsl.LLMFlowStep):
            inp, out, model = estimate_step(step, policy)
            times = plan.nodes[node.scope].step.max_items if node.scope else 1
            cost = cost_usd(model, input_tokens=inp, output_tokens=out, overrides=policy.price_overrides) * times
            est.llm_calls += times
            est.input_tokens += inp * times
            est.output_tokens += out * times
            est.cost_usd += cost
            est.per_step[step.id] = {"calls": times, "input_tokens": inp * times, "output_tokens": out * times,
                                     "model": model, "cost_usd": round(cost, 6)}
    est.cost_usd = round(est.cost_usd, 6)
    budgets = policy.daily_token_budgets
    known = tier in budgets
    budget = budgets.get(tier) if known else budgets.get("free")
    if not known:
        issue("budget", ("budget", "tier"), f"unknown tier '{tier}': budgeted as free (tiers: "
              f"{', '.join(sorted(budgets))})", warning=True)
    if budget is not None and est.total_tokens > budget:
        issue("budget", ("budget",), f"estimated {est.total_tokens:,} LLM tokens (≈ ${est.cost_usd:.2f}) per run "
              f"exceed the {tier if known else 'free'} tier's daily budget of {budget:,} tokens "
              f"({est.llm_calls} call{'s' if est.llm_calls != 1 else ''})")
    if recipe.budget.max_cost_usd is not None and est.cost_usd > recipe.budget.max_cost_usd:
        issue("budget", ("budget", "max_cost_usd"), f"estimated cost ${est.cost_usd:.4f} per run exceeds "
              f"budget.max_cost_usd ${recipe.budget.max_cost_usd:.4f}")
    return est
