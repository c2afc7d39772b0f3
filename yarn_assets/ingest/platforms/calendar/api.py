"""Google Calendar: events of each selected calendar into bronze ``gcal_api_event`` objects.

Full window (the original's): −7 d … +14 d, ``singleEvents``, ``orderBy=startTime``, at most 200
events. Incremental: the stored ``nextSyncToken`` only; a 410 means "full sync required" and
triggers the full window again. Cancelled events land as tombstones (``showDeleted``), so
silver drops them. A sync token does not slide its window forward, so once a day the full
window is re-read to pick up events that entered the +14 d horizon.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from yarn_assets.ingest.api_errors import CursorExpired
from yarn_assets.ingest.fetch import Prior, Resource, ResourceResult, dumps, parse_iso
from yarn_assets.ingest.objects import RawObject
from yarn_assets.ingest.platforms.google import GoogleApi


@dataclass(frozen=True)
class CalendarLimits:
    past: dt.timedelta = dt.timedelta(days=7)
    future: dt.timedelta = dt.timedelta(days=14)
    max_events: int = 200
    page_size: int = 250
    window_refresh: dt.timedelta = dt.timedelta(days=1)


def _rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CalendarFetcher:
    platform = "calendar"
    provider = "gcal_api"

    def __init__(self, api: GoogleApi, limits: CalendarLimits | None = None) -> None:
        self.api = api
        self.limits = limits or CalendarLimits()

    def landscape(self) -> list[Resource]:
        out: list[Resource] = []
        token: str | None = None
        for _ in range(20):
            data = self.api.calendar_list(page_token=token)
            for cal in data.get("items") or []:
                out.append(Resource(id=str(cal["id"]), name=str(cal.get("summaryOverride") or cal.get("summary")
                                                                  or cal["id"]),
                                    type="calendar",
                                    metadata={"primary": bool(cal.get("primary")), "time_zone": cal.get("timeZone"),
                                              "access_role": cal.get("accessRole")}))
            token = data.get("nextPageToken")
            if not token:
                break
        return out

    def prepare(self, selected: list[Resource], priors: dict[str, Prior], now: dt.datetime) -> None:
        return None

    def finish(self) -> dict[str, tuple[str | None, dict[str, Any]]]:
        return {}

    def _pages(self, calendar: Resource, params: dict[str, Any], result: ResourceResult) -> tuple[
            list[dict[str, Any]], str | None]:
        events: list[dict[str, Any]] = []
        token: str | None = None
        sync_token: str | None = None
        while True:
            remaining = self.limits.max_events - len(events)
            data = self.api.events(calendar.id, pageToken=token,
                                   maxResults=max(1, min(self.limits.page_size, remaining)), **params)
            events.extend(data.get("items") or [])
            token = data.get("nextPageToken")
            sync_token = data.get("nextSyncToken") or sync_token
            if not token:
                return events, sync_token
            if len(events) >= self.limits.max_events:
                result.capped = True
                result.notes.append(f"capped at {self.limits.max_events} events; no sync token this time")
                return events[: self.limits.max_events], None

    def fetch(self, resource: Resource, prior: Prior, now: dt.datetime) -> ResourceResult:
        result = ResourceResult(resource)
        state = dict(prior.state)
        window_at = parse_iso(state.get("window_at"))
        full = prior.cursor is None or window_at is None or now - window_at >= self.limits.window_refresh
        events: list[dict[str, Any]] = []
        token: str | None = None
        if not full:
            try:
                events, token = self._pages(resource, {"syncToken": prior.cursor, "singleEvents": True,
                                                       "showDeleted": True}, result)
                result.notes.append("incremental (sync token)")
            except CursorExpired:
                result.notes.append("sync token expired (410): full window resync")
                result.bump("cursor_resets")
                full = True
        if full:
            params = {"timeMin": _rfc3339(now - self.limits.past), "timeMax": _rfc3339(now + self.limits.future),
                      "singleEvents": True, "orderBy": "startTime", "showDeleted": True}
            events, token = self._pages(resource, params, result)
            state["window_at"] = now.isoformat()
            result.notes.append(f"full window {params['timeMin']} .. {params['timeMax']}")
        latest: dt.datetime | None = None
        for ev in events:
            if not ev.get("id"):
                continue
            cancelled = ev.get("status") == "cancelled"
            result.objects.append(RawObject(
                object_type="gcal_api_event", external_id=str(ev["id"]), raw=dumps(ev),
                resource_id=resource.id, resource_name=resource.name, is_tombstone=cancelled,
                context={"calendar_id": resource.id, "calendar_name": resource.name,
                         "calendar_time_zone": resource.metadata.get("time_zone")},
            ))
            result.bump("tombstones" if cancelled else "events")
            updated = parse_iso(ev.get("updated"))
            if updated and (latest is None or updated > latest):
                latest = updated
        result.bump("fetched", len(events))
        result.cursor = token  # None (capped) -> the next sync reads the full window again
        result.state = state
        result.source_latest_at = latest
        return result


def probe(api: GoogleApi) -> tuple[str, str | None]:
    data = api.calendar_list()
    return f"Google Calendar: {len(data.get('items') or [])} calendars", None
