"""The interaction timeline and calendar cache from real imports: meetings over years of history with
attendee responses and cancelled instances, Calendar API events, a Slack export, idempotent re-runs,
and history kept when the raw bodies have expired."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import icalendar
import polars as pl
import pytest

from io_managers.predicates import Eq, all_of
from tests.people.helpers import PeopleHarness
from yarn_assets.core.tables import BRONZE_ITEMS, PLATFORM_CONTENT
from yarn_assets.ingest import bronze
from yarn_assets.ingest.objects import RawObject
from yarn_assets.people.tables import CALENDAR_EVENTS, CONTACTS, IDENTITY_EVIDENCE, INTERACTIONS, with_item_key


def _attendee(cal_event: icalendar.Event, name: str, email: str, partstat: str) -> None:
    att = icalendar.vCalAddress(f"mailto:{email}")
    att.params["CN"] = icalendar.vText(name)
    att.params["PARTSTAT"] = icalendar.vText(partstat)
    cal_event.add("attendee", att)


def _event(uid: str, summary: str, start: dt.datetime, organizer: tuple[str, str], now: dt.datetime) -> icalendar.Event:
    ev = icalendar.Event()
    ev.add("uid", uid)
    ev.add("summary", summary)
    ev.add("dtstart", start)
    ev.add("dtend", start + dt.timedelta(minutes=30))
    ev.add("dtstamp", now)
    ev.add("created", start - dt.timedelta(days=1))
    org = icalendar.vCalAddress(f"mailto:{organizer[1]}")
    org.params["CN"] = icalendar.vText(organizer[0])
    ev.add("organizer", org)
    return ev


@pytest.fixture
def calendar(people: PeopleHarness, tmp_path: Path) -> dict[str, object]:
    """A weekly 1:1 the user has organised for two years (one week EXDATE'd, one instance cancelled),
    a meeting the user declined and a cancelled one-off."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first = (now - dt.timedelta(days=730)).replace(hour=10, minute=0, second=0)
    me = ("Mo Ade", "mo@me.example")
    people.add_user("mo", me[1])
    series = _event("series-1", "Kim / Mo 1:1", first, me, now)
    series.add("rrule", {"freq": "weekly"})
    _attendee(series, *me, "ACCEPTED")
    _attendee(series, "Kim Park", "kim@park.example", "ACCEPTED")
    _attendee(series, "Lou Roy", "lou@roy.example", "DECLINED")
    exdate = first + dt.timedelta(weeks=((now - first).days // 7) - 3)
    series.add("exdate", exdate)
    cancelled = first + dt.timedelta(weeks=((now - first).days // 7) - 1)
    override = _event("series-1", "Kim / Mo 1:1", cancelled, me, now)
    override.add("recurrence-id", cancelled)
    override.add("status", "CANCELLED")
    declined = _event("declined-1", "Vendor pitch", now + dt.timedelta(days=1), ("Nia Obi", "nia@obi.example"), now)
    _attendee(declined, *me, "DECLINED")
    _attendee(declined, "Nia Obi", "nia@obi.example", "ACCEPTED")
    one_off = _event("gone-1", "Budget review", now + dt.timedelta(days=2), me, now)
    one_off.add("status", "CANCELLED")
    _attendee(one_off, "Zed Fox", "zed@fox.example", "ACCEPTED")
    cal = icalendar.Calendar()
    cal.add("prodid", "-//test//EN")
    cal.add("version", "2.0")
    for c in (series, override, declined, one_off):
        cal.add_component(c)
    path = tmp_path / "mo.ics"
    path.write_bytes(cal.to_ical())
    people.register("mo", path, "ics")
    people.run("calendar")
    return {"exdate": exdate, "cancelled": cancelled, "first": first, "now": now}


def test_calendar_cache_keeps_years_of_instances_with_responses(people: PeopleHarness, calendar: dict) -> None:
    events = people.store.read(CALENDAR_EVENTS, Eq("user_id", "mo"))
    series = events.filter(pl.col("event_uid") == "series-1")
    # two years of weekly instances, far beyond silver's sync window of a week back
    assert series.height >= 100
    assert series["starts_at"].min() <= calendar["first"] + dt.timedelta(days=1)
    silver = people.store.read(PLATFORM_CONTENT, all_of(Eq("platform", "calendar"), Eq("user_id", "mo")))
    assert silver.filter(pl.col("thread_id") == "series-1").height < 10
    lou = series.explode("attendees").unnest("attendees").filter(pl.col("email") == "lou@roy.example")
    assert set(lou["response_status"]) == {"declined"}
    assert set(series.filter(~pl.col("is_cancelled"))["self_response"]) == {"accepted"}


def test_cancelled_instances_are_tombstones_without_meetings(people: PeopleHarness, calendar: dict) -> None:
    events = people.store.read(CALENDAR_EVENTS, Eq("user_id", "mo"))
    gone = events.filter(pl.col("is_cancelled"))
    starts = set(gone["starts_at"].to_list())
    assert calendar["exdate"] in starts and calendar["cancelled"] in starts  # EXDATE and STATUS:CANCELLED
    assert "gone-1" in set(gone["event_uid"])
    rows = people.interactions("mo")
    meetings = rows.filter(pl.col("participant") != "")
    assert meetings.join(gone.select("item_key"), on="item_key", how="semi").is_empty()
    tombs = rows.filter(pl.col("is_deleted"))
    assert set(gone["item_key"]) <= set(tombs["item_key"])
    # the meeting the user declined is not an interaction with Nia either
    assert "email:nia@obi.example" not in set(meetings["participant"])


def test_meetings_make_contacts_and_share_silver_keys(people: PeopleHarness, calendar: dict) -> None:
    contacts = people.contacts("mo")
    kim = contacts.filter(pl.col("primary_email") == "kim@park.example").row(0, named=True)
    assert kim["display_name"] == "Kim Park" and kim["meetings"] >= 100 and kim["created_reason"] == "organised meeting"
    assert kim["next_meeting_at"] is not None and kim["last_interaction_at"] <= calendar["now"]
    assert set(contacts["primary_email"]) == {"kim@park.example", "lou@roy.example"}
    silver_keys = set(with_item_key(people.store.read(PLATFORM_CONTENT, Eq("user_id", "mo")))["item_key"])
    mine = set(people.interactions("mo")["item_key"])
    assert silver_keys and silver_keys <= mine  # every silver event instance is on the timeline, same key


def test_calendar_api_events_carry_response_status_and_self(people: PeopleHarness, corpus: Path) -> None:
    data = json.loads((corpus / "gcal_api" / "gdataprovider__gcalItems.json").read_text())
    event = data["simple_event"]
    people.add_user("gus", "organizer@example.com")
    day = dt.date.fromisoformat(people.today)
    fetched = dt.datetime.now(dt.UTC)
    info = bronze.BatchInfo(user_id="gus", platform="calendar", ingest_date=day, source_kind="sync",
                            provider="gcal_api", batch_id="gcal-1", fetched_at=fetched)
    objects = [RawObject("gcal_api_event", event["id"], json.dumps(event).encode(), resource_id="primary",
                         resource_name="Work", context={"calendar_name": "Work"})]
    bronze.write_batch(people.store, bronze.bronze_frame(objects, info), info)
    people.run("calendar")
    ev = people.store.read(CALENDAR_EVENTS, Eq("user_id", "gus")).row(0, named=True)
    assert {a["email"]: a["response_status"] for a in ev["attendees"]} == {"attendee@example.com": "tentative"}
    selfs = people.store.read(IDENTITY_EVIDENCE, Eq("user_id", "gus")).filter(pl.col("a") == "self")
    assert "email:organizer@example.com" in set(selfs["b"])
    c = people.contacts("gus").row(0, named=True)
    assert c["primary_email"] == "attendee@example.com" and c["display_name"] == "attendee name"


@pytest.fixture
def slack(people: PeopleHarness, tmp_path: Path) -> PeopleHarness:
    from demo.sample_workspace import generate_workspace

    ws = generate_workspace(tmp_path / "ws", now=dt.datetime.now(dt.UTC).replace(microsecond=0))
    alice = next(u for u in ws.users if u.id == "alice")
    people.add_user("alice", alice.email)
    for e in ws.exports_of("alice"):
        if e.provider == "slack_export":
            people.register("alice", e.path, e.provider)
    people.run("slack")
    return people


def test_slack_export_profiles_directions_and_mentions(slack: PeopleHarness) -> None:
    rows = slack.interactions("alice").filter(pl.col("participant") != "")
    received = rows.filter(pl.col("direction") == "received")
    assert set(received["role"]) == {"author"} and "slack:U0ALIME0" not in set(received["participant"])
    sent = rows.filter(pl.col("direction") == "sent")
    assert {"mention", "parent"} <= set(sent["role"])  # her welcome mentions Léa; her reply answers Marc's thread
    assert not rows["participant"].str.contains("U0DEPLOYB").any()  # the bot is nobody's contact
    ev = slack.store.read(IDENTITY_EVIDENCE, Eq("user_id", "alice"))
    assert ev.filter((pl.col("a") == "self") & (pl.col("b") == "slack:U0ALIME0")).height == 1
    contacts = slack.contacts("alice")
    assert set(contacts["display_name"]) == {"Marc Dubois", "Priya Shah", "Léa Martin"}
    assert all(len(ids) == 1 for ids in contacts["slack_ids"].to_list())
    assert set(contacts["primary_email"]) == {"marc@northwind.example", "priya@northwind.example",
                                               "lea@northwind.example"}


def test_rerun_is_idempotent_and_history_survives_expired_bodies(slack: PeopleHarness) -> None:
    store = slack.store
    before = {s.name: store.read(s).sort(list(s.keys)) for s in (INTERACTIONS, IDENTITY_EVIDENCE, CONTACTS)}
    slack.people("slack")
    for spec in (INTERACTIONS, IDENTITY_EVIDENCE, CONTACTS):
        assert store.read(spec).sort(list(spec.keys)).equals(before[spec.name]), spec.name
    # the TTL cleanup clears every raw body of the partition; re-deriving must not lose the timeline
    store.update(BRONZE_ITEMS, Eq("platform", "slack"),
                 {"raw": "NULL", "body_expired_at": "CAST('2030-01-01T00:00:00Z' AS TIMESTAMP)"})
    slack.people("slack")
    for spec in (INTERACTIONS, IDENTITY_EVIDENCE):
        assert store.read(spec).sort(list(spec.keys)).equals(before[spec.name]), spec.name
