"""When a connection is due: the original's tier windows in the user's local time, plus minimum gaps.

| tier    | windows (local)   | minimum gap |
|---------|-------------------|-------------|
| free    | 08:00             | 6 h         |
| starter | 00/06/12/18       | 4 h         |
| pro     | every hour        | 45 min      |

The original only synced while the window was open (minute < 10), so a scheduler outage at 08:00
skipped a free user's day. Here a connection is due when the latest window has opened since its
last attempt (so a late tick still catches up) and the minimum gap since its last success has
passed (so a manual sync just before a window is not repeated).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yarn_assets.ingest.sync.landscape import tier_of

TIER_WINDOWS: dict[str, tuple[int, ...]] = {
    "free": (8,),
    "starter": (0, 6, 12, 18),
    "pro": tuple(range(24)),
}
MIN_GAP: dict[str, dt.timedelta] = {
    "free": dt.timedelta(hours=6),
    "starter": dt.timedelta(hours=4),
    "pro": dt.timedelta(minutes=45),
}
SYNCABLE_STATUSES = frozenset({"active", "connected", "error"})


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def latest_window_start(now: dt.datetime, tier: str, timezone: str | None) -> dt.datetime:
    """The most recent local window opening at or before ``now``, in UTC."""
    tz = zone(timezone)
    local = now.astimezone(tz)
    hours = TIER_WINDOWS[tier_of(tier)]
    best: dt.datetime | None = None
    for back in range(0, 3):
        day = local.date() - dt.timedelta(days=back)
        for hour in hours:
            start = dt.datetime(day.year, day.month, day.day, hour, tzinfo=tz).astimezone(dt.UTC)
            if start <= now and (best is None or start > best):
                best = start
        if best is not None:
            break
    assert best is not None
    return best


@dataclass(frozen=True)
class Due:
    due: bool
    reason: str
    window_start: dt.datetime


def is_due(
    *,
    now: dt.datetime,
    tier: str,
    timezone: str | None,
    status: str,
    last_attempt_at: dt.datetime | None,
    last_synced_at: dt.datetime | None,
) -> Due:
    window = latest_window_start(now, tier, timezone)
    if status not in SYNCABLE_STATUSES:
        return Due(False, f"status {status}: reconnect to resume", window)
    if last_attempt_at is not None and last_attempt_at >= window:
        return Due(False, "already attempted in this window", window)
    gap = MIN_GAP[tier_of(tier)]
    if last_synced_at is not None and now - last_synced_at < gap:
        return Due(False, f"synced {now - last_synced_at} ago (< {gap})", window)
    return Due(True, f"window {window.isoformat()} open", window)
