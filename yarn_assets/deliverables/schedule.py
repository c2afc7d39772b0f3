"""Schedule rules -> the next run time, in the user's timezone, both at creation and after a run.

The original computed a naive ``now + 1 d / 1 w / 30 d`` in UTC at creation (ignoring ``day`` and
the timezone) and the proper rule only after the first run. Here one function serves both.

``schedule`` = ``{frequency: daily|weekly|biweekly|monthly|custom|cron, day, time "HH:MM", timezone, cron}``.
Defaults are the original's: weekly, Monday, 09:00; the timezone defaults to the user's.
Local wall-clock times are resolved with ``zoneinfo``: a time inside a spring-forward gap moves
forward by the gap, an ambiguous fall-back time means its first occurrence; ``cron`` runs through
croniter on timezone-aware local datetimes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

FREQUENCIES = ("daily", "weekly", "biweekly", "monthly", "custom", "cron")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ScheduleError(ValueError):
    """A schedule that cannot produce run times."""


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown timezone {name!r}") from None


def _time(text: str) -> dt.time:
    try:
        hh, mm = str(text).split(":")[:2]
        return dt.time(int(hh), int(mm))
    except (ValueError, TypeError):
        raise ScheduleError(f"schedule time must be HH:MM, got {text!r}") from None


def _weekday(day: Any) -> int:
    text = str(day).strip().lower()
    for i, name in enumerate(WEEKDAYS):
        if text == name or (len(text) >= 3 and name.startswith(text)):
            return i
    raise ScheduleError(f"schedule day must be a weekday name, got {day!r}")


def normalize(schedule: dict[str, Any] | None, user_timezone: str = "UTC") -> dict[str, Any]:
    """Fill defaults and validate; what is stored on the deliverable."""
    s = dict(schedule or {})
    freq = str(s.get("frequency") or "weekly").lower()
    if freq not in FREQUENCIES:
        raise ScheduleError(f"unknown schedule frequency {freq!r}; use one of {', '.join(FREQUENCIES)}")
    s["frequency"] = "cron" if freq == "custom" else freq
    s["timezone"] = s.get("timezone") or user_timezone or "UTC"
    _zone(s["timezone"])
    if s["frequency"] == "cron":
        expr = s.get("cron")
        if not expr or not croniter.is_valid(str(expr)):
            raise ScheduleError(f"invalid cron expression {expr!r}")
        return s
    s["time"] = s.get("time") or "09:00"
    _time(s["time"])
    if s["frequency"] in ("weekly", "biweekly"):
        s["day"] = WEEKDAYS[_weekday(s.get("day") or "monday")]
    elif s["frequency"] == "monthly":
        day = s.get("day") or "monday"
        if isinstance(day, int) or str(day).isdigit():
            if not 1 <= int(day) <= 28:
                raise ScheduleError("a monthly day of month must be 1-28 (every month has it)")
            s["day"] = int(day)
        else:
            s["day"] = WEEKDAYS[_weekday(day)]
    return s


def _at(day: dt.date, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    """Local wall-clock time -> UTC; a round-trip resolves gap times forward."""
    local = dt.datetime.combine(day, at, tzinfo=zone)
    return local.astimezone(dt.UTC)


def _first_weekday(year: int, month: int, weekday: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7)


def _add_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def next_run_at(
    schedule: dict[str, Any] | None,
    now: dt.datetime,
    *,
    user_timezone: str = "UTC",
    previous: dt.datetime | None = None,
) -> dt.datetime:
    """The first run time strictly after ``now`` (UTC-aware).

    ``previous`` is the slot that just ran; biweekly schedules keep a 14-day rhythm from it.
    """
    if now.tzinfo is None:
        raise ScheduleError("now must be timezone-aware")
    s = normalize(schedule, user_timezone)
    zone = _zone(s["timezone"])
    local_now = now.astimezone(zone)
    freq = s["frequency"]
    if freq == "cron":
        it = croniter(str(s["cron"]), local_now)
        nxt: dt.datetime = it.get_next(dt.datetime)
        return nxt.astimezone(dt.UTC)
    at = _time(s["time"])
    if freq == "daily":
        for offset in range(0, 3):
            cand = _at(local_now.date() + dt.timedelta(days=offset), at, zone)
            if cand > now:
                return cand
    if freq in ("weekly", "biweekly"):
        weekday = _weekday(s["day"])
        start = local_now.date() + dt.timedelta(days=(weekday - local_now.weekday()) % 7)
        cand = _at(start, at, zone)
        if cand <= now:
            cand = _at(start + dt.timedelta(days=7), at, zone)
        if freq == "biweekly" and previous is not None:
            prev_day = previous.astimezone(zone).date()
            cand_day = cand.astimezone(zone).date()
            if (cand_day - prev_day).days < 14:
                cand = _at(prev_day + dt.timedelta(days=14), at, zone)
                while cand <= now:
                    cand = _at(cand.astimezone(zone).date() + dt.timedelta(days=14), at, zone)
        return cand
    if freq == "monthly":
        year, month = local_now.year, local_now.month
        for _ in range(3):
            day = s["day"]
            target = dt.date(year, month, day) if isinstance(day, int) else _first_weekday(year, month, _weekday(day))
            cand = _at(target, at, zone)
            if cand > now:
                return cand
            year, month = _add_month(year, month)
    raise ScheduleError(f"no next run time for schedule {s!r}")


def describe(schedule: dict[str, Any] | None, user_timezone: str = "UTC") -> str:
    s = normalize(schedule, user_timezone)
    if s["frequency"] == "cron":
        return f"cron '{s['cron']}' ({s['timezone']})"
    when = f" on {s['day']}" if "day" in s and s["frequency"] != "daily" else ""
    return f"{s['frequency']}{when} at {s['time']} ({s['timezone']})"
