"""Sample data for dry runs: one user, two deliverables and a little of every platform, in a scratch workspace.

Only ever called on the throw-away workspace a dry run creates (``dry_run.py``); times are
relative to the run's clock, so the sample is always "this week".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import polars as pl

from control_plane.models import User
from yarn_assets.core.tables import PLATFORM_CONTENT, TTL, created_day
from yarn_assets.deliverables import service
from yarn_assets.recipes.runtime import StepRuntime

_TYPES = {"slack": "message", "gmail": "email", "notion": "page", "calendar": "event"}


def sample_row(user_id: str, platform: str, resource: str, external_id: str, content: str, *, at: dt.datetime,
               author: str, title: str | None = None, thread_id: str | None = None) -> dict[str, Any]:
    return {
        "user_id": user_id, "platform": platform, "created_day": created_day(at), "resource_id": resource,
        "resource_name": resource, "external_id": external_id, "content_type": _TYPES[platform],
        "thread_id": thread_id, "title": title, "author": author, "author_id": author.lower().replace(" ", "."),
        "participants": [], "content": content, "content_hash": hashlib.sha256(content.encode()).hexdigest(),
        "content_chars": len(content), "occurred_at": at, "ends_at": None, "source_updated_at": None,
        "fetched_at": at, "expires_at": at + TTL[platform], "retained": False, "retained_reason": None,
        "retained_ref": None, "retained_at": None, "metadata": json.dumps({}), "source_kind": "import",
        "connection_id": None, "batch_id": "sample", "ingest_date": at.date(), "raw_sha256": None,
    }


def sample_rows(user_id: str, now: dt.datetime) -> list[dict[str, Any]]:
    h = dt.timedelta(hours=1)
    return [
        sample_row(user_id, "notion", "Apollo launch plan", f"{user_id}-n1",
                   "Apollo launch moves to the 14th. Owner: Priya. Pricing page still open.", at=now - 30 * h,
                   author="Priya Natarajan", title="Apollo launch plan"),
        sample_row(user_id, "notion", "Billing revamp spec", f"{user_id}-n2",
                   "Billing revamp: invoices get line-item tax. Migration runbook drafted.", at=now - 50 * h,
                   author="Tom Baker", title="Billing revamp spec"),
        sample_row(user_id, "slack", "#apollo", f"{user_id}-s1", "Apollo beta feedback is in: search is slow.",
                   at=now - 20 * h, author="Ana Ruiz", thread_id="t1"),
        sample_row(user_id, "slack", "#apollo", f"{user_id}-s2", "Who signs off the Apollo pricing?",
                   at=now - 10 * h, author="Dana Lee", thread_id="t2"),
        sample_row(user_id, "slack", "#billing", f"{user_id}-s3", "We decided to ship the billing revamp on Friday.",
                   at=now - 5 * h, author="Priya Natarajan", thread_id="t3"),
        sample_row(user_id, "gmail", "label:INBOX", f"{user_id}-g1", "Can you review the Q4 roadmap before Thursday?",
                   at=now - 6 * h, author="Dana Lee", title="Q4 roadmap review"),
    ]


def seed_workspace(rt: StepRuntime, *, user_id: str, now: dt.datetime) -> dict[str, Any]:
    with rt.session_factory() as session:
        if session.get(User, user_id) is None:
            session.add(User(id=user_id, email=f"{user_id}@example.com", timezone="UTC", tier="pro",
                             name="Sample User"))
    df = pl.DataFrame(sample_rows(user_id, now), schema=dict(PLATFORM_CONTENT.schema))
    rt.store.merge(PLATFORM_CONTENT, df)
    with rt.session_factory() as session:
        research = service.create_deliverable(
            session, user_id=user_id, deliverable_type="research_brief", title="Research brief: search relevance",
            type_config={"focus": "learning to rank for product search"}, destination={"platform": "file"}, now=now)
        digest = service.create_deliverable(
            session, user_id=user_id, deliverable_type="custom", title="Project digest",
            type_config={"focus": "weekly project digest"}, destination={"platform": "file"}, now=now)
        ids = {"research_deliverable_id": research.id, "digest_deliverable_id": digest.id}
    return {"user_id": user_id, **ids}
