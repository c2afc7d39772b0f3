"""gold/recipe_outputs: what ``output`` steps write (one row per recipe, user and output key).

Partitioned by ``recipe_id``; a re-run (or a replay) of the same output key replaces the row,
so re-executing a recipe never duplicates its output.
"""

from __future__ import annotations

import polars as pl

from io_managers.delta_store import TableSpec
from yarn_assets.core.tables import UTC_TS

RECIPE_OUTPUTS = TableSpec(
    name="gold/recipe_outputs",
    description="Rows written by recipe output steps: title, Markdown/JSON content, structured data, run lineage.",
    schema={
        "recipe_id": pl.Utf8,
        "user_id": pl.Utf8,
        "output_key": pl.Utf8,
        "step_id": pl.Utf8,
        "title": pl.Utf8,
        "format": pl.Utf8,  # markdown | json
        "content": pl.Utf8,
        "data": pl.Utf8,  # JSON
        "offline": pl.Boolean,
        "run_id": pl.Utf8,
        "root_run_id": pl.Utf8,
        "created_at": UTC_TS,
        "updated_at": UTC_TS,
    },
    partition_by=("recipe_id",),
    keys=("recipe_id", "user_id", "output_key"),
)

TABLES = (RECIPE_OUTPUTS,)
