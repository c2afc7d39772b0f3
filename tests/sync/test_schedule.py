"""Tier windows in local time, minimum gaps, catch-up after a missed window, and the 5-minute sensor."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from yarn_assets.ingest.sync.schedule import is_due, latest_window_start

UTC = dt.UTC


def at(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("tier", "tz", "now", "window"),
    [
        ("free", "Europe/Berlin", "2026-03-10T07:03", "2026-03-10T07:00"),  # 08:00 CET = 07:00 UTC
        ("free", "Europe/Berlin", "2026-03-10T06:59", "2026-03-09T07:00"),
        ("free", "Europe/Berlin", "2026-07-10T06:30", "2026-07-10T06:00"),  # CEST: 08:00 = 06:00 UTC
        ("free", "America/Los_Angeles", "2026-03-10T14:59", "2026-03-09T15:00"),  # 08:00 PDT = 15:00 UTC
        ("free", "America/Los_Angeles", "2026-03-07T16:10", "2026-03-07T16:00"),  # before DST: PST
        ("starter", "UTC", "2026-03-10T13:20", "2026-03-10T12:00"),
        ("starter", "Asia/Kolkata", "2026-03-10T01:00", "2026-03-10T00:30"),  # 06:00 IST
        ("pro", "UTC", "2026-03-10T13:20", "2026-03-10T13:00"),
        ("enterprise-ish", "Nowhere/Invalid", "2026-03-10T09:00", "2026-03-10T08:00"),  # unknown -> free, UTC
    ],
)
def test_latest_window(tier, tz, now, window):
    assert latest_window_start(at(now), tier, tz) == at(window)


def test_due_rules():
    now = at("2026-03-10T07:04")
    kw = dict(tier="free", timezone="Europe/Berlin", status="active")
    assert is_due(now=now, last_attempt_at=None, last_synced_at=None, **kw).due
    # already attempted in this window (a failure is not retried every 5 minutes)
    assert not is_due(now=now, last_attempt_at=at("2026-03-10T07:01"), last_synced_at=None, **kw).due
    # a manual sync an hour before the window: minimum gap of 6 h not met
    gap = is_due(now=now, last_attempt_at=at("2026-03-10T06:00"), last_synced_at=at("2026-03-10T06:00"), **kw)
    assert not gap.due and "< 6:00:00" in gap.reason
    # the scheduler was down at 08:00 local: caught up at 14:00 (the original skipped the day)
    late = at("2026-03-10T13:00")
    assert is_due(now=late, last_attempt_at=at("2026-03-09T07:02"), last_synced_at=at("2026-03-09T07:02"), **kw).due
    # pro: hourly, 45-minute gap
    pro = dict(tier="pro", timezone="UTC", status="active")
    assert is_due(now=at("2026-03-10T10:05"), last_attempt_at=at("2026-03-10T09:01"),
                  last_synced_at=at("2026-03-10T09:01"), **pro).due
    assert not is_due(now=at("2026-03-10T10:05"), last_attempt_at=at("2026-03-10T09:40"),
                      last_synced_at=at("2026-03-10T09:40"), **pro).due
    # starter: 00/06/12/18 and 4 h
    st = dict(tier="starter", timezone="UTC", status="active")
    assert is_due(now=at("2026-03-10T12:03"), last_attempt_at=at("2026-03-10T06:02"),
                  last_synced_at=at("2026-03-10T06:02"), **st).due
    assert not is_due(now=at("2026-03-10T11:03"), last_attempt_at=at("2026-03-10T06:02"),
                      last_synced_at=at("2026-03-10T06:02"), **st).due
    # revoked/expired connections wait for a reconnect; "connected" (legacy) and "error" still sync
    for status, due in (("revoked", False), ("expired", False), ("paused", False), ("connected", True),
                        ("error", True)):
        assert is_due(now=now, last_attempt_at=None, last_synced_at=None, tier="free", timezone="UTC",
                      status=status).due is due


def test_sensor_requests_one_run_per_platform_for_due_connections(world):
    from control_plane.models import PlatformConnection, User
    from resources.control_plane import ControlPlane
    from sensors.ingest import platform_sync_sensor
    from yarn_assets.ingest.sync.asset import TAG_CONNECTIONS, TAG_PLATFORM

    now = dt.datetime.now(UTC)
    with world.session() as s:
        s.add(User(id="zed", email="z@example.com", tier="free", timezone="UTC"))
        s.flush()
        s.add(PlatformConnection(user_id="zed", platform="slack", credentials_encrypted="x", settings={},
                                 landscape={}, selection_overridden=False, last_attempt_at=now,
                                 last_synced_at=now))  # just synced: not due
        ana_notion = s.get(PlatformConnection, world.connections["notion"])
        ana_notion.status = "revoked"  # not due until reconnected
    cp = ControlPlane(url=world.settings.resolved_control_plane_url)
    with dg.instance_for_test() as instance:
        result = platform_sync_sensor(dg.build_sensor_context(instance=instance), control_plane=cp)
        requests = {r.tags[TAG_PLATFORM]: r for r in result.run_requests}
        assert set(requests) == {"slack", "gmail", "calendar"}  # ana is pro: due every hour
        assert requests["slack"].tags[TAG_CONNECTIONS] == world.connections["slack"]
        assert requests["slack"].partition_key == f"{now.date().isoformat()}|slack"
        again = platform_sync_sensor(dg.build_sensor_context(instance=instance), control_plane=cp)
        assert {r.run_key for r in again.run_requests} == {r.run_key for r in result.run_requests}


def test_past_partition_is_a_noop_unless_forced(world):
    from tests.sync.conftest import metadata

    world.slack.add_channel("C1", "general", 3)
    world.slack.fill("C1", 3)
    yesterday = (dt.datetime.now(UTC) - dt.timedelta(days=1)).date().isoformat()
    md = metadata(world.sync("slack", day=yesterday))
    assert md["mode"] == "noop_past_day" and "records when content was fetched" in md["note"]
    assert world.slack.count() == 0 and world.bronze("slack").height == 0
    md = metadata(world.sync("slack", day=yesterday, force=True))
    assert md["objects"] == 3
    assert world.bronze("slack")["ingest_date"].unique().to_list() == [dt.date.fromisoformat(yesterday)]
