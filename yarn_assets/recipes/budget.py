"""Validation level 4 (resources/budget): platform limits and the estimated LLM tokens and cost of a run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from yarn_assets.recipes import dsl, registry
from yarn_assets.recipes.plan import Plan
from yarn_assets.recipes.templates import TEMPLATE

#: tokens assumed for each template embedded in an inline prompt (its value is unknown before the run)
TEMPLATE_TOKENS = 500


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


def check_recipe_budget(recipe: dsl.Recipe, plan: Plan, policy: BudgetPolicy, issue: Any, tier: str) -> Estimate:
    """Level 4: platform limits (steps, rows, loop items, waits, no GPU); the run's LLM estimate vs the tier."""
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
