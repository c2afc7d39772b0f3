"""Recipe jobs that another process can rebuild (``dg.build_reconstructable_job``): replays from the CLI.

``recipe_job("research_email")`` validates the shipped recipe file and returns its job with the
platform's resources, so ``execute_job`` can run it (or re-execute one of its runs) outside a
webserver, against the instance in ``DAGSTER_HOME``.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

RECIPES_DIR = Path(__file__).resolve().parents[1] / "defs" / "recipes"


class UnknownRecipe(LookupError):
    pass


def recipe_path(pipeline_id: str) -> Path:
    from yarn_assets.recipes.source import read_file

    for path in sorted(RECIPES_DIR.glob("*/recipe.yaml")):
        if read_file(path).data.get("pipeline_id") == pipeline_id:
            return path
    known = sorted(p.parent.name for p in RECIPES_DIR.glob("*/recipe.yaml"))
    raise UnknownRecipe(f"no shipped recipe {pipeline_id!r}; recipes: {', '.join(known)}")


def recipe_job(pipeline_id: str, in_process: bool = False) -> dg.JobDefinition:
    from resources.registry import build_resources
    from resources.settings import load_settings
    from yarn_assets.recipes import build
    from yarn_assets.recipes.validation import BudgetPolicy, validate_file

    settings = load_settings()
    report = validate_file(recipe_path(pipeline_id), BudgetPolicy.from_settings(settings))
    if not report.ok:
        raise ValueError(report.text())
    assert report.recipe is not None and report.plan is not None
    executor = dg.in_process_executor if in_process else None
    defs = dg.Definitions.merge(build.build_definitions(report.recipe, report.plan, executor=executor),
                                dg.Definitions(resources=build_resources(settings)))
    return defs.resolve_job_def(build.job_name(report.recipe))


def reconstructable(pipeline_id: str, in_process: bool = False):  # type: ignore[no-untyped-def]
    return dg.build_reconstructable_job("yarn_assets.recipes.jobs", "recipe_job",
                                        reconstructable_args=(pipeline_id, in_process))
