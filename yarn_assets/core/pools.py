"""Concurrency pools: shared slots for steps that hit the same rate-limited service.

Assets name a pool (``@dg.asset(pool="llm")``); the instance holds each pool's limit. Unlisted
pools get ``concurrency.pools.default_limit`` from dagster.yaml. ``yarnnn pools apply`` writes
these limits (overridable with ``YARNNN_POOL_LIMITS='{"llm": 8}'``) into the instance.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

#: pool -> (default limit, why)
POOLS: dict[str, tuple[int, str]] = {
    "llm": (4, "Anthropic calls (signals, generation, memory, analysis): tier rate limits and cost"),
    "slack_api": (2, "Slack Web API: tier-3 methods allow ~50 calls/min per workspace"),
    "google_api": (4, "Gmail and Google Calendar APIs (per-user quota, 429 on bursts)"),
    "notion_api": (1, "Notion API: ~3 requests/s per integration"),
    "platform_api": (4, "live syncs of any platform (one step syncs several connections)"),
    "warehouse_maintenance": (1, "TTL cleanup and compaction rewrite files that writers also touch"),
    "people_aggregates": (1, "contact recomputes replace a user's folders: serialized, the last sees every write"),
}


def pool_limits(overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    limits = {name: limit for name, (limit, _) in POOLS.items()}
    for name, limit in (overrides or {}).items():
        if int(limit) < 0:
            raise ValueError(f"pool {name!r}: limit must be >= 0, got {limit}")
        limits[name] = int(limit)
    return limits


def apply_pool_limits(instance: dg.DagsterInstance, limits: Mapping[str, int]) -> dict[str, tuple[int | None, int]]:
    """Set each pool's limit in the instance; returns ``{pool: (previous limit or None, new limit)}``."""
    storage = instance.event_log_storage
    current = {p.name: p.limit for p in storage.get_pool_limits() if not p.from_default}
    changes = {}
    for name, limit in sorted(limits.items()):
        before = current.get(name)
        if before != limit:
            storage.set_concurrency_slots(name, limit)
        changes[name] = (before, limit)
    return changes


def instance_pool_limits(instance: dg.DagsterInstance) -> dict[str, int]:
    return {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}
