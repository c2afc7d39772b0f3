"""Freshness policies for the assets operators watch, applied once to the merged definitions.

Policies are keyed by asset key and applied only to keys that exist, so a domain that is not
merged yet costs nothing; an asset's own policy always wins (``overwrite_existing=False``). The
FreshnessDaemon evaluates them (no sensor needed) and the UI shows pass/warn/fail.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

H = dt.timedelta(hours=1)

#: Hourly assets: warn after 90 min, fail after 3 h. Daily ones: a cron deadline an hour after the run.
#: Event-driven assets (deliverable versions) have no policy: their sensors' ticks are the signal.
FRESHNESS: dict[dg.AssetKey, dg.FreshnessPolicy] = {
    # ingest: some connection syncs every hour (pro) and at least daily (free)
    dg.AssetKey(["bronze", "platform_items", "syncs"]): dg.FreshnessPolicy.time_window(fail_window=26 * H,
                                                                                        warn_window=2 * H),
    dg.AssetKey(["silver", "platform_content"]): dg.FreshnessPolicy.time_window(fail_window=26 * H,
                                                                               warn_window=2 * H),
    # signals: hourly
    dg.AssetKey(["gold", "signal_summaries"]): dg.FreshnessPolicy.time_window(fail_window=3 * H,
                                                                             warn_window=1.5 * H),
    dg.AssetKey(["gold", "signal_actions"]): dg.FreshnessPolicy.time_window(fail_window=3 * H, warn_window=1.5 * H),
    # memory: nightly at 00:00 UTC; conversation analysis at 06:00 UTC; digests checked hourly
    dg.AssetKey(["gold", "memory_facts"]): dg.FreshnessPolicy.cron(deadline_cron="0 1 * * *",
                                                                  lower_bound_delta=dt.timedelta(minutes=75)),
    dg.AssetKey(["gold", "session_summaries"]): dg.FreshnessPolicy.cron(deadline_cron="0 1 * * *",
                                                                       lower_bound_delta=dt.timedelta(minutes=75)),
    dg.AssetKey(["gold", "activity_patterns"]): dg.FreshnessPolicy.cron(deadline_cron="0 1 * * *",
                                                                       lower_bound_delta=dt.timedelta(minutes=75)),
    dg.AssetKey(["gold", "deliverable_suggestions"]): dg.FreshnessPolicy.cron(
        deadline_cron="0 7 * * *", lower_bound_delta=dt.timedelta(minutes=75)),
    # digests run only in the hour some user's digest is due (weekly per user): fail after 8 days
    dg.AssetKey(["gold", "weekly_digests"]): dg.FreshnessPolicy.time_window(fail_window=8 * 24 * H),
    # housekeeping
    dg.AssetKey(["ops", "content_cleanup"]): dg.FreshnessPolicy.time_window(fail_window=3 * H, warn_window=1.5 * H),
    dg.AssetKey(["ops", "table_maintenance"]): dg.FreshnessPolicy.cron(deadline_cron="30 5 * * *",
                                                                      lower_bound_delta=3 * H),
}


def apply_freshness_policies(
    defs: dg.Definitions, policies: dict[dg.AssetKey, dg.FreshnessPolicy] | None = None
) -> dg.Definitions:
    """``defs`` with ``policies`` attached to the materializable assets it defines (DOP style)."""
    policies = FRESHNESS if policies is None else policies
    graph = defs.resolve_asset_graph()
    keys = [k for k in policies if graph.has(k) and graph.get(k).is_materializable]
    if not keys:
        return defs
    return defs.permissive_map_resolved_asset_specs(
        func=lambda spec: dg.apply_freshness_policy(spec, policies[spec.key], overwrite_existing=False),
        selection=keys,
    )
