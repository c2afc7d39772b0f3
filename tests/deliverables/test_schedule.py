"""Schedule rules, table-driven, in the user's timezone, including both DST transitions."""

from __future__ import annotations

import datetime as dt

import pytest

from yarn_assets.deliverables.schedule import ScheduleError, next_run_at, normalize

UTC = dt.UTC


def t(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).astimezone(UTC)


CASES = [
    # (schedule, user tz, now (UTC), previous slot, expected next (UTC))
    ({"frequency": "daily", "time": "09:00"}, "UTC", "2026-11-23T08:59:00+00:00", None, "2026-11-23T09:00:00+00:00"),
    ({"frequency": "daily", "time": "09:00"}, "UTC", "2026-11-23T09:00:00+00:00", None, "2026-11-24T09:00:00+00:00"),
    # the user's timezone, not UTC (the original's creation rule used UTC)
    ({"frequency": "daily", "time": "09:00"}, "Europe/Paris", "2026-11-23T07:00:00+00:00", None,
     "2026-11-23T08:00:00+00:00"),
    ({"frequency": "daily", "time": "08:00", "timezone": "Asia/Tokyo"}, "UTC", "2026-11-23T00:00:00+00:00", None,
     "2026-11-23T23:00:00+00:00"),
    # weekly: the next such weekday (today if still ahead), not "now + 7 days"
    ({"frequency": "weekly", "day": "friday", "time": "16:00"}, "America/New_York", "2026-11-23T12:00:00+00:00",
     None, "2026-11-27T21:00:00+00:00"),
    ({"frequency": "weekly", "day": "monday", "time": "09:00"}, "UTC", "2026-11-23T08:00:00+00:00", None,
     "2026-11-23T09:00:00+00:00"),
    ({"frequency": "weekly", "day": "monday", "time": "09:00"}, "UTC", "2026-11-23T09:30:00+00:00", None,
     "2026-11-30T09:00:00+00:00"),
    ({}, "UTC", "2026-11-24T00:00:00+00:00", None, "2026-11-30T09:00:00+00:00"),  # defaults: weekly Monday 09:00
    # biweekly keeps a 14-day rhythm from the slot that just ran
    ({"frequency": "biweekly", "day": "monday", "time": "09:00"}, "UTC", "2026-11-23T09:00:05+00:00",
     "2026-11-23T09:00:00+00:00", "2026-12-07T09:00:00+00:00"),
    ({"frequency": "biweekly", "day": "monday", "time": "09:00"}, "UTC", "2026-11-24T00:00:00+00:00", None,
     "2026-11-30T09:00:00+00:00"),
    # monthly: first <weekday> of the month, this month if still ahead
    ({"frequency": "monthly", "day": "monday", "time": "09:00"}, "UTC", "2026-11-23T00:00:00+00:00", None,
     "2026-12-07T09:00:00+00:00"),
    ({"frequency": "monthly", "day": "tuesday", "time": "09:00"}, "UTC", "2026-12-01T08:00:00+00:00", None,
     "2026-12-01T09:00:00+00:00"),
    ({"frequency": "monthly", "day": 15, "time": "10:00"}, "UTC", "2026-12-20T00:00:00+00:00", None,
     "2027-01-15T10:00:00+00:00"),
    # cron in the user's timezone
    ({"frequency": "cron", "cron": "30 7 * * 1-5"}, "Europe/Paris", "2026-11-27T07:00:00+00:00", None,
     "2026-11-30T06:30:00+00:00"),
    ({"frequency": "custom", "cron": "0 */6 * * *"}, "UTC", "2026-11-23T05:59:00+00:00", None,
     "2026-11-23T06:00:00+00:00"),
    # DST: New York springs forward 2026-03-08 02:00 -> 03:00; a 09:00 rule stays 09:00 local
    ({"frequency": "daily", "time": "09:00"}, "America/New_York", "2026-03-07T15:00:00+00:00", None,
     "2026-03-08T13:00:00+00:00"),
    # a time inside the gap (02:30 does not exist) moves forward by the gap: 03:30 EDT
    ({"frequency": "daily", "time": "02:30"}, "America/New_York", "2026-03-08T05:00:00+00:00", None,
     "2026-03-08T07:30:00+00:00"),
    # fall back 2026-11-01 02:00 -> 01:00: 01:30 happens twice; the first occurrence (EDT) is used
    ({"frequency": "daily", "time": "01:30"}, "America/New_York", "2026-11-01T04:00:00+00:00", None,
     "2026-11-01T05:30:00+00:00"),
    ({"frequency": "daily", "time": "09:00"}, "America/New_York", "2026-11-01T12:00:00+00:00", None,
     "2026-11-01T14:00:00+00:00"),
    # cron across Europe's spring change (2026-03-29): 09:00 local is 08:00 UTC before, 07:00 UTC after
    ({"frequency": "cron", "cron": "0 9 * * *"}, "Europe/Paris", "2026-03-28T09:00:00+00:00", None,
     "2026-03-29T07:00:00+00:00"),
    ({"frequency": "cron", "cron": "0 9 * * *"}, "Europe/Paris", "2026-03-27T09:00:00+00:00", None,
     "2026-03-28T08:00:00+00:00"),
    # weekly across the autumn change: Monday 09:00 Paris is 07:00 UTC in October, 08:00 UTC in November
    ({"frequency": "weekly", "day": "monday", "time": "09:00"}, "Europe/Paris", "2026-10-20T00:00:00+00:00", None,
     "2026-10-26T08:00:00+00:00"),
]


@pytest.mark.parametrize(("schedule", "tz", "now", "previous", "expected"), CASES)
def test_next_run_at(schedule, tz, now, previous, expected) -> None:
    got = next_run_at(schedule, t(now), user_timezone=tz, previous=t(previous) if previous else None)
    assert got == t(expected)
    assert got.tzinfo is not None and got > t(now)


@pytest.mark.parametrize(("schedule", "message"), [
    ({"frequency": "hourly"}, "unknown schedule frequency"),
    ({"frequency": "daily", "time": "9am"}, "HH:MM"),
    ({"frequency": "weekly", "day": "someday"}, "weekday"),
    ({"frequency": "cron", "cron": "61 * * * *"}, "invalid cron"),
    ({"frequency": "daily", "timezone": "Mars/Olympus"}, "unknown timezone"),
    ({"frequency": "monthly", "day": 31}, "1-28"),
])
def test_invalid_schedules_are_rejected(schedule, message) -> None:
    with pytest.raises(ScheduleError, match=message):
        normalize(schedule)


def test_creation_uses_the_timezone_aware_rule(workspace) -> None:
    """The original used now + 1 week in UTC at creation; here the first run is the rule's next slot."""
    from control_plane import db
    from yarn_assets.deliverables import service

    now = t("2026-11-23T12:00:00+00:00")  # a Monday
    with db.session_scope(workspace) as s:
        d = service.create_deliverable(s, user_id="bob", deliverable_type="status_report", title="weekly",
                                       schedule={"frequency": "weekly", "day": "friday", "time": "16:00"}, now=now)
        assert d.schedule["timezone"] == "America/New_York"
        assert d.next_run_at == t("2026-11-27T21:00:00+00:00")
        # after a run at the due time the next slot is a week later
        assert service.advance_schedule(s, d.id, d.next_run_at) == t("2026-12-04T21:00:00+00:00")
