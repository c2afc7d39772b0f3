"""Gmail: per selected label, RFC 822 bytes (``format=raw``) into bronze ``email_message`` objects.

The bytes are the same an mbox holds, so the importer's MIME parsing and Message-ID identity
apply unchanged. First sync: ``after:`` 30 days, at most 200 messages per label. Incremental:
``history.list`` from the stored history id; when Gmail has forgotten it (404), fall back to
a dated query from the last sync day (the identity hash makes the overlap harmless).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

from yarn_assets.ingest.api_errors import NotFound
from yarn_assets.ingest.fetch import Prior, Resource, ResourceResult
from yarn_assets.ingest.objects import RawObject
from yarn_assets.ingest.platforms.gmail.export import message_external_id
from yarn_assets.ingest.platforms.google import GoogleApi

NEVER = frozenset({"SPAM", "TRASH", "DRAFT", "UNREAD"})
PREFERRED = ("INBOX", "SENT", "STARRED", "IMPORTANT")


@dataclass(frozen=True)
class GmailLimits:
    first_window: dt.timedelta = dt.timedelta(days=30)
    per_label: int = 200
    page_size: int = 100


def label_id(resource_id: str) -> str:
    return resource_id.removeprefix("label:")


class GmailFetcher:
    platform = "gmail"
    provider = "gmail_api"

    def __init__(self, api: GoogleApi, limits: GmailLimits | None = None) -> None:
        self.api = api
        self.limits = limits or GmailLimits()
        self._raw: dict[str, tuple[bytes, dict[str, Any]]] = {}  # one fetch per message per run
        self._history_id: str | None = None
        self._label_names: dict[str, str] = {}

    def landscape(self) -> list[Resource]:
        data = self.api.gmail_labels()
        out = []
        for lab in data.get("labels") or []:
            out.append(Resource(id=f"label:{lab['id']}", name=str(lab.get("name") or lab["id"]),
                                type=str(lab.get("type") or "user"),
                                metadata={"label_id": lab["id"], "messages_total": lab.get("messagesTotal")}))
        return out

    def prepare(self, selected: list[Resource], priors: dict[str, Prior], now: dt.datetime) -> None:
        self._label_names = {label_id(r.id): r.name for r in selected}

    def finish(self) -> dict[str, tuple[str | None, dict[str, Any]]]:
        return {}

    def _profile_history_id(self) -> str:
        if self._history_id is None:
            self._history_id = str(self.api.gmail_profile().get("historyId") or "")
        return self._history_id

    def _dated_ids(self, label: str, since: dt.datetime, result: ResourceResult) -> list[str]:
        q = f"after:{since:%Y/%m/%d}"
        result.notes.append(f"query {q}")
        ids: list[str] = []
        token: str | None = None
        while len(ids) < self.limits.per_label:
            data = self.api.gmail_list(label=label, q=q, page_token=token,
                                       max_results=min(self.limits.page_size, self.limits.per_label - len(ids)))
            ids.extend(str(m["id"]) for m in data.get("messages") or [])
            token = data.get("nextPageToken")
            if not token:
                break
        if token and len(ids) >= self.limits.per_label:
            result.capped = True
        return ids[: self.limits.per_label]

    def _history_ids(self, label: str, start: str, result: ResourceResult) -> tuple[list[str], str]:
        ids: list[str] = []
        token: str | None = None
        latest = start
        while True:
            data = self.api.gmail_history(start=start, label=label, page_token=token)
            latest = str(data.get("historyId") or latest)
            for record in data.get("history") or []:
                for key in ("messagesAdded", "labelsAdded"):
                    for entry in record.get(key) or []:
                        msg = entry.get("message") or {}
                        labels = set(msg.get("labelIds") or []) | set(entry.get("labelIds") or [])
                        if msg.get("id") and (not labels or label in labels) and msg["id"] not in ids:
                            ids.append(str(msg["id"]))
            token = data.get("nextPageToken")
            if not token:
                break
        if len(ids) > self.limits.per_label:
            result.capped = True
            ids = ids[-self.limits.per_label:]  # history is oldest first: keep the newest
        return ids, latest

    def _message(self, gmail_id: str) -> tuple[bytes, dict[str, Any]] | None:
        if gmail_id not in self._raw:
            try:
                data = self.api.gmail_raw(gmail_id)
            except NotFound:
                return None  # deleted between listing and fetching
            raw = base64.urlsafe_b64decode(str(data.get("raw") or "") + "==")
            meta = {"gmail_id": gmail_id, "thread_id": data.get("threadId"), "label_ids": data.get("labelIds") or [],
                    "history_id": data.get("historyId"), "internal_date": data.get("internalDate"),
                    "size_estimate": data.get("sizeEstimate")}
            self._raw[gmail_id] = (raw, meta)
        return self._raw[gmail_id]

    def fetch(self, resource: Resource, prior: Prior, now: dt.datetime) -> ResourceResult:
        result = ResourceResult(resource)
        label = label_id(resource.id)
        if prior.first:
            new_cursor = self._profile_history_id()  # taken before listing: nothing slips between
            ids = self._dated_ids(label, now - self.limits.first_window, result)
        else:
            try:
                ids, new_cursor = self._history_ids(label, str(prior.cursor), result)
            except NotFound:
                result.notes.append("history id expired (404): fell back to a dated query")
                result.bump("cursor_resets")
                new_cursor = self._profile_history_id()
                since = (prior.last_synced_at or now - self.limits.first_window) - dt.timedelta(days=1)
                ids = self._dated_ids(label, since, result)
        result.bump("listed", len(ids))
        latest: dt.datetime | None = None
        for gmail_id in ids:
            got = self._message(gmail_id)
            if got is None:
                result.bump("vanished")
                continue
            raw, meta = got
            labels = [self._label_names.get(x, x) for x in meta["label_ids"]]
            result.objects.append(RawObject(
                object_type="email_message", external_id=message_external_id(raw), raw=raw,
                resource_id=resource.id, resource_name=resource.name,
                context={**meta, "labels": labels, "label": label},
            ))
            if meta.get("internal_date"):
                when = dt.datetime.fromtimestamp(int(meta["internal_date"]) / 1000, tz=dt.UTC)
                latest = when if latest is None or when > latest else latest
        result.bump("fetched", len(result.objects))
        result.cursor = new_cursor or prior.cursor
        result.source_latest_at = latest
        return result


def never_select(resource_id: str) -> bool:
    """SPAM, TRASH, DRAFT, UNREAD and the CATEGORY_* tabs are never synced."""
    label = label_id(resource_id)
    return label in NEVER or label.startswith("CATEGORY_")


def rank(resources: list[Resource]) -> list[Resource]:
    """INBOX, SENT, STARRED, IMPORTANT, then user labels by name; never the unsyncable ones."""
    by_label = {r.metadata.get("label_id") or label_id(r.id): r for r in resources}
    ordered = [by_label[x] for x in PREFERRED if x in by_label]
    user = sorted((r for r in resources if r.type == "user"), key=lambda r: r.name.lower())
    out = ordered + [r for r in user if r not in ordered]
    return [r for r in out if not never_select(r.metadata.get("label_id") or r.id)]


def resource_id(value: str) -> str:
    """Gmail sources are ``label:<id>`` everywhere (selection, registry row, silver ``resource_id``)."""
    return value if value.startswith("label:") else f"label:{value}"


def probe(api: GoogleApi) -> tuple[str, str | None]:
    data = api.gmail_profile()
    return f"Gmail {data.get('emailAddress')} ({data.get('messagesTotal')} messages)", data.get("emailAddress")
