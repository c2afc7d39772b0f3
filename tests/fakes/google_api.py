"""A fake Google OAuth token endpoint + Gmail v1 + Calendar v3 on loopback.

Gmail messages carry real RFC 822 bytes from the corpus (``mbox_eml``) as ``format=raw``;
calendar events are the corpus's event resources re-dated into the sync window. History ids
and sync tokens behave like Google's: an expired history id answers 404, an expired sync
token 410 ("full sync required").
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import itertools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from tests.fakes import corpus
from tests.fakes.loopback import LoopbackServer, Request, Response

CLIENT_ID = "client-123.apps.googleusercontent.com"
CLIENT_SECRET = "gocspx-client-SECRET-987"
REFRESH_TOKEN = "1//refresh-token-SECRET-abcdef"

SYSTEM_LABELS = ["INBOX", "SENT", "STARRED", "IMPORTANT", "SPAM", "TRASH", "DRAFT", "UNREAD", "CHAT",
                 "CATEGORY_SOCIAL", "CATEGORY_PROMOTIONS"]


def _error(status: int, message: str, reason: str) -> Response:
    return Response.json({"error": {"code": status, "message": message, "errors": [{"reason": reason,
                                                                                   "message": message}]}}, status)


@dataclass
class Mail:
    id: str
    raw: bytes
    labels: list[str]
    internal_ms: int
    history_id: int
    thread_id: str


@dataclass
class Event:
    calendar: str
    body: dict[str, Any]
    seq: int


class FakeGoogle(LoopbackServer):
    def __init__(self) -> None:
        super().__init__("google")
        self.mails: dict[str, Mail] = {}
        self.history: list[tuple[int, str, str]] = []  # (history id, message id, label)
        self.history_id = 1000
        self.min_history_id = 0  # history ids below this answer 404
        self.refresh_tokens = {REFRESH_TOKEN: "ok"}
        self.access_tokens: set[str] = set()
        self.user_labels = {"Label_1": "Projects", "Label_2": "Receipts"}
        self.calendars: dict[str, dict[str, Any]] = {
            "primary": {"id": "primary", "summary": "Main", "primary": True, "timeZone": "Europe/Berlin",
                        "accessRole": "owner"},
        }
        self.events: dict[str, Event] = {}
        self.event_seq = 0
        self.expired_sync_tokens: set[str] = set()
        self.max_page = 500
        self._mail_files = corpus.mail_files()
        self._mail_cycle = itertools.cycle(range(len(self._mail_files)))
        self._event_templates = list(corpus.gcal_events().values())
        self._event_cycle = itertools.cycle(range(len(self._event_templates)))
        self._n = 0
        self.route("POST", r"/token", self._token)
        self.route("GET", r"/gmail/v1/users/me/profile", self._auth(self._profile))
        self.route("GET", r"/gmail/v1/users/me/labels", self._auth(self._labels))
        self.route("GET", r"/gmail/v1/users/me/messages", self._auth(self._list))
        self.route("GET", r"/gmail/v1/users/me/messages/(?P<id>[^/]+)", self._auth(self._get))
        self.route("GET", r"/gmail/v1/users/me/history", self._auth(self._history))
        self.route("GET", r"/calendar/v3/users/me/calendarList", self._auth(self._calendar_list))
        self.route("GET", r"/calendar/v3/calendars/(?P<cal>[^/]+)/events", self._auth(self._events))

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    # ------------------------------------------------------------------ auth
    def _token(self, req: Request, _m: Any) -> Response:
        form = {k: v[0] for k, v in req.form().items()}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return Response.json({"error": "invalid_client", "error_description": "Unauthorized"}, 401)
        if self.refresh_tokens.get(form.get("refresh_token", "")) != "ok":
            return Response.json({"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
                                 400)
        self._n += 1
        token = f"ya29.fake-access-{self._n}-SECRET"
        self.access_tokens.add(token)
        return Response.json({"access_token": token, "expires_in": 3599, "token_type": "Bearer",
                              "scope": "https://www.googleapis.com/auth/gmail.readonly"})

    def _auth(self, fn: Any) -> Any:
        def handler(req: Request, m: Any) -> Response:
            if req.bearer not in self.access_tokens:
                return _error(401, "Request had invalid authentication credentials.", "authError")
            return fn(req, m)

        return handler

    def _page(self, items: list[Any], req: Request) -> tuple[list[Any], str | None]:
        limit = min(int(req.param("maxResults") or 100), self.max_page)
        start = int((req.param("pageToken") or "offset:0").split(":")[1])
        nxt = f"offset:{start + limit}" if start + limit < len(items) else None
        return items[start:start + limit], nxt

    # ------------------------------------------------------------------ Gmail state
    def add_mail(self, labels: list[str], when: dt.datetime, raw: bytes | None = None) -> Mail:
        self._n += 1
        if raw is None:
            path = self._mail_files[next(self._mail_cycle)]
            raw = path.read_bytes()
            if self._n > len(self._mail_files):  # copies need their own Message-ID
                raw = re.sub(rb"(?im)^message-id:.*\r?\n", b"", raw, count=1)
                raw = f"Message-ID: <gen-{self._n}@fake.test>\r\n".encode() + raw
        self.history_id += 1
        mail = Mail(id=f"m{self._n:05d}", raw=raw, labels=list(labels), internal_ms=int(when.timestamp() * 1000),
                    history_id=self.history_id, thread_id=f"t{self._n:05d}")
        self.mails[mail.id] = mail
        for label in labels:
            self.history.append((self.history_id, mail.id, label))
        return mail

    def _profile(self, req: Request, _m: Any) -> Response:
        profile = corpus.load("gmail_api/homeassistant__google_mail_get_profile.json")
        profile.update({"historyId": str(self.history_id), "messagesTotal": len(self.mails)})
        return Response.json(profile)

    def _labels(self, req: Request, _m: Any) -> Response:
        labels = [{"id": x, "name": x, "type": "system"} for x in SYSTEM_LABELS]
        labels += [{"id": k, "name": v, "type": "user"} for k, v in self.user_labels.items()]
        return Response.json({"labels": labels})

    def _list(self, req: Request, _m: Any) -> Response:
        labels = req.params("labelIds")
        q = req.param("q") or ""
        after = re.search(r"after:(\d{4})/(\d{2})/(\d{2})", q)
        since = dt.datetime(int(after[1]), int(after[2]), int(after[3]), tzinfo=dt.UTC) if after else None
        hits = [m for m in self.mails.values() if all(lab in m.labels for lab in labels)
                and (since is None or m.internal_ms >= since.timestamp() * 1000)]
        hits.sort(key=lambda m: m.internal_ms, reverse=True)
        page, nxt = self._page([{"id": m.id, "threadId": m.thread_id} for m in hits], req)
        body: dict[str, Any] = {"messages": page, "resultSizeEstimate": len(hits)}
        if nxt:
            body["nextPageToken"] = nxt
        return Response.json(body)

    def _get(self, req: Request, m: Any) -> Response:
        mail = self.mails.get(m["id"])
        if mail is None:
            return _error(404, "Requested entity was not found.", "notFound")
        assert req.param("format") == "raw", "the sync must fetch format=raw"
        return Response.json({"id": mail.id, "threadId": mail.thread_id, "labelIds": mail.labels,
                              "snippet": "", "historyId": str(mail.history_id), "internalDate": str(mail.internal_ms),
                              "sizeEstimate": len(mail.raw),
                              "raw": base64.urlsafe_b64encode(mail.raw).decode().rstrip("=")})

    def _history(self, req: Request, _m: Any) -> Response:
        start = int(req.param("startHistoryId") or 0)
        if start < self.min_history_id:
            return _error(404, "Requested entity was not found.", "notFound")
        label = req.param("labelId")
        records = [{"id": str(h), "messages": [{"id": mid}],
                    "messagesAdded": [{"message": {"id": mid, "threadId": self.mails[mid].thread_id,
                                                   "labelIds": self.mails[mid].labels}}]}
                   for h, mid, lab in self.history if h > start and (label is None or lab == label)]
        page, nxt = self._page(records, req)
        body: dict[str, Any] = {"history": page, "historyId": str(self.history_id)}
        if nxt:
            body["nextPageToken"] = nxt
        return Response.json(body)

    # ------------------------------------------------------------------ Calendar state
    def add_event(self, start: dt.datetime, *, calendar: str = "primary", minutes: int = 60,
                  summary: str | None = None, event_id: str | None = None) -> dict[str, Any]:
        body = copy.deepcopy(self._event_templates[next(self._event_cycle)])
        self._n += 1
        body["id"] = event_id or f"ev{self._n:05d}"
        body["status"] = "confirmed"
        if summary:
            body["summary"] = summary
        tz = body.get("start", {}).get("timeZone")
        body["start"] = {"dateTime": start.isoformat(), **({"timeZone": tz} if tz else {})}
        body["end"] = {"dateTime": (start + dt.timedelta(minutes=minutes)).isoformat(),
                       **({"timeZone": tz} if tz else {})}
        body.pop("recurrence", None)
        self._touch(calendar, body)
        return body

    def _touch(self, calendar: str, body: dict[str, Any]) -> None:
        self.event_seq += 1
        body["updated"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self.events[body["id"]] = Event(calendar, body, self.event_seq)

    def update_event(self, event_id: str, **changes: Any) -> None:
        ev = self.events[event_id]
        ev.body.update(changes)
        self._touch(ev.calendar, ev.body)

    def cancel_event(self, event_id: str) -> None:
        self.update_event(event_id, status="cancelled")

    def _calendar_list(self, req: Request, _m: Any) -> Response:
        page, nxt = self._page(list(self.calendars.values()), req)
        return Response.json({"items": page, **({"nextPageToken": nxt} if nxt else {})})

    def _events(self, req: Request, m: Any) -> Response:
        cal = unquote(m["cal"])
        if cal not in self.calendars:
            return _error(404, "Not Found", "notFound")
        token = req.param("syncToken")
        show_deleted = req.param("showDeleted") == "true"
        mine = [e for e in self.events.values() if e.calendar == cal]
        if token:
            if token in self.expired_sync_tokens or not token.startswith("sync-"):
                return _error(410, "Sync token is no longer valid, a full sync is required.", "fullSyncRequired")
            since = int(token.split("-")[1])
            items = [e.body for e in sorted(mine, key=lambda e: e.seq) if e.seq > since]
        else:
            lo = dt.datetime.fromisoformat(req.param("timeMin").replace("Z", "+00:00"))  # type: ignore[union-attr]
            hi = dt.datetime.fromisoformat(req.param("timeMax").replace("Z", "+00:00"))  # type: ignore[union-attr]

            def start(e: Event) -> dt.datetime:
                return dt.datetime.fromisoformat(e.body["start"]["dateTime"])

            items = [e.body for e in sorted(mine, key=start) if lo <= start(e) < hi
                     and (show_deleted or e.body.get("status") != "cancelled")]
        page, nxt = self._page(items, req)
        body: dict[str, Any] = {"kind": "calendar#events", "items": page}
        if nxt:
            body["nextPageToken"] = nxt
        else:
            body["nextSyncToken"] = f"sync-{self.event_seq}"
        return Response.json(body)
