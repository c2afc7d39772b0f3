"""``yarnnn recipes``: validate recipe files (all four levels, every error at once), dry-run them, list them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from yarn_assets.cli.common import CliState, pass_state, table

DEFS_DIR = Path(__file__).resolve().parents[1] / "defs" / "recipes"


def _policy(state: CliState):  # type: ignore[no-untyped-def]
    from yarn_assets.recipes.validation import BudgetPolicy

    return BudgetPolicy.from_settings(state.settings)


def _show(value: object, limit: int) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@click.group("recipes")
def recipes_group() -> None:
    """Declarative pipelines (YAML recipes) under yarn_assets/defs/recipes."""


@recipes_group.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Also run it on sample data with the offline LLM and show each step.")
@click.option("--tier", default=None, help="Check the budget against this tier (default: the recipe's budget.tier).")
@click.option("--width", default=400, show_default=True, help="Characters of each step output shown in a dry run.")
@pass_state
def recipes_validate(state: CliState, file: Path, dry_run: bool, tier: str | None, width: int) -> None:
    """Validate FILE: schema, registry, dependency and budget levels; exit 1 on any error."""
    from yarn_assets.recipes.validation import LEVELS, validate_file

    report = validate_file(file, _policy(state), tier=tier)
    for level in LEVELS:
        errors = report.by_level(level)
        if errors:
            click.echo(f"{level}: {len(errors)} error{'s' if len(errors) > 1 else ''}")
            for e in errors:
                where = f"line {e.line}, column {e.column}: " if e.line is not None else ""
                click.echo(f"  {where}{f'[{e.step}] ' if e.step else ''}{e.message}")
    for w in report.warnings:
        click.echo(f"warning ({w.level}): {f'[{w.step}] ' if w.step else ''}{w.message}")
    if not report.ok:
        raise click.ClickException(f"{file}: {len(report.errors)} error(s)")
    assert report.recipe is not None and report.plan is not None and report.estimate is not None
    est = report.estimate
    click.echo(f"{file}: valid ({report.recipe.pipeline_id}: {len(report.plan.nodes)} steps, "
               f"{est.llm_calls} LLM call(s), ~{est.total_tokens:,} tokens, ~${est.cost_usd:.4f} per run "
               f"at most; tier {tier or report.recipe.budget.tier})")
    if not dry_run:
        return
    from yarn_assets.recipes.dry_run import dry_run as run_dry

    result = run_dry(file, _policy(state))
    click.echo(f"dry run (offline LLM, sample data): inputs {_show(result.inputs, width)}")
    for step in result.steps:
        detail = step.error if step.status == "failed" else (_show(step.output, width) if step.output is not None
                                                              else "")
        click.echo(f"  {step.step:<20} {step.status:<8} {detail}")
    if not result.success:
        raise click.ClickException("the dry run failed")


@recipes_group.command("list")
@pass_state
def recipes_list(state: CliState) -> None:
    """The shipped recipes with their step count and per-run estimate."""
    from yarn_assets.recipes.validation import validate_file

    rows = []
    for path in sorted(DEFS_DIR.glob("*/recipe.yaml")):
        report = validate_file(path, _policy(state))
        est = report.estimate
        rows.append({"recipe": report.recipe.pipeline_id if report.recipe else path.parent.name,
                     "steps": len(report.plan.nodes) if report.plan else "-",
                     "valid": "yes" if report.ok else f"no ({len(report.errors)} errors)",
                     "llm_calls": est.llm_calls if est else "-",
                     "max_cost_usd": f"{est.cost_usd:.4f}" if est else "-",
                     "file": str(path.relative_to(DEFS_DIR.parents[2]))})
    click.echo(table(rows, ["recipe", "steps", "valid", "llm_calls", "max_cost_usd", "file"]))


@recipes_group.command("replay")
@click.argument("pipeline_id")
@click.argument("run_id")
@click.option("--from", "from_step", default=None, help="Re-execute from this step and everything after it "
              "(default: the recipe's replay.replay_from_step, else from the run's failure).")
@click.option("--in-process", is_flag=True, help="Run the re-executed steps in this process (no step subprocesses).")
@pass_state
def recipes_replay(state: CliState, pipeline_id: str, run_id: str, from_step: str | None, in_process: bool) -> None:
    """Re-execute RUN_ID of a recipe, reusing the stored outputs of the steps that are not re-run."""
    import os

    import dagster as dg

    from yarn_assets.recipes import build
    from yarn_assets.recipes.jobs import recipe_path, reconstructable
    from yarn_assets.recipes.validation import validate_file

    if not os.environ.get("DAGSTER_HOME"):
        raise click.ClickException("DAGSTER_HOME is not set: replays re-execute runs of the Dagster instance")
    state.settings  # noqa: B018 - fail early on a bad configuration
    report = validate_file(recipe_path(pipeline_id), _policy(state))
    if not report.ok or report.recipe is None:
        raise click.ClickException(report.text())
    recipe = report.recipe
    start = from_step or recipe.replay.replay_from_step
    if start is not None and (report.plan is None or start not in report.plan.nodes):
        raise click.ClickException(f"recipe {pipeline_id} has no step {start!r}")
    with dg.DagsterInstance.get() as instance:
        if instance.get_run_by_id(run_id) is None:
            raise click.ClickException(f"no run {run_id} in the instance at {os.environ['DAGSTER_HOME']}")
        try:
            options = build.replay_options(recipe, run_id, instance, from_step=start)
        except dg.DagsterInvariantViolationError as exc:
            raise click.ClickException(str(exc)) from None
        with dg.execute_job(reconstructable(pipeline_id, in_process), instance=instance,
                            reexecution_options=options) as result:
            started = sorted({e.step_key.rsplit(".", 1)[-1].removeprefix(f"{recipe.pipeline_id}__")
                              for e in result.all_events if e.event_type_value == "STEP_START" and e.step_key})
            click.echo(f"run {result.run_id} (re-execution of {run_id}{' from ' + start if start else ''}): "
                       f"{'success' if result.success else 'failure'}; steps run: {', '.join(started)}")
            if not result.success:
                raise click.ClickException("the re-execution failed")
