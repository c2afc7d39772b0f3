"""Reading and writing rows of ``gold/deliverable_versions`` (the content and provenance of each version).

Kept small and separate: the run (:mod:`yarn_assets.deliverables.run`), the recipes and the CLI's
resend go through these, so the table's physical layout is decided here only.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, all_of
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS


def _gold_row(store: DeltaStore, deliverable_id: str, version_id: str) -> dict[str, Any] | None:
    df = store.read(DELIVERABLE_VERSIONS, all_of(Eq("deliverable_id", deliverable_id), Eq("version_id", version_id)))
    return df.row(0, named=True) if df.height else None


def previous_output(store: DeltaStore, deliverable_id: str, before_version: int) -> str | None:
    """The newest earlier version's delivered text (the original's 'past output' context)."""
    df = store.read(DELIVERABLE_VERSIONS, Eq("deliverable_id", deliverable_id),
                    columns=["version_number", "final_content", "status"])
    df = df.filter((pl.col("version_number") < before_version) & pl.col("final_content").is_not_null()
                   & pl.col("status").is_in(["delivered", "generated"]))
    if df.is_empty():
        return None
    return str(df.sort("version_number").row(-1, named=True)["final_content"])


def write_gold(store: DeltaStore, row: dict[str, Any]) -> None:
    df = pl.DataFrame([row], schema=dict(DELIVERABLE_VERSIONS.schema), strict=False)
    store.merge(DELIVERABLE_VERSIONS, df, pin=Eq("deliverable_id", row["deliverable_id"]))
