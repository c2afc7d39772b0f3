"""Declarative automation conditions shared by the domains' daily assets.

Day partitions (``core.partitions.ingest_days``) end one day ahead: today's partition exists so imports
and syncs can land in it. Dagster's ``on_cron`` and ``eager`` target the latest time window, which is
therefore today; work that runs on the day that ended (the nightly memory chain) needs the same
conditions with the window set to yesterday. Both are spelled out here once.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

NIGHTLY_CRON = "0 0 * * *"

#: The partition of the day that ended: within two days of the latest window's end, but not the latest.
YESTERDAY = (dg.AutomationCondition.in_latest_time_window(dt.timedelta(days=2))
             & ~dg.AutomationCondition.in_latest_time_window())


def on_cron_for_yesterday(cron: str = NIGHTLY_CRON, timezone: str = "UTC") -> dg.AutomationCondition:
    """Once per tick of ``cron``, the day that ended (``on_cron`` without waiting on upstream updates:
    the head of a chain reads sources Dagster does not materialize, e.g. the chat app's tables)."""
    return (YESTERDAY & dg.AutomationCondition.cron_tick_passed(cron, timezone).since_last_handled()
            & ~dg.AutomationCondition.in_progress()).with_label(f"on_cron({cron}, {timezone}) for yesterday")


def eager_for_yesterday() -> dg.AutomationCondition:
    """``eager`` for the day that ended: requested with (or after) an upstream update of that day, so an
    import that merges today's rows never starts work on a day that is still going on."""
    return (YESTERDAY & dg.AutomationCondition.any_deps_updated().since_last_handled()
            & ~dg.AutomationCondition.any_deps_missing() & ~dg.AutomationCondition.any_deps_in_progress()
            & ~dg.AutomationCondition.in_progress()).with_label("eager for yesterday")
