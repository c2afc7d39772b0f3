"""The ``dg`` component: a recipe file in the defs folder becomes Dagster definitions.

``yarn_assets/defs/recipes/<name>/defs.yaml``::

    type: yarn_assets.recipes.component.RecipeComponent
    attributes:
      recipe: recipe.yaml      # the recipe, next to defs.yaml

The recipe lives in its own file (not inline under ``attributes``) because ``defs.yaml``
attributes are themselves templated by ``dg`` and would swallow the recipe's ``{{step.field}}``.
Loading validates all four levels; any error stops the load (so ``dg check defs`` fails) with
every error listed, each with its level and line.
"""

from pathlib import Path

import dagster as dg
from pydantic import Field


class RecipeInvalid(ValueError):
    """The recipe did not pass validation; the message lists every error."""


class RecipeComponent(dg.Component, dg.Resolvable, dg.Model):
    """A declarative pipeline (recipe YAML) as a graph-backed asset with one op per step, and a job."""

    recipe: str = Field(default="recipe.yaml", description="The recipe file, relative to this defs.yaml.")
    tier: str | None = Field(default=None, description="Budget tier to check the estimate against (default: the "
                             "recipe's budget.tier).")

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from resources.settings import load_settings
        from yarn_assets.recipes.build import build_definitions
        from yarn_assets.recipes.validation import BudgetPolicy, validate_file

        path = Path(context.path) / self.recipe
        report = validate_file(path, BudgetPolicy.from_settings(load_settings()), tier=self.tier)
        if not report.ok:
            raise RecipeInvalid(f"recipe {path} has {len(report.errors)} error(s):\n" + report.text())
        assert report.recipe is not None and report.plan is not None
        try:
            relative = str(path.relative_to(context.project_root))
        except ValueError:
            relative = path.name
        return build_definitions(report.recipe, report.plan, source_text=path.read_text(encoding="utf-8"),
                                 metadata={"recipe_file": relative})
