"""Google Calendar API v3 event resources -> event items (cancelled -> deleted).

Content lines follow the original: summary, "When: start — end", description, "Location:",
"Attendees:" (first 10). Times: ``dateTime`` (RFC 3339; a missing offset takes the event's or
the calendar's time zone) or all-day ``date`` (midnight in that zone).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bs4 import BeautifulSoup

from yarn_assets.ingest.objects import BronzeObject, ContentItem, Reject, parse_utc

MAX_ATTENDEES = 10


def _zone(name: Any) -> dt.tzinfo:
    try:
        return ZoneInfo(str(name)) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def event_time(value: dict[str, Any] | None, fallback_tz: Any) -> tuple[dt.datetime | None, bool]:
    """(UTC datetime, all_day) of an event ``start``/``end`` object."""
    if not value:
        return None, False
    tz = _zone(value.get("timeZone") or fallback_tz)
    if value.get("dateTime"):
        parsed = dt.datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return parsed.astimezone(dt.UTC), False
    if value.get("date"):
        day = dt.date.fromisoformat(str(value["date"]))
        return dt.datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(dt.UTC), True
    return None, False


def _plain(description: str) -> str:
    if "<" in description and ">" in description:
        return BeautifulSoup(description, "html.parser").get_text("\n").strip()
    return description.strip()


def _who(person: dict[str, Any] | None) -> str | None:
    if not person:
        return None
    return person.get("displayName") or person.get("email")


def normalize_event(obj: BronzeObject, ctx: object) -> Iterator[ContentItem | Reject]:
    event = json.loads(obj.raw)
    if not isinstance(event, dict) or not event.get("id"):
        yield Reject(reason="calendar event without id", raw=obj.raw, object_type=obj.object_type,
                     external_id=obj.external_id)
        return
    tz = obj.context.get("calendar_time_zone")
    start, all_day = event_time(event.get("start"), tz)
    end, _ = event_time(event.get("end"), tz)
    created = parse_utc(event.get("created"))
    if obj.is_tombstone or event.get("status") == "cancelled":
        yield ContentItem(resource_id=obj.resource_id, resource_name=obj.resource_name, external_id=str(event["id"]),
                          content_type="event", content="", is_deleted=True, occurred_at=start,
                          source_created_at=created or start)
        return
    summary = str(event.get("summary") or "(no title)")
    attendees = [a for a in event.get("attendees") or [] if isinstance(a, dict)]
    names = [n for n in (_who(a) for a in attendees[:MAX_ATTENDEES]) if n]
    lines = [summary]
    if start:
        when = f"When: {start.isoformat()} — {end.isoformat() if end else '?'}"
        lines.append(when + (" (all day)" if all_day else ""))
    if event.get("description"):
        lines.append(_plain(str(event["description"])))
    if event.get("location"):
        lines.append(f"Location: {event['location']}")
    if names:
        lines.append("Attendees: " + ", ".join(names))
    organizer = event.get("organizer") or {}
    yield ContentItem(
        resource_id=obj.resource_id,
        resource_name=obj.resource_name,
        external_id=str(event["id"]),
        content_type="event",
        content="\n".join(lines),
        title=summary,
        author=_who(organizer),
        author_id=organizer.get("email"),
        participants=[str(a["email"]).lower() for a in attendees if a.get("email")],
        thread_id=event.get("recurringEventId"),
        occurred_at=start,
        ends_at=end,
        source_created_at=created or start,
        source_updated_at=parse_utc(event.get("updated")),
        metadata={
            "event_id": event["id"], "start": event.get("start"), "end": event.get("end"),
            "location": event.get("location"), "attendees": names, "organizer": _who(organizer),
            "html_link": event.get("htmlLink"), "status": event.get("status"), "all_day": all_day,
            "recurring_event_id": event.get("recurringEventId"), "calendar": obj.context.get("calendar_name"),
        },
    )


NORMALIZERS = {"gcal_api_event": normalize_event}
