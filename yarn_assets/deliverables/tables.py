"""gold/deliverable_versions: every generated version with what went into it and what it cost.

Partitioned by ``deliverable_id``: a version is written (and later its delivery outcome merged)
inside its own deliverable's folder, so concurrent runs of different deliverables never contend
for a commit, and reading "the previous version" of one deliverable prunes to one folder.
Version numbering and delivery state are transactional in the control plane; this table holds
the content and its provenance.
"""

from __future__ import annotations

import polars as pl

from io_managers.delta_store import TableSpec
from yarn_assets.core.tables import UTC_TS

DELIVERABLE_VERSIONS = TableSpec(
    name="gold/deliverable_versions",
    description="Deliverable versions: draft and final text, sources used, source snapshot, strategy, model, "
    "tokens, cost, per-step timings and delivery outcome.",
    schema={
        "deliverable_id": pl.Utf8,
        "version_id": pl.Utf8,
        "version_number": pl.Int64,
        "user_id": pl.Utf8,
        "deliverable_type": pl.Utf8,
        "title": pl.Utf8,
        "strategy": pl.Utf8,  # platform_bound | cross_platform | research | hybrid
        "trigger": pl.Utf8,  # schedule | signal | manual | request
        "status": pl.Utf8,  # generated | delivered | failed | empty
        "draft_content": pl.Utf8,  # the model's (or offline composer's) text as returned
        "final_content": pl.Utf8,  # what was delivered: draft + stale-source note + labels, within limits
        "offline": pl.Boolean,
        "model": pl.Utf8,
        "input_tokens": pl.Int64,
        "output_tokens": pl.Int64,
        "cost_usd": pl.Float64,
        "prompt_chars": pl.Int64,
        "items_in_prompt": pl.Int64,
        "sources_used": pl.Utf8,  # JSON [{platform, resource_id, resource_name, items}]
        "source_snapshot": pl.Utf8,  # JSON [{platform, resource_id, synced_at, cursor, item_count, ...}]
        "stale_sources": pl.Utf8,  # JSON [{platform, resource_id, age_hours, required_hours}]
        "research": pl.Utf8,  # JSON {search_terms, web_results, papers}
        "steps": pl.Utf8,  # JSON [{name, status, ms, detail}]
        "destination": pl.Utf8,  # JSON {platform, target}
        "delivery_status": pl.Utf8,  # delivered | failed | skipped
        "delivery_error": pl.Utf8,
        "delivered_at": UTC_TS,
        "run_id": pl.Utf8,
        "created_at": UTC_TS,
        "generated_at": UTC_TS,
    },
    partition_by=("deliverable_id",),
    keys=("version_id",),
)

TABLES = (DELIVERABLE_VERSIONS,)
