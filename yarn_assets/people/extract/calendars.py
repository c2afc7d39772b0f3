"""Calendar (.ics, Calendar API): every instance of a series with attendees -> events and interactions."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import polars as pl
import recurring_ical_events

from yarn_assets.ingest.mime import decode_bytes
from yarn_assets.ingest.normalizers.calendar import to_utc
from yarn_assets.ingest.normalizers.gcal_api import event_time
from yarn_assets.people import addresses as addr
from yarn_assets.people.extract.batch import MAX_PARTICIPANTS_PER_ITEM, _Batch, _day


def _slot(value: dt.datetime, all_day: bool) -> str:
    return value.strftime("%Y%m%d") if all_day else value.strftime("%Y%m%dT%H%M%SZ")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).strip()


def _tzid(prop: Any) -> str | None:
    params = getattr(prop, "params", None)
    return params.get("TZID") if params is not None else None


def _zone(name: str) -> dt.tzinfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _vaddress(value: Any) -> tuple[str, str, dict[str, str]]:
    raw = str(value).strip()
    params = {str(k).upper(): str(v) for k, v in getattr(value, "params", {}).items()}
    return raw[7:] if raw.lower().startswith("mailto:") else raw, params.get("CN", "").strip(), params


def _ics_attendees(event: Any) -> list[dict[str, Any]]:
    value = event.get("ATTENDEE")
    values = value if isinstance(value, list) else [value] if value is not None else []
    out, seen = [], set()
    for v in values:
        raw, cn, params = _vaddress(v)
        email = addr.normalize_email(raw)
        if email is None or email in seen or params.get("CUTYPE", "").upper() in ("ROOM", "RESOURCE"):
            continue
        seen.add(email)
        out.append({"email": email, "name": addr.clean_name(cn, email),
                    "response_status": (params.get("PARTSTAT") or "NEEDS-ACTION").lower(),
                    "role": (params.get("ROLE") or "REQ-PARTICIPANT").lower(), "raw": raw})
    return out


def _calendars(batch: _Batch, frame: pl.DataFrame) -> None:
    for row in frame.iter_rows(named=True):
        if row["object_type"] == "ics_calendar":
            _ics(batch, row)
        elif row["object_type"] == "gcal_api_event":
            _gcal(batch, row)


def _ics(batch: _Batch, obj: dict[str, Any]) -> None:
    try:
        text = decode_bytes(obj["raw"] or b"", "utf-8").lstrip("\ufeff")
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except Exception:  # silver rejects the file with the reason; nothing to learn here
        batch.out.stats["unreadable_calendars"] += 1
        return
    fetched = batch.fetched_at
    window = (fetched - dt.timedelta(days=batch.limits.history_days),
              fetched + dt.timedelta(days=batch.limits.future_days))
    for cal in calendars:
        if cal.name == "VEVENT":
            wrapper = icalendar.Calendar()
            wrapper.add_component(cal)
            cal = wrapper
        default_tz = _zone(_text(cal.get("X-WR-TIMEZONE")))
        calname = _text(cal.get("X-WR-CALNAME")) or obj["resource_name"] or ""
        groups: dict[str, list[Any]] = {}
        for event in cal.walk("VEVENT"):
            uid = _text(event.get("UID"))
            if uid:
                groups.setdefault(uid, []).append(event)
        for uid, events in groups.items():
            try:
                for instance, rid, flags in _instances(cal, events, window, batch.limits.max_instances, default_tz,
                                                       batch.out.stats):
                    _event_instance(batch, obj, calname, uid, instance, rid, flags, default_tz)
            except Exception:  # one broken series never costs the others
                batch.out.stats["broken_series"] += 1


def _instances(cal: Any, events: list[Any], window: tuple[dt.datetime, dt.datetime], cap: int,
               default_tz: dt.tzinfo | None, stats: Counter[str]) -> Iterator[tuple[Any, Any, set[str]]]:
    """(VEVENT of one instance, its RECURRENCE-ID or None for a single event, flags)."""
    master = next((e for e in events if e.get("RECURRENCE-ID") is None), None)
    overrides = [e for e in events if e.get("RECURRENCE-ID") is not None]
    recurring = master is not None and (master.get("RRULE") is not None or master.get("RDATE") is not None)
    if not recurring:
        if master is not None:
            yield master, None, set()
        for o in overrides:
            yield o, o.get("RECURRENCE-ID"), set()
        return
    assert master is not None
    if _text(master.get("STATUS")).upper() == "CANCELLED":
        yield master, None, {"series_cancelled"}
        return
    series = icalendar.Calendar()
    for tz in cal.walk("VTIMEZONE"):
        series.add_component(tz)
    for e in (master, *overrides):
        series.add_component(e)
    instances = list(recurring_ical_events.of(series, skip_bad_series=True).between(*window))
    if len(instances) > cap:
        stats["instances_over_cap"] += len(instances) - cap
        instances = instances[-cap:]  # the most recent history and what is coming
    for inst in instances:
        yield inst, inst.get("RECURRENCE-ID") or inst.get("DTSTART"), set()
    exdates = master.get("EXDATE")
    for ex in exdates if isinstance(exdates, list) else [exdates] if exdates is not None else []:
        for value in getattr(ex, "dts", []):
            start, _ = to_utc(value.dt, default_tz, set(), _tzid(value))
            if window[0] <= start <= window[1]:
                cancelled = master.copy()
                cancelled["DTSTART"] = value
                cancelled["STATUS"] = "CANCELLED"
                yield cancelled, value, {"exdate"}


def _event_instance(batch: _Batch, obj: dict[str, Any], calname: str, uid: str, event: Any, rid: Any,
                    flags: set[str], default_tz: dt.tzinfo | None) -> None:
    dtstart = event.get("DTSTART")
    if dtstart is None:
        return
    start, all_day = to_utc(dtstart.dt, default_tz, set(), dtstart.params.get("TZID"))
    dtend = event.get("DTEND")
    if dtend is not None:
        end, _ = to_utc(dtend.dt, default_tz, set(), dtend.params.get("TZID"))
    elif event.get("DURATION") is not None:
        end = start + event.decoded("DURATION")
    else:
        end = start + (dt.timedelta(days=1) if all_day else dt.timedelta(0))
    if rid is not None:
        rid_utc, rid_all_day = to_utc(rid.dt, default_tz, set(), _tzid(rid))
        instance_id, recurrence_id = f"{uid}/{_slot(rid_utc, rid_all_day)}", rid_utc.isoformat()
    else:
        instance_id, recurrence_id = uid, None
    created = event.get("CREATED")
    created_at = to_utc(created.dt, default_tz, set(), None)[0] if created is not None else None
    org_raw, org_cn, _ = _vaddress(event.get("ORGANIZER")) if event.get("ORGANIZER") is not None else ("", "", {})
    organizer = addr.normalize_email(org_raw)
    attendees = _ics_attendees(event)
    status = _text(event.get("STATUS")).upper() or "CONFIRMED"
    _store_event(batch, obj, source="ics", calendar_name=calname, uid=uid, instance_id=instance_id,
                 created_day=_day(created_at), recurrence_id=recurrence_id, start=start, end=end, all_day=all_day,
                 title=_text(event.get("SUMMARY")), location=_text(event.get("LOCATION")), organizer=organizer,
                 organizer_name=addr.clean_name(org_cn, organizer), attendees=attendees, status=status,
                 cancelled=status == "CANCELLED", recurring=rid is not None or bool(flags - {"exdate"}))


def _gcal(batch: _Batch, obj: dict[str, Any]) -> None:
    try:
        event = json.loads(obj["raw"] or b"{}")
    except ValueError:
        return
    if not isinstance(event, dict) or not event.get("id"):
        return
    context = json.loads(obj["context"] or "{}")
    tz = context.get("calendar_time_zone")
    start, all_day = event_time(event.get("start"), tz)
    end, _ = event_time(event.get("end"), tz)
    seq = int(obj["seq"])
    attendees = []
    for a in event.get("attendees") or []:
        if not isinstance(a, dict) or a.get("resource"):
            continue
        email = addr.normalize_email(a.get("email"))
        if email is None:
            continue
        if a.get("self"):
            batch.self_evidence(f"email:{email}", "self_calendar_attendee", "Calendar API marks this attendee self",
                                seq)
        attendees.append({"email": email, "name": addr.clean_name(a.get("displayName"), email),
                          "response_status": str(a.get("responseStatus") or "needsAction").lower(),
                          "role": "opt-participant" if a.get("optional") else "req-participant",
                          "raw": str(a.get("email"))})
    org = event.get("organizer") or {}
    organizer = addr.normalize_email(org.get("email"))
    if organizer and org.get("self"):
        batch.self_evidence(f"email:{organizer}", "self_calendar_organizer", "Calendar API marks the organizer self",
                            seq)
    created = event.get("created")
    try:
        created_at = dt.datetime.fromisoformat(str(created).replace("Z", "+00:00")) if created else start
    except ValueError:
        created_at = start
    cancelled = obj["is_tombstone"] or event.get("status") == "cancelled"
    if start is None:
        return
    _store_event(batch, obj, source="gcal_api", calendar_name=context.get("calendar_name") or obj["resource_name"],
                 uid=str(event.get("recurringEventId") or event["id"]), instance_id=str(event["id"]),
                 created_day=_day(created_at), recurrence_id=str((event.get("originalStartTime") or {}).get("dateTime")
                                                                 or "") or None,
                 start=start, end=end or start, all_day=all_day, title=str(event.get("summary") or ""),
                 location=str(event.get("location") or ""), organizer=organizer,
                 organizer_name=addr.clean_name(org.get("displayName"), organizer), attendees=attendees,
                 status=str(event.get("status") or "confirmed").upper(), cancelled=bool(cancelled),
                 recurring=bool(event.get("recurringEventId")))


def _store_event(batch: _Batch, obj: dict[str, Any], *, source: str, calendar_name: str, uid: str, instance_id: str,
                 created_day: str, recurrence_id: str | None, start: dt.datetime, end: dt.datetime, all_day: bool,
                 title: str, location: str, organizer: str | None, organizer_name: str | None,
                 attendees: list[dict[str, Any]], status: str, cancelled: bool, recurring: bool) -> None:
    seq = int(obj["seq"])
    resource_id = obj["resource_id"] or ""
    own = batch.own
    self_response = next((a["response_status"] for a in attendees if f"email:{a['email']}" in own), None)
    batch.out.events.append({
        "user_id": batch.user_id, "ingest_date": batch.ingest_date, "source": source, "calendar_id": resource_id,
        "calendar_name": calendar_name, "event_uid": uid, "instance_id": instance_id,
        "item_key": None, "created_day": created_day, "recurrence_id": recurrence_id,
        "starts_at": start, "ends_at": end, "all_day": all_day, "title": title or None, "location": location or None,
        "organizer": organizer, "organizer_name": organizer_name,
        "attendees": [{k: a[k] for k in ("email", "name", "response_status", "role")} for a in attendees],
        "self_response": self_response, "status": status, "is_cancelled": cancelled, "is_recurring": recurring,
        "fetched_at": batch.fetched_at, "batch_id": batch.batch_id, "seq": seq,
    })
    batch.out.stats["event_instances"] += 1
    sender = f"email:{organizer}" if organizer else None
    item = batch.item(channel="meeting", resource_id=resource_id, resource_name=calendar_name,
                      external_id=instance_id, created_day=created_day, thread_id=uid, occurred_at=start,
                      subject=title, sender=sender, seq=seq)
    if cancelled or self_response == "declined" or (all_day and not attendees):
        batch.tombstone(item)  # no meeting happened (or none with anyone): hide older versions
        batch.out.stats["cancelled_instances" if cancelled else "not_attended"] += 1
        return
    organised = sender is not None and sender in own
    if sender and not organised:
        batch.row(item, participant=sender, address=organizer or "", name=organizer_name, name_source="calendar_cn",
                  role="organizer", direction="attended")
    for a in attendees[:MAX_PARTICIPANTS_PER_ITEM]:
        key = f"email:{a['email']}"
        if key == sender or key in own or addr.is_not_person_domain(a["email"]):
            continue
        batch.row(item, participant=key, address=a["raw"], name=a["name"], name_source="calendar_cn",
                  role="attendee", direction="organised" if organised else "attended", response=a["response_status"])


