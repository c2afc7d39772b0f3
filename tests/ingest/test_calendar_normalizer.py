"""ICS reader and normalizer: UTC conversion, recurrence expansion in the window, tombstones, rejects."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from tests.ingest.helpers import meta, read_and_normalize

UTC = dt.UTC


def _ics(corpus: Path, name: str) -> Path:
    return corpus / "ics" / name


def _write(tmp_path: Path, body: str, name: str = "cal.ics") -> Path:
    path = tmp_path / name
    path.write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + body + "END:VCALENDAR\r\n")
    return path


def test_recurring_series_expanded_in_window_with_override_and_rdate(corpus: Path) -> None:
    """RFC 7265 example: DAILY COUNT=5 at 12:00 US/Eastern, an RDATE period, the 4th moved to 14:00."""
    items, _, rejects, _ = read_and_normalize(
        _ics(corpus, "icalendar__calendars_rfc_7265_appendix_example_2_ical.ics"), "ics",
        fetched_at=dt.datetime(2006, 1, 3, 9, tzinfo=UTC))
    assert not rejects
    uid = "00959BC664CA650E933C892C@example.com"
    got = sorted((r["external_id"], r["occurred_at"], r["ends_at"]) for r in items.iter_rows(named=True))
    at = lambda d, h, m=0: dt.datetime(2006, 1, d, h, m, tzinfo=UTC)  # noqa: E731
    assert got == [
        (f"{uid}/20060102T170000Z", at(2, 17), at(2, 18)),
        (f"{uid}/20060102T200000Z", at(2, 20), at(2, 22)),  # RDATE period, 2 h
        (f"{uid}/20060103T170000Z", at(3, 17), at(3, 18)),
        (f"{uid}/20060104T170000Z", at(4, 19), at(4, 20)),  # moved by its RECURRENCE-ID override
        (f"{uid}/20060105T170000Z", at(5, 17), at(5, 18)),
        (f"{uid}/20060106T170000Z", at(6, 17), at(6, 18)),
    ]
    assert {r["thread_id"] for r in items.iter_rows(named=True)} == {uid}
    assert all(meta(r)["rrule"] == "FREQ=DAILY;COUNT=5" for r in items.iter_rows(named=True))


def test_window_bounds_and_exdates(corpus: Path) -> None:
    items, _, _, _ = read_and_normalize(_ics(corpus, "icalendar__events_issue_112_missing_tzinfo_on_exdate.ics"),
                                        "ics", fetched_at=dt.datetime(2013, 10, 10, tzinfo=UTC))
    starts = sorted(items["occurred_at"].to_list())
    # window Oct 3 .. Oct 24; Fri/Sat at 12:00 New York; Oct 11 and 12 excluded; UNTIL Oct 25 03:59 UTC
    assert starts == [dt.datetime(2013, 10, d, 16, tzinfo=UTC) for d in (4, 5, 18, 19)]


def test_series_without_instance_in_window_is_filtered_and_counted(corpus: Path) -> None:
    """The spec's calendar window applies to imports: a series with nothing in it gives no silver item."""
    items, _, rejects, filtered = read_and_normalize(
        _ics(corpus, "icalendar__calendars_rfc_7265_appendix_example_2_ical.ics"), "ics",
        fetched_at=dt.datetime(2026, 1, 15, tzinfo=UTC))
    assert items.is_empty() and not rejects
    assert filtered == {"calendar_series_outside_window": 1}


def test_single_events_outside_the_window_are_filtered_by_reason(tmp_path: Path) -> None:
    fetched = dt.datetime(2026, 3, 10, 12, tzinfo=UTC)  # window: Mar 3 12:00 .. Mar 24 12:00
    path = _write(tmp_path, "".join(
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{uid}\r\nEND:VEVENT\r\n"
        for uid, start, end in [
            ("long-before", "20260101T090000Z", "20260101T100000Z"),
            ("ends-in-window", "20260303T080000Z", "20260303T130000Z"),  # started before, still running
            ("inside", "20260315T090000Z", "20260315T100000Z"),
            ("just-after", "20260324T120001Z", "20260324T130000Z"),
        ]) + "BEGIN:VEVENT\r\nUID:gone\r\nDTSTART:20250101T090000Z\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n")
    items, _, rejects, filtered = read_and_normalize(path, "ics", fetched_at=fetched)
    assert not rejects
    # a cancellation is a deletion, never filtered: it removes what an earlier import put in silver
    assert sorted(items["external_id"]) == ["ends-in-window", "gone", "inside"]
    assert filtered == {"calendar_outside_window": 2}


def test_all_day_and_timezones(corpus: Path) -> None:
    fetched = dt.datetime(2026, 1, 14, 12, tzinfo=UTC)  # a Wednesday
    items, _, _, _ = read_and_normalize(_ics(corpus, "icaljs__day_long_recur_yearly.ics"), "ics", fetched_at=fetched)
    first = items.sort("occurred_at").row(0, named=True)
    assert first["occurred_at"] == dt.datetime(2026, 1, 7, tzinfo=UTC)  # UTC midnight of the date
    assert first["ends_at"] == dt.datetime(2026, 1, 8, tzinfo=UTC)
    assert meta(first)["all_day"] is True and "When: 2026-01-07 — 2026-01-08" in first["content"]
    assert items.height == 16  # weekdays overlapping [Jan 7 12:00, Jan 28 12:00]: 3 + 5 + 5 + 3
    cases = {
        "icalendar__calendars_pacific_fiji.ics": dt.datetime(2014, 8, 28, 20, tzinfo=UTC),  # custom VTIMEZONE
        "icalendar__calendars_issue_218_bad_tzid.ics": dt.datetime(2017, 2, 28, 12, tzinfo=UTC),  # "UTC+11"
        "icalendar__calendars_issue_237_fail_to_parse_timezone_with_non_ascii_tzid.ics":
            dt.datetime(2017, 5, 11, 16, 30, tzinfo=UTC),  # "(UTC-03:00) Brasília"
        "icalendar__calendars_alarm_thunderbird_future.ics": dt.datetime(2024, 10, 23, 14, tzinfo=UTC),
    }
    for name, start in cases.items():  # each read as if landed the day before its event
        items, _, rejects, _ = read_and_normalize(_ics(corpus, name), "ics", fetched_at=start - dt.timedelta(days=1))
        assert not rejects and items["occurred_at"].to_list() == [start], name
    fiji = read_and_normalize(_ics(corpus, "icalendar__calendars_pacific_fiji.ics"), "ics",
                              fetched_at=dt.datetime(2014, 8, 27, tzinfo=UTC))[0].row(0, named=True)
    assert meta(fiji)["flags"] == ["duplicate_dtstart"]


def test_floating_unknown_tzid_cancelled_and_content_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, (
        "X-WR-TIMEZONE:Asia/Tokyo\r\n"
        "BEGIN:VEVENT\r\nUID:float\r\nDTSTART:20260110T090000\r\nDTEND:20260110T100000\r\nSUMMARY:Floating\r\n"
        "DESCRIPTION:Agenda\\, then lunch\r\nLOCATION:Room 1\r\n"
        + "".join(f"ATTENDEE;CN=P{i}:mailto:P{i}@Ext.example\r\n" for i in range(12))
        + "ORGANIZER;CN=Org:mailto:org@x.example\r\nCREATED:20251201T080000Z\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:weird\r\nDTSTART;TZID=Mars/Olympus:20260110T090000\r\nSUMMARY:Mars\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:gone\r\nDTSTART:20260111T090000Z\r\nSTATUS:CANCELLED\r\nSUMMARY:Off\r\n"
        "CREATED:20251201T080000Z\r\nEND:VEVENT\r\n"
    ))
    items, _, rejects, _ = read_and_normalize(path, "ics")
    assert not rejects
    rows = {r["external_id"]: r for r in items.iter_rows(named=True)}
    floating = rows["float"]
    assert floating["occurred_at"] == dt.datetime(2026, 1, 10, 0, tzinfo=UTC)  # 09:00 Tokyo
    assert meta(floating)["flags"] == ["floating_time"]
    assert floating["content"].split("\n")[:4] == [
        "Floating", "When: 2026-01-10T00:00:00+00:00 — 2026-01-10T01:00:00+00:00", "Agenda, then lunch",
        "Location: Room 1"]
    attendees_line = floating["content"].split("\n")[4]
    assert attendees_line.startswith("Attendees: P0 <p0@ext.example>") and attendees_line.count("@") == 10
    assert len(floating["participants"]) == 12 and floating["author_id"] == "org@x.example"
    assert floating["source_created_at"] == dt.datetime(2025, 12, 1, 8, tzinfo=UTC)
    assert meta(rows["weird"])["flags"] == ["unknown_tzid"]
    assert rows["weird"]["occurred_at"] == dt.datetime(2026, 1, 10, 0, tzinfo=UTC)  # best effort: calendar zone
    assert rows["gone"]["is_deleted"] is True and rows["gone"]["content"] == ""


def test_cancelled_instance_is_a_tombstone(tmp_path: Path) -> None:
    path = _write(tmp_path, (
        "BEGIN:VEVENT\r\nUID:s1\r\nDTSTART;TZID=Europe/Paris:20260105T100000\r\nDURATION:PT30M\r\n"
        "RRULE:FREQ=WEEKLY\r\nSUMMARY:Weekly\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:s1\r\nRECURRENCE-ID;TZID=Europe/Paris:20260112T100000\r\n"
        "DTSTART;TZID=Europe/Paris:20260112T100000\r\nDURATION:PT30M\r\nSTATUS:CANCELLED\r\nSUMMARY:Weekly\r\n"
        "END:VEVENT\r\n"
    ))
    items, _, _, _ = read_and_normalize(path, "ics", fetched_at=dt.datetime(2026, 1, 10, tzinfo=UTC))
    states = dict(zip(items["external_id"], items["is_deleted"], strict=True))
    assert states == {"s1/20260105T090000Z": False, "s1/20260112T090000Z": True, "s1/20260119T090000Z": False}


def test_unparseable_and_empty_calendars_are_rejects(corpus: Path, tmp_path: Path) -> None:
    for name, reason in [("icalendar__calendars_bom_calendar.ics", "calendar has no events"),
                         ("icaljs__blank_line_mid.ics", "calendar has no events")]:
        items, _, rejects, _ = read_and_normalize(_ics(corpus, name), "ics")
        assert items.is_empty() and [r.reason[: len(reason)] for r in rejects] == [reason]
    broken = read_and_normalize(_ics(corpus, "icalendar__calendars_broken_ical.ics"), "ics")[2]
    assert len(broken) == 1 and broken[0].reason.startswith("event has no usable DTSTART (Content line could not")
    assert b"too many semicolons" in broken[0].raw
    junk = tmp_path / "junk.ics"
    junk.write_bytes(b"\x00\x01 not a calendar at all")
    items, _, rejects, _ = read_and_normalize(junk, "ics")
    assert items.is_empty() and rejects[0].reason.startswith("unparseable iCalendar file")
    assert rejects[0].raw == junk.read_bytes()


def test_missing_vtimezone_and_events_without_uid(corpus: Path) -> None:
    path = _ics(corpus, "icalendar__calendars_issue_722_missing_timezones.ics")
    items, _, rejects, filtered = read_and_normalize(path, "ics", fetched_at=dt.datetime(2014, 8, 28, tzinfo=UTC))
    # event 1: Olson TZIDs without VTIMEZONE (an RDATE series: its 2014 instance is in the window);
    # event 2: only a RECURRENCE-ID, in 2019 (outside: filtered); event 3: no start at all -> reject
    assert items.height == 1 and len(rejects) == 1 and rejects[0].reason == "event has no usable DTSTART"
    assert filtered == {"calendar_outside_window": 1}
    first = items.filter(pl.col("title") == "an event with a custom tz name").row(0, named=True)
    assert first["occurred_at"] == dt.datetime(2014, 8, 29, 12, tzinfo=UTC)  # 08:00 New York
    assert first["ends_at"] == dt.datetime(2014, 8, 29, 15, tzinfo=UTC)  # 08:00 Los Angeles
    assert first["external_id"].startswith("sha256:")  # no UID: a stable hash of the event
    again = read_and_normalize(path, "ics", fetched_at=dt.datetime(2014, 8, 28, tzinfo=UTC))[0]
    assert sorted(again["external_id"]) == sorted(items["external_id"])
    moved = read_and_normalize(path, "ics", fetched_at=dt.datetime(2019, 3, 5, tzinfo=UTC))[0]
    assert moved["occurred_at"].to_list() == [dt.datetime(2019, 3, 8, 23, tzinfo=UTC)]  # its RECURRENCE-ID


def test_two_calendars_in_one_file_and_bare_vevent(corpus: Path) -> None:
    items, _, _, filtered = read_and_normalize(
        _ics(corpus, "icalendar__calendars_multiple_calendar_components.ics"), "ics",
        fetched_at=dt.datetime(2003, 12, 20, tzinfo=UTC))
    # three calendars in one file; "Boxing Day" is dated 2003-05-01 there, outside this window
    assert sorted(items["title"].to_list()) == ["Christmas Day", "Christmas again!"]
    assert filtered == {"calendar_outside_window": 1}
    bare, _, _, _ = read_and_normalize(
        _ics(corpus, "icalendar__events_issue_101_icalendar_chokes_on_umlauts_in_organizer.ics"), "ics",
        fetched_at=dt.datetime(2013, 4, 15, tzinfo=UTC))
    row = bare.row(0, named=True)
    assert row["author"] == "acme, ädmin" and "Location: im büro" in row["content"]
