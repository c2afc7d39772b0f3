"""``--dry-run``: run a recipe on sample data in a scratch workspace with the offline LLM.

The scratch workspace (a temporary yarnnn home: its own warehouse, SQLite control plane, file
outbox and step store) is seeded by the recipe's ``dry_run.seed`` function, the inputs are
``dry_run.inputs`` (templates may use ``{{seed.<field>}}``) over each input's ``sample``, and the
recipe's own job runs in process against an ephemeral Dagster instance. Nothing touches the real
workspace and no API is called (LLM and web search are offline).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from yarn_assets.recipes import build, dsl, registry
from yarn_assets.recipes.runtime import StepRuntime
from yarn_assets.recipes.templates import resolve
from yarn_assets.recipes.validation import BudgetPolicy, Report, validate_file


@dataclass
class StepRun:
    step: str
    status: str  # ok | failed | skipped
    output: Any = None
    error: str | None = None


@dataclass
class DryRun:
    report: Report
    success: bool = False
    steps: list[StepRun] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)


@contextmanager
def scratch_settings() -> Iterator[Any]:
    """Settings of a throw-away workspace, offline, with no secret from the environment."""
    from resources.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="yarnnn-dry-run-") as home:
        yield load_settings(home=Path(home), llm_mode="offline", search_provider="offline", control_plane_url=None,
                            warehouse_root=None, anthropic_api_key=None, smtp_host=None, slack_delivery_token=None,
                            operator_alerts="off", executor="in_process")


def _runtime(resources: dict[str, Any], recipe_id: str, now: dt.datetime, instance: Any) -> StepRuntime:
    return StepRuntime(store=resources["warehouse"].store, session_factory=resources["control_plane"].session,
                       llm=resources["llm"], search=resources["search"], delivery=resources["delivery"], now=now,
                       recipe_id=recipe_id, step_id="dry_run_seed", run_id="dry-run", root_run_id="dry-run",
                       instance=instance)


def dry_run(path: str | Path, policy: BudgetPolicy | None = None, *, inputs: dict[str, Any] | None = None) -> DryRun:
    report = validate_file(path, policy)
    out = DryRun(report=report)
    if not report.ok:
        return out
    recipe, plan = report.recipe, report.plan
    assert recipe is not None and plan is not None
    from resources.registry import build_resources

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with scratch_settings() as settings, dg.DagsterInstance.ephemeral() as instance, ExitStack() as stack:
        raw = build_resources(settings)
        ready = {k: stack.enter_context(raw[k].process_config_and_initialize_cm())
                 for k in ("warehouse", "control_plane", "llm", "search", "delivery")}
        rt = _runtime(ready, recipe.pipeline_id, now, instance)
        seed: dict[str, Any] = {}
        if recipe.dry_run.seed:
            seed = dict(registry.function(recipe.dry_run.seed).fn(rt))
        values = {name: spec.sample for name, spec in recipe.inputs.items() if spec.sample is not None}
        values.update(resolve(recipe.dry_run.inputs, {"seed": seed}))
        values.update(inputs or {})
        values.setdefault("now", now.isoformat())
        out.inputs = values
        # sample data counts as freshly materialized for wait_for_asset steps
        for key in build._upstream_assets(plan):
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key,
                                                                        description="dry run sample data"))
        defs = dg.Definitions.merge(build.build_definitions(recipe, plan), dg.Definitions(resources=raw))
        job = defs.resolve_job_def(build.job_name(recipe))
        config = {**build.run_config(recipe, values), "loggers": {"console": {"config": {"log_level": "ERROR"}}}}
        result = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)
        out.success = result.success
        out.steps = _step_runs(result, recipe, plan)
    return out


def _step_runs(result: Any, recipe: Any, plan: Any) -> list[StepRun]:
    graph = build.asset_key(recipe).to_python_identifier()
    statuses: dict[str, StepRun] = {}
    for event in result.all_events:
        key = event.step_key or ""
        if not key.startswith(graph + "."):
            continue
        op = key[len(graph) + 1:].split("[")[0]
        step = op.removeprefix(f"{recipe.pipeline_id}__")
        if event.event_type_value == "STEP_SUCCESS" and step not in statuses:
            statuses[step] = StepRun(step, "ok")
        elif event.event_type_value == "STEP_SKIPPED":
            statuses[step] = StepRun(step, "skipped")
        elif event.event_type_value == "STEP_FAILURE":
            error = event.event_specific_data.error
            statuses[step] = StepRun(step, "failed", error=error.message.strip() if error else "failed")
    for name in list(statuses):  # loop bodies show through the loop's collected results
        if name.endswith("__collect") or (name in plan.nodes and plan.nodes[name].scope is not None):
            run = statuses.pop(name)
            loop = name.removesuffix("__collect") if name.endswith("__collect") else plan.nodes[name].scope
            if run.status == "failed" and loop in statuses:
                statuses[loop].status, statuses[loop].error = "failed", f"{name}: {run.error}"
    for name, run in statuses.items():
        if run.status != "ok" or name == "input":
            continue
        op = f"{name}__collect" if isinstance(plan.nodes.get(name) and plan.nodes[name].step, dsl.LoopStep) else name
        try:
            env = result.output_for_node(f"{graph}.{recipe.pipeline_id}__{op}", "result")
        except Exception:
            continue
        run.output = env.get("output") if isinstance(env, dict) and "output" in env else env
        if isinstance(env, dict) and env.get("status") == "failed":
            run.status, run.error = "failed", env.get("error")
    order = ["input", *plan.order, "result"]
    ranked = {s: i for i, s in enumerate(order)}
    return sorted(statuses.values(), key=lambda r: ranked.get(r.step, len(order)))
