"""Test helpers: seed silver rows directly, users and deliverables in the control plane, run the job."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import polars as pl

from control_plane import db
from control_plane.models import User
from io_managers.delta_store import DeltaStore
from yarn_assets.core.tables import PLATFORM_CONTENT, TTL, created_day


def last_noon() -> dt.datetime:
    """The latest 12:00 UTC not after the clock (the real one, or the suite's shifted one)."""
    now = dt.datetime.now(dt.UTC)
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    return noon if noon <= now else noon - dt.timedelta(days=1)


#: The moment every deliverables test starts at: ``conftest`` moves the clock here (ticking) for the
#: whole test, so sample content dated from NOW and the code's own ``datetime.now()`` agree. Derived
#: from the clock rather than fixed, so the suite's shifted runs move it too; noon keeps the
#: time-of-day logic (schedules, "today" in Paris or New York) the same on every run.
NOW = last_noon()


def item(user_id: str, platform: str, resource_id: str, external_id: str, content: str, *,
         at: dt.datetime, fetched_at: dt.datetime | None = None, author: str = "Dana Lee",
         title: str | None = None, resource_name: str | None = None, thread_id: str | None = None,
         ends_at: dt.datetime | None = None, participants: list[str] | None = None,
         content_type: str | None = None) -> dict[str, Any]:
    fetched = fetched_at or at
    return {
        "user_id": user_id, "platform": platform, "created_day": created_day(at), "resource_id": resource_id,
        "resource_name": resource_name or resource_id, "external_id": external_id,
        "content_type": content_type or {"slack": "message", "gmail": "email", "notion": "page",
                                         "calendar": "event"}[platform],
        "thread_id": thread_id, "title": title, "author": author, "author_id": author.lower().replace(" ", "."),
        "participants": participants or [], "content": content,
        "content_hash": hashlib.sha256(content.encode()).hexdigest(), "content_chars": len(content),
        "occurred_at": at, "ends_at": ends_at, "source_updated_at": None, "fetched_at": fetched,
        "expires_at": fetched + TTL[platform], "retained": False, "retained_reason": None, "retained_ref": None,
        "retained_at": None, "metadata": json.dumps({}), "source_kind": "import", "connection_id": None,
        "batch_id": "seed", "ingest_date": fetched.date(), "raw_sha256": None,
    }


def seed_silver(store: DeltaStore, rows: list[dict[str, Any]]) -> None:
    df = pl.DataFrame(rows, schema=dict(PLATFORM_CONTENT.schema))
    store.merge(PLATFORM_CONTENT, df)


def add_user(url: str, user_id: str, *, email: str | None = None, tz: str = "UTC", tier: str = "pro",
             name: str | None = None) -> None:
    db.ensure_schema(url, True)
    with db.session_scope(url) as s:
        if s.get(User, user_id) is None:
            s.add(User(id=user_id, email=email or f"{user_id}@example.com", timezone=tz, tier=tier,
                       name=name or user_id.capitalize()))


def sample_content(user_id: str, now: dt.datetime = NOW) -> list[dict[str, Any]]:
    """A little of every platform for one user."""
    h = dt.timedelta(hours=1)
    return [
        item(user_id, "slack", "C01GENERAL", f"{user_id}-s1", "We decided to ship the billing revamp on Friday.",
             at=now - 5 * h, resource_name="#general", author="Priya Natarajan", thread_id="t1"),
        item(user_id, "slack", "C01GENERAL", f"{user_id}-s2", "Who owns the migration runbook?",
             at=now - 4 * h, resource_name="#general", author="Tom Baker", thread_id="t2"),
        item(user_id, "slack", "C02ENG", f"{user_id}-s3", "Build is red on main, this is a blocker, ASAP please",
             at=now - 3 * h, resource_name="#eng", author="Ana Ruiz", thread_id="t3"),
        item(user_id, "gmail", "label:INBOX", f"{user_id}-g1", "Can you review the Q4 roadmap before Thursday?",
             at=now - 6 * h, title="Q4 roadmap review", author="Dana Lee"),
        item(user_id, "gmail", "label:INBOX", f"{user_id}-g2", "Attached is the invoice for October.",
             at=now - 7 * h, title="Invoice 2291", author="Sam Ito"),
        item(user_id, "notion", "page-roadmap", f"{user_id}-n1",
             "Roadmap Q4. Billing revamp in progress; owner Priya. Search relevance work planned.",
             at=now - 8 * h, title="Roadmap Q4", resource_name="Roadmap Q4", author="Priya Natarajan"),
        item(user_id, "calendar", "primary", f"{user_id}-c1", "Quarterly roadmap review with partners",
             at=now + 20 * h, ends_at=now + 21 * h, title="Roadmap review", author="Dana Lee",
             participants=["dana@partner.example", "priya@northwind.example"], fetched_at=now - 2 * h),
        item(user_id, "calendar", "primary", f"{user_id}-c2", "1:1",
             at=now + 44 * h, ends_at=now + 44.5 * h, title="1:1 with Tom", author="Tom Baker",
             participants=["tom@northwind.example"], fetched_at=now - 2 * h),
    ]


def run_resources(settings_overrides: dict[str, Any] | None = None, *, llm: Any = None, search: Any = None):  # type: ignore[no-untyped-def]
    """RunResources built from the settings the way the definitions build them (optionally overridden)."""
    from resources.settings import load_settings
    from yarn_assets.deliverables.run_resources import run_resources_from_settings

    with run_resources_from_settings(load_settings(**(settings_overrides or {}))) as res:
        pass  # the resources hold no open handles; the context resolves EnvVars
    if llm is not None:
        res.llm = llm
    if search is not None:
        res.search = search
    return res


def create(url: str, user_id: str, dtype: str, *, now: dt.datetime = NOW, **kwargs: Any) -> str:
    from yarn_assets.deliverables import service

    with db.session_scope(url) as s:
        d = service.create_deliverable(s, user_id=user_id, deliverable_type=dtype,
                                       title=kwargs.pop("title", f"{dtype} of {user_id}"), now=now, **kwargs)
        return d.id
