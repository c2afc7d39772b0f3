"""Silver seeding for signal tests: real ContentItems through the real silver write path."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from control_plane import db
from control_plane.models import Deliverable, User
from io_managers.delta_store import DeltaStore
from yarn_assets.ingest.normalize import items_frame
from yarn_assets.ingest.objects import ContentItem
from yarn_assets.ingest.silver import merge_platform_content, silver_rows

UTC = dt.UTC


def hour(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def land(store: DeltaStore, user_id: str, platform: str, items: Iterable[ContentItem], fetched_at: dt.datetime) -> None:
    """Write items as one batch fetched at ``fetched_at`` (same path as imports and syncs)."""
    items = list(items)
    for i, it in enumerate(items):
        it.seq = i
        if it.source_created_at is None:
            it.source_created_at = it.occurred_at
    meta = {"user_id": user_id, "platform": platform, "source_kind": "import", "connection_id": None,
            "batch_id": f"test-{uuid.uuid4().hex[:8]}", "ingest_date": fetched_at.date(), "fetched_at": fetched_at}
    rows = silver_rows(items_frame(items), meta)
    merge_platform_content(store, rows, now=fetched_at, check_tombstones=False)


def event(eid: str, title: str, start: dt.datetime, attendees: list[str], minutes: int = 60,
          calendar: str = "primary", **meta: Any) -> ContentItem:
    return ContentItem(resource_id=calendar, resource_name="Calendar", external_id=eid, content_type="event",
                       content=f"{title}\nAgenda to be confirmed.", title=title, participants=attendees,
                       occurred_at=start, ends_at=start + dt.timedelta(minutes=minutes), metadata=meta)


def email(mid: str, thread: str, subject: str, sender: str, to: list[str], when: dt.datetime, body: str = "",
          label: str = "label:INBOX") -> ContentItem:
    return ContentItem(resource_id=label, resource_name=label.split(":")[-1], external_id=mid, content_type="email",
                       content=body or f"About {subject}.", title=subject, author=sender.split("@")[0].title(),
                       author_id=sender, participants=[sender, *to], thread_id=thread, occurred_at=when)


def slack(ts: str, channel: str, text: str, author: str, when: dt.datetime, name: str = "launch") -> ContentItem:
    return ContentItem(resource_id=channel, resource_name=name, external_id=ts, content_type="message", content=text,
                       author=author, author_id=author.lower(), occurred_at=when)


def page(pid: str, title: str, text: str, when: dt.datetime) -> ContentItem:
    return ContentItem(resource_id=pid, resource_name=title, external_id=pid, content_type="page", content=text,
                       title=title, occurred_at=when)


def add_users(url: str, *users: tuple[str, str, str]) -> None:
    db.ensure_schema(url, True)
    with db.session_scope(url) as s:
        for uid, email_, tier in users:
            s.add(User(id=uid, email=email_, name=uid.title(), tier=tier))


def add_deliverable(url: str, user_id: str, **fields: Any) -> str:
    did = str(uuid.uuid4())
    with db.session_scope(url) as s:
        s.add(Deliverable(id=did, user_id=user_id, **{"title": "Deliverable", "deliverable_type": "custom", **fields}))
    return did
