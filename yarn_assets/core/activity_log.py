"""activity_log: typed events every subsystem writes and signals, patterns and memory read.

Event ids are deterministic (uuid5 of an idempotency key), and ``event_date`` is the logical day
of the work, so re-running the same partition writes nothing new.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from io_managers.delta_store import DeltaStore
from io_managers.predicates import In as InP
from io_managers.predicates import Predicate, all_of
from io_managers.predicates import Window as WindowP
from yarn_assets.core.tables import ACTIVITY_LOG

EVENT_TYPES = frozenset(
    {
        "platform_synced",
        "import_completed",
        "import_failed",
        "signal_processed",
        "deliverable_scheduled",
        "deliverable_generated",
        "deliverable_run",
        "deliverable_delivered",
        "deliverable_approved",
        "deliverable_rejected",
        "deliverable_edited",
        "memory_written",
        "session_summary_written",
        "pattern_detected",
        "conversation_analyzed",
        "weekly_digest_sent",
        "content_cleanup",
        "chat_session",
        "integration_connected",
        "integration_disconnected",
        "run_failed",
    }
)

#: Events that say nothing about the user's work; kept out of prompts (the original's heartbeat
#: rows crowded out real events).
NOISE_EVENT_TYPES = frozenset({"content_cleanup", "run_failed"})

_NAMESPACE = uuid.UUID("5a1d0c3e-7f2b-4c55-9d1e-0b7a6f3e2c10")


def event_id(idempotency_key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, idempotency_key))


@dataclass(frozen=True)
class ActivityEvent:
    user_id: str
    event_type: str
    summary: str
    idempotency_key: str
    metadata: dict[str, Any] = field(default_factory=dict)
    event_ref: str | None = None
    created_at: dt.datetime | None = None
    event_date: dt.date | None = None

    def __post_init__(self) -> None:
        if self.event_type not in EVENT_TYPES:
            raise ValueError(f"unknown activity event type {self.event_type!r}")
        if not self.summary:
            raise ValueError("activity events need a summary")


def write_events(store: DeltaStore, events: Sequence[ActivityEvent], run_id: str | None = None) -> int:
    """Insert events whose id is new; returns how many were inserted."""
    if not events:
        return 0
    now = dt.datetime.now(dt.UTC)
    rows = []
    for ev in events:
        created = (ev.created_at or now).astimezone(dt.UTC)
        rows.append(
            {
                "event_id": event_id(f"{ev.event_type}|{ev.user_id}|{ev.idempotency_key}"),
                "user_id": ev.user_id,
                "event_type": ev.event_type,
                "event_ref": ev.event_ref,
                "summary": ev.summary[:1000],
                "metadata": json.dumps(ev.metadata, sort_keys=True, default=str),
                "created_at": created,
                "event_date": ev.event_date or created.date(),
                "run_id": run_id,
            }
        )
    df = pl.DataFrame(rows, schema=dict(ACTIVITY_LOG.schema)).unique("event_id", keep="first")
    stats = store.merge(ACTIVITY_LOG, df, update={}, insert=True)
    return stats.inserted


def _event_predicate(user_ids: Iterable[str] | None, since: dt.datetime | None, until: dt.datetime | None,
                     event_types: Iterable[str] | None) -> Predicate | None:
    parts: list[Predicate | None] = []
    if since is not None or until is not None:
        lo = since or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        hi = until or dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
        parts.append(WindowP("event_date", lo.date(), (hi + dt.timedelta(days=1)).date()))
        parts.append(WindowP("created_at", lo, hi))
    if user_ids is not None:
        parts.append(InP("user_id", list(user_ids)))
    if event_types is not None:
        parts.append(InP("event_type", list(event_types)))
    return all_of(*parts)


def read_events(
    store: DeltaStore,
    *,
    user_ids: Iterable[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    event_types: Iterable[str] | None = None,
) -> pl.DataFrame:
    """Events filtered by user, type and time; partition-pruned on ``event_date``."""
    return store.read(ACTIVITY_LOG, _event_predicate(user_ids, since, until, event_types)).sort("created_at")


def users_with_events(store: DeltaStore, *, since: dt.datetime, until: dt.datetime,
                      event_types: Iterable[str] | None = None) -> list[str]:
    """The users with an event in the window: one pruned scan of the ``user_id`` column only (who is
    active, without holding everyone's events)."""
    lf = store.scan(ACTIVITY_LOG, _event_predicate(None, since, until, event_types))
    if lf is None:
        return []
    return sorted(lf.select("user_id").unique().collect()["user_id"].to_list())
