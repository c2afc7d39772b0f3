"""The deliverables domain's Delta tables: versions (text and provenance) and retention marks.

``gold/deliverable_versions`` is partitioned by ``user_bucket`` (``shard_of(user_id, 16)``), a fixed
number of folders whatever the number of deliverables: the earlier ``deliverable_id`` partitioning
gave the Delta log one folder (and files) per deliverable, so every open of the table grew with the
deliverable count. 16 is a power of two: with a ``user_shards`` setting that divides it (1, 2, 4, 8,
16) every bucket belongs to exactly one user shard, so the rounds of different shards never write
the same partition (other settings stay correct; their commits may retry). A round writes its rows
in one commit; readers filter on ``deliverable_id``/``version_id``/``user_id`` as before (and may
add :func:`version_bucket` to prune). Tables in the old layout are rewritten once by
:func:`yarn_assets.deliverables.versions.ensure_layout`. Version numbering and delivery state are
transactional in the control plane; this table holds the content and its provenance.

``gold/retained_items``: the silver items a version's prompt used (first reference wins). Written
once per round, insert-only, so a deliverable never rewrites silver day files; the TTL cleanup
(``ops/cleanup.py``) applies a mark to its silver row when the row would otherwise be deleted.
"""

from __future__ import annotations

import polars as pl

from io_managers.delta_store import TableSpec
from yarn_assets.core.shards import shard_of
from yarn_assets.core.tables import UTC_TS

#: Fixed bucket count of ``gold/deliverable_versions`` (independent of the ``user_shards`` setting).
VERSION_BUCKETS = 16


def version_bucket(user_id: str) -> str:
    """The ``user_bucket`` partition of a user's versions."""
    return shard_of(user_id, VERSION_BUCKETS)


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
        "user_bucket": pl.Utf8,  # partition: version_bucket(user_id)
    },
    partition_by=("user_bucket",),
    keys=("version_id",),
)

RETAINED_ITEMS = TableSpec(
    name="gold/retained_items",
    description="Silver items a deliverable version's prompt used: kept past their TTL (the cleanup applies "
    "the mark to the silver row instead of deleting it). Insert-only; the first reference wins.",
    schema={
        "user_id": pl.Utf8,
        "platform": pl.Utf8,
        "resource_id": pl.Utf8,
        "external_id": pl.Utf8,
        "created_day": pl.Utf8,  # partition: the silver row's created_day
        "retained_reason": pl.Utf8,
        "retained_ref": pl.Utf8,  # the version id (or recipe version) that used the item first
        "retained_at": UTC_TS,
    },
    partition_by=("created_day",),
    keys=("user_id", "platform", "resource_id", "external_id"),
)

TABLES = (DELIVERABLE_VERSIONS, RETAINED_ITEMS)
