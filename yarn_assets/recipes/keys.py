"""Names and keys of a recipe's Dagster objects: asset key, op and job names, check names, run config."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from yarn_assets.recipes import dsl

IO_KEY = "recipe_io_manager"
RESOURCE_KEYS = {"warehouse", "control_plane", "llm", "search", "delivery", "recipe_limits"}
GROUP = "recipes"
PARALLEL_TAG = "yarnnn/recipe_parallel"


def asset_key(recipe: dsl.Recipe) -> dg.AssetKey:
    return dg.AssetKey(["gold", "recipes", recipe.pipeline_id])


def op_name(recipe: dsl.Recipe, step_id: str) -> str:
    return f"{recipe.pipeline_id}__{step_id}"


def job_name(recipe: dsl.Recipe) -> str:
    return f"recipe_{recipe.pipeline_id}"


def check_name(step_id: str, check: str) -> str:
    return f"{step_id}_{check}"


def run_config(recipe: dsl.Recipe, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Run config that passes ``inputs`` to a run of the recipe's asset or job."""
    return {"ops": {asset_key(recipe).to_python_identifier(): {"config": {"inputs": dict(inputs)}}}}
