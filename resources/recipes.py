"""Limits of recipe runs (from settings), as a resource the recipe ops read."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class RecipeLimits(dg.ConfigurableResource):
    max_rows: int = Field(default=5000, description="Most rows a read_asset/data_transform step returns.")
    max_loop_items: int = Field(default=200, description="Most items a loop step iterates over.")
    max_wait_minutes: float = Field(default=60.0, description="Longest a wait_for_asset step waits.")
