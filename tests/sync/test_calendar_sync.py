"""Google Calendar sync: -7 d .. +14 d window, sync tokens, 410 resync, cancelled -> removed."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tests.sync.conftest import metadata


def test_window_cap_sync_token_410_and_cancellations(world):
    g = world.google
    g.max_page = 40
    g.calendars["team@group.calendar.google.com"] = {"id": "team@group.calendar.google.com", "summary": "Team",
                                                     "timeZone": "UTC", "accessRole": "reader"}
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    past = g.add_event(now - dt.timedelta(days=10), summary="too old")
    future = g.add_event(now + dt.timedelta(days=20), summary="too far")
    inside = [g.add_event(now - dt.timedelta(days=6) + dt.timedelta(hours=i), summary=f"meeting {i}")
              for i in range(230)]
    team = g.add_event(now + dt.timedelta(days=1), calendar="team@group.calendar.google.com", summary="standup")

    md = metadata(world.sync("calendar"))
    conn = world.connection("calendar")
    assert conn.selected_sources == ["primary", "team@group.calendar.google.com"]  # every calendar
    res = md["resources"][world.connections["calendar"]]
    assert res["primary"]["fetched"] == 200 and res["primary"]["capped"] is True
    calls = g.matching("GET", r"/calendars/primary/events")
    assert all(r.param("singleEvents") == "true" and r.param("orderBy") == "startTime" for r in calls)
    t_min = dt.datetime.fromisoformat(calls[0].param("timeMin").replace("Z", "+00:00"))
    t_max = dt.datetime.fromisoformat(calls[0].param("timeMax").replace("Z", "+00:00"))
    assert abs((now - t_min) - dt.timedelta(days=7)) < dt.timedelta(minutes=5)
    assert abs((t_max - now) - dt.timedelta(days=14)) < dt.timedelta(minutes=5)
    silver = world.silver("calendar")
    assert silver.filter(pl.col("resource_id") == "primary").height == 200
    assert not {past["id"], future["id"]} & set(silver["external_id"])
    row = silver.filter(pl.col("external_id") == inside[0]["id"]).row(0, named=True)
    assert row["title"] == "meeting 0" and row["content"].startswith("meeting 0\nWhen: ")
    assert row["occurred_at"] == dt.datetime.fromisoformat(inside[0]["start"]["dateTime"])
    assert row["resource_name"] == "Main"
    # capped: no sync token for primary; the team calendar got one
    reg = world.registry("calendar")
    assert reg["primary"]["cursor"] is None and reg["team@group.calendar.google.com"]["cursor"].startswith("sync-")
    assert team["id"] in set(silver["external_id"])

    # incremental by sync token: a change and a cancellation
    g.update_event(team["id"], summary="standup (moved)")
    extra = g.add_event(now + dt.timedelta(days=2), calendar="team@group.calendar.google.com", summary="retro")
    g.reset_log()
    world.sync("calendar")
    team_calls = g.matching("GET", r"/calendars/team")
    assert [r.param("syncToken") for r in team_calls] == [reg["team@group.calendar.google.com"]["cursor"]]
    assert team_calls[0].param("timeMin") is None
    silver = world.silver("calendar")
    titles = set(silver.filter(pl.col("resource_id") == "team@group.calendar.google.com")["title"])
    assert titles == {"standup (moved)", "retro"}

    g.cancel_event(extra["id"])
    world.sync("calendar")
    assert extra["id"] not in set(world.silver("calendar")["external_id"])
    tomb = world.bronze("calendar").filter(pl.col("external_id") == extra["id"])
    assert tomb["is_tombstone"].to_list()[-1] is True or True in tomb["is_tombstone"].to_list()

    # the provider expired our sync token: full window again, nothing duplicated
    g.expired_sync_tokens.add(world.registry("calendar")["team@group.calendar.google.com"]["cursor"])
    g.reset_log()
    md = metadata(world.sync("calendar"))
    res = md["resources"][world.connections["calendar"]]["team@group.calendar.google.com"]
    assert res["cursor_resets"] == 1
    team_calls = g.matching("GET", r"/calendars/team")
    assert team_calls[0].param("syncToken") and team_calls[1].param("timeMin")
    team_rows = world.silver("calendar").filter(pl.col("resource_id") == "team@group.calendar.google.com")
    assert sorted(team_rows["title"]) == ["standup (moved)"]
