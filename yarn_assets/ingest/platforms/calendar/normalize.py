"""iCalendar files -> event items, every time in UTC, recurrences expanded in the sync window.

Rules:

* the window is the spec's calendar window around the landing time, as for synced calendars:
  ``[fetched_at - 7 d, fetched_at + 14 d]``. Events (and series) with nothing in it stay in bronze
  but give no silver item; they are counted by reason in the batch's ``filtered`` counter
  (``calendar_outside_window``, ``calendar_series_outside_window``), so nothing vanishes unseen.
  Each instance of a recurring series inside it is one item (``external_id = UID/<instance
  start, UTC>``, the RECURRENCE-ID slot, so a moved instance stays the same item);
* expansion is bounded (``normalizers.recurrence``): at most ``ics_max_instances_per_series``
  instances per series (the rest counted on the rows: ``instances_dropped``), a rule that would
  walk too long before the window starts closer to it or is not expanded, and the file has a
  time budget; a series that could not be expanded stays ONE item with ``expansion_error``;
* times: TZID (with or without VTIMEZONE, Windows names included) -> UTC; floating times use the
  calendar's X-WR-TIMEZONE, else UTC, flagged ``floating_time``; all-day dates -> UTC midnight with
  ``all_day``; an unknown TZID is read as floating and flagged ``unknown_tzid``;
* ``STATUS:CANCELLED`` -> tombstone (the item is deleted from silver);
* content lines as the original: summary, "When: start — end", description, "Location: …",
  "Attendees: …" (first 10); attendees are the participants;
* ``source_created_at`` = CREATED when present (immutable, so the silver partition is stable);
* an unparseable file, or an event without a usable start, becomes a reject with the reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar

from resources.input_limits import DEFAULT_LIMITS, InputLimits
from yarn_assets.ingest.mime import decode_bytes
from yarn_assets.ingest.objects import BronzeObject, ContentItem, Reject
from yarn_assets.ingest.recurrence import expand_series

WINDOW_BEFORE = dt.timedelta(days=7)
WINDOW_AFTER = dt.timedelta(days=14)
MAX_ATTENDEES_IN_CONTENT = 10


def _zone(name: object) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(str(name).strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def to_utc(value: Any, default_tz: dt.tzinfo | None, flags: set[str], tzid: str | None = None
           ) -> tuple[dt.datetime, bool]:
    """(UTC datetime, all_day) for an iCalendar date or date-time, flagging every guess made."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            zone = _zone(tzid)
            if zone is None:
                flags.add("unknown_tzid" if tzid else "floating_time")
                zone = default_tz or dt.UTC
            value = value.replace(tzinfo=zone)
        try:
            return value.astimezone(dt.UTC), False
        except (ValueError, OverflowError, TypeError, AttributeError):  # a VTIMEZONE icalendar cannot apply
            flags.add("timezone_error")
            return value.replace(tzinfo=dt.UTC), False
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), dt.UTC), True
    raise TypeError(f"not a date or date-time: {value!r}")


def _first(component: Any, name: str, flags: set[str]) -> Any:
    value = component.get(name)
    if isinstance(value, list):
        flags.add(f"duplicate_{name.lower()}")
        value = value[0] if value else None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()


def _address(value: Any) -> tuple[str, str]:
    """vCalAddress -> (email lower-cased, common name)."""
    email = str(value).strip()
    if email.lower().startswith("mailto:"):
        email = email[7:]
    name = str(getattr(value, "params", {}).get("CN", "") or "").strip()
    return email.strip().lower(), name


def _attendees(event: Any) -> list[tuple[str, str]]:
    value = event.get("ATTENDEE")
    values = value if isinstance(value, list) else [value] if value is not None else []
    out, seen = [], set()
    for v in values:
        email, name = _address(v)
        if email and email not in seen:
            seen.add(email)
            out.append((email, name))
    return out


def _stamp(value: dt.datetime, all_day: bool) -> str:
    return value.date().isoformat() if all_day else value.isoformat()


def _slot(value: dt.datetime, all_day: bool) -> str:
    return value.strftime("%Y%m%d") if all_day else value.strftime("%Y%m%dT%H%M%SZ")


def _synthetic_uid(event: Any) -> str:
    return "sha256:" + hashlib.sha256(event.to_ical()).hexdigest()[:32]


class _Calendar:
    """What every event of one file shares."""

    def __init__(self, obj: BronzeObject, default_tz: dt.tzinfo | None, calname: str) -> None:
        self.obj = obj
        self.default_tz = default_tz
        self.calname = calname
        self.window = (obj.fetched_at - WINDOW_BEFORE, obj.fetched_at + WINDOW_AFTER)


def event_item(event: Any, cal: _Calendar, *, uid: str, external_id: str, extra: dict[str, Any] | None = None,
               flags: set[str] | None = None) -> ContentItem | Reject:
    """One VEVENT (or expanded instance) -> item; any failure rejects this event only."""
    try:
        return _event_item(event, cal, uid=uid, external_id=external_id, extra=extra, flags=set(flags or ()))
    except Exception as exc:
        return Reject(reason=f"event could not be normalized: {type(exc).__name__}: {exc}", raw=event.to_ical(),
                      object_type=cal.obj.object_type, external_id=external_id,
                      location=f"{cal.obj.context.get('file', '')}#UID={uid}")


def _event_item(event: Any, cal: _Calendar, *, uid: str, external_id: str, extra: dict[str, Any] | None,
                flags: set[str]) -> ContentItem | Reject:
    dtstart = _first(event, "DTSTART", flags)
    if dtstart is None and event.get("RECURRENCE-ID") is not None:
        dtstart = event.get("RECURRENCE-ID")
        flags.add("start_from_recurrence_id")
    if dtstart is None:
        errors = "; ".join(str(e[1]) for e in getattr(event, "errors", []) if len(e) > 1)
        return Reject(reason="event has no usable DTSTART" + (f" ({errors})" if errors else ""),
                      raw=event.to_ical(), object_type=cal.obj.object_type, external_id=external_id,
                      location=f"{cal.obj.context.get('file', '')}#UID={uid}")
    tzid = dtstart.params.get("TZID") if hasattr(dtstart, "params") else None
    start, all_day = to_utc(dtstart.dt, cal.default_tz, flags, tzid)
    dtend = _first(event, "DTEND", flags)
    if dtend is not None:
        end, _ = to_utc(dtend.dt, cal.default_tz, flags, dtend.params.get("TZID"))
    elif event.get("DURATION") is not None:
        end = start + event.decoded("DURATION")
    else:
        end = start + (dt.timedelta(days=1) if all_day else dt.timedelta(0))
    if end < start:
        flags.add("end_before_start")
        end = start
    created = event.get("CREATED")
    created_at = to_utc(created.dt, cal.default_tz, set(), None)[0] if created is not None else None
    modified = event.get("LAST-MODIFIED")
    updated_at = to_utc(modified.dt, cal.default_tz, set(), None)[0] if modified is not None else None
    status = _text(event.get("STATUS")).upper() or None
    summary = _text(event.get("SUMMARY"))
    description = _text(event.get("DESCRIPTION"))
    location = _text(event.get("LOCATION"))
    attendees = _attendees(event)
    organizer = event.get("ORGANIZER")
    organizer_email, organizer_name = _address(organizer) if organizer is not None else ("", "")
    lines = [summary, f"When: {_stamp(start, all_day)} — {_stamp(end, all_day)}"]
    if description:
        lines.append(description)
    if location:
        lines.append(f"Location: {location}")
    if attendees:
        shown = [f"{name} <{email}>" if name else email for email, name in attendees[:MAX_ATTENDEES_IN_CONTENT]]
        lines.append("Attendees: " + ", ".join(shown))
    rrule = event.get("RRULE")
    cancelled = status == "CANCELLED"
    return ContentItem(
        resource_id=cal.obj.resource_id,
        resource_name=cal.obj.resource_name or cal.calname,
        external_id=external_id,
        content_type="event",
        content="" if cancelled else "\n".join(line for line in lines if line),
        title=summary or None,
        author=organizer_name or organizer_email or None,
        author_id=organizer_email or None,
        participants=[email for email, _ in attendees],
        thread_id=uid,
        occurred_at=start,
        ends_at=end,
        source_created_at=created_at,
        source_updated_at=updated_at,
        is_deleted=cancelled,
        metadata={
            "event_id": uid,
            "calendar": cal.calname or cal.obj.resource_name,
            "start": _stamp(start, all_day),
            "end": _stamp(end, all_day),
            "all_day": all_day,
            "timezone": tzid,
            "status": status,
            "location": location or None,
            "organizer": organizer_email or None,
            "attendees": [email for email, _ in attendees],
            "rrule": rrule.to_ical().decode() if isinstance(rrule, icalendar.vRecur) else None,
            "flags": sorted(flags),
            **(extra or {}),
        },
    )


def _calendars(obj: BronzeObject) -> list[Any]:
    text = decode_bytes(obj.raw, "utf-8").lstrip("\ufeff")
    components = icalendar.Calendar.from_ical(text, multiple=True)
    calendars = []
    for component in components:
        if component.name == "VCALENDAR":
            calendars.append(component)
        elif component.name == "VEVENT":  # a bare VEVENT file: wrap it
            wrapper = icalendar.Calendar()
            wrapper.add_component(component)
            calendars.append(wrapper)
    return calendars


def _in_window(item: ContentItem, window: tuple[dt.datetime, dt.datetime]) -> bool:
    start = item.occurred_at
    if start is None:
        return True
    return start <= window[1] and (item.ends_at or start) >= window[0]


def normalize_ics(obj: BronzeObject, ctx: object) -> Iterator[ContentItem | Reject]:
    """Events of one calendar file inside its window; the rest stays in bronze and is counted.

    ``ctx`` is the batch context: its ``limits`` bound recurrence expansion, its ``filtered``
    counter gets events left out on purpose (``calendar_outside_window``,
    ``calendar_series_outside_window``, ``calendar_instances_over_cap``) and its ``stats`` counter
    the expansion facts (``ics_series_capped``, ``ics_instances_dropped``,
    ``ics_series_not_expanded``, ``ics_series_start_moved``).
    """
    limits: InputLimits = getattr(ctx, "limits", None) or DEFAULT_LIMITS
    filtered: Counter[str] = getattr(ctx, "filtered", Counter())
    stats: Counter[str] = getattr(ctx, "stats", Counter())
    budget_until = time.monotonic() + limits.ics_max_expansion_seconds
    window = (obj.fetched_at - WINDOW_BEFORE, obj.fetched_at + WINDOW_AFTER)
    for out in _normalize_ics(obj, limits, budget_until, filtered, stats):
        if isinstance(out, ContentItem) and not out.is_deleted and not _in_window(out, window) \
                and "expansion_error" not in out.metadata:
            filtered["calendar_outside_window"] += 1
            continue
        yield out


def _normalize_ics(obj: BronzeObject, limits: InputLimits, budget_until: float, filtered: Counter[str],
                   stats: Counter[str]) -> Iterator[ContentItem | Reject]:
    try:
        calendars = _calendars(obj)
    except Exception as exc:  # icalendar raises ValueError and friends on broken files
        yield Reject(reason=f"unparseable iCalendar file: {type(exc).__name__}: {exc}", raw=obj.raw,
                     object_type=obj.object_type, external_id=obj.external_id)
        return
    if not any(c.walk("VEVENT") for c in calendars):
        yield Reject(reason="calendar has no events (no VEVENT component)", raw=obj.raw,
                     object_type=obj.object_type, external_id=obj.external_id)
        return
    for calendar in calendars:
        tz_name = _text(calendar.get("X-WR-TIMEZONE"))
        cal = _Calendar(obj, _zone(tz_name), _text(calendar.get("X-WR-CALNAME")))
        groups: dict[str, list[Any]] = {}
        for event in calendar.walk("VEVENT"):
            uid = _text(event.get("UID"))
            if not uid:
                uid = _synthetic_uid(event)
                event.add("UID", uid)
            groups.setdefault(uid, []).append(event)
        for uid, events in groups.items():
            yield from _series_items(calendar, uid, events, cal, limits, budget_until, filtered, stats)


def _series_items(calendar: Any, uid: str, events: list[Any], cal: _Calendar, limits: InputLimits,
                  budget_until: float, filtered: Counter[str], stats: Counter[str]) -> Iterator[ContentItem | Reject]:
    masters = [e for e in events if e.get("RECURRENCE-ID") is None]
    overrides = [e for e in events if e.get("RECURRENCE-ID") is not None]
    master = masters[0] if masters else None
    for duplicate in masters[1:]:  # same UID twice without RECURRENCE-ID: keep the first, reject the copy
        yield Reject(reason="duplicate VEVENT for the same UID (no RECURRENCE-ID); the first is kept",
                     raw=duplicate.to_ical(), object_type=cal.obj.object_type, external_id=uid,
                     location=f"{cal.obj.context.get('file', '')}#UID={uid}")
    recurring = master is not None and (master.get("RRULE") is not None or master.get("RDATE") is not None)
    if master is not None and not recurring:
        yield event_item(master, cal, uid=uid, external_id=uid)
    if not recurring:
        for override in overrides:  # instances whose series is not in this file
            item = event_item(override, cal, uid=uid, external_id=uid)
            if isinstance(item, ContentItem) and item.occurred_at is not None:
                rid, all_day = to_utc(override["RECURRENCE-ID"].dt, cal.default_tz, set(),
                                      override["RECURRENCE-ID"].params.get("TZID"))
                item.external_id = f"{uid}/{_slot(rid, all_day)}"
                item.metadata["recurrence_id"] = _stamp(rid, all_day)
            yield item
        return
    assert master is not None
    if _text(master.get("STATUS")).upper() == "CANCELLED":
        yield event_item(master, cal, uid=uid, external_id=uid)  # tombstone of the whole series
        return
    rule = master["RRULE"].to_ical().decode() if isinstance(master.get("RRULE"), icalendar.vRecur) else None
    expansion = expand_series(calendar, master, overrides, cal.window, limits, budget_until)
    bounded = expansion.metadata(limits.ics_max_instances_per_series)
    if expansion.dropped:
        stats["ics_series_capped"] += 1
        stats["ics_instances_dropped"] += expansion.dropped
        filtered["calendar_instances_over_cap"] += expansion.dropped
    if expansion.start_moved:
        stats["ics_series_start_moved"] += 1
    for instance in expansion.instances:
        flags: set[str] = set()
        rid_prop = instance.get("RECURRENCE-ID") or instance.get("DTSTART")
        rid, all_day = to_utc(rid_prop.dt, cal.default_tz, flags, rid_prop.params.get("TZID"))
        yield event_item(instance, cal, uid=uid, external_id=f"{uid}/{_slot(rid, all_day)}", flags=flags,
                         extra={"recurring": True, "recurrence_id": _stamp(rid, all_day), "rrule": rule, **bounded})
    if expansion.error:  # kept as one item, whatever its dates, so the operator sees why
        stats["ics_series_not_expanded"] += 1
        yield event_item(master, cal, uid=uid, external_id=uid, extra={
            "recurring": True, "instances_in_window": None, "expansion_error": expansion.error,
            "window": [cal.window[0].isoformat(), cal.window[1].isoformat()]})
    elif not expansion.instances:
        filtered["calendar_series_outside_window"] += 1


NORMALIZERS = {"ics_calendar": normalize_ics}
