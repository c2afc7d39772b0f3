"""Per-user prompt inputs beyond platform content: profile, memory, recent activity, deliverables.

Every loader takes one ``user_id`` and filters by it; nothing here can return another user's rows.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_plane.models import Deliverable, DeliverableVersion, PlatformConnection, User
from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, In, all_of
from yarn_assets.core.activity_log import NOISE_EVENT_TYPES, read_events
from yarn_assets.memory import user_context as user_memory

MEMORY_LIMIT = 15
ACTIVITY_LIMIT = 10
ACTIVITY_DAYS = 7
DELIVERABLES_IN_PROMPT = 10

#: Where the deliverables domain keeps version text (deliverable_id, version_number, final/draft).
VERSION_TABLES = ("gold/deliverable_versions",)

#: Addresses that never expect an answer (the follow-up rule ignores them).
AUTOMATED_SENDERS = ("noreply", "no-reply", "donotreply", "do-not-reply", "notifications@", "mailer-daemon",
                     "calendar-notification", "bounce")


@dataclass(frozen=True)
class UserProfile:
    id: str
    email: str
    name: str | None
    tier: str
    timezone: str
    status: str
    addresses: frozenset[str] = frozenset()  # the user's own addresses (lowercase)

    @property
    def domains(self) -> frozenset[str]:
        return frozenset(a.rsplit("@", 1)[1] for a in self.addresses if "@" in a)


@dataclass(frozen=True)
class DeliverableView:
    id: str
    title: str
    deliverable_type: str
    status: str
    origin: str
    trigger_type: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    type_config: dict[str, Any] = field(default_factory=dict)
    signal_ref: str | None = None
    next_run_at: dt.datetime | None = None
    last_run_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    latest_version_number: int | None = None
    latest_version_at: dt.datetime | None = None
    preview: str | None = None


def load_profile(session: Session, user_id: str) -> UserProfile:
    user = session.get(User, user_id)
    if user is None:
        raise LookupError(f"unknown user {user_id!r}")
    addresses = {user.email.lower()} if user.email else set()
    for conn in session.scalars(select(PlatformConnection).where(PlatformConnection.user_id == user_id)):
        label = (conn.account_label or "").strip().lower()
        if "@" in label and " " not in label:
            addresses.add(label)
    extra = (user.preferences or {}).get("email_addresses") or []
    addresses.update(str(a).lower() for a in extra if isinstance(a, str))
    return UserProfile(id=user.id, email=user.email, name=user.name, tier=user.tier, timezone=user.timezone,
                       status=user.status, addresses=frozenset(addresses))


def selected_sources(session: Session, user_id: str) -> dict[str, set[str] | None]:
    """platform -> selected resource ids (None = no explicit selection: everything counts)."""
    out: dict[str, set[str] | None] = {}
    for conn in session.scalars(select(PlatformConnection).where(PlatformConnection.user_id == user_id)):
        chosen = conn.selected_sources
        if not chosen:
            out[conn.platform] = None
            continue
        ids = {str(s.get("id")) if isinstance(s, dict) else str(s) for s in chosen}
        out[conn.platform] = {i for i in ids if i and i != "None"} or None
    return out


def load_deliverables(session: Session, store: DeltaStore, user_id: str) -> list[DeliverableView]:
    """The user's active and paused deliverables, newest first, **including those without versions**
    (the original inner-joined versions, so new deliverables were invisible to the model)."""
    latest = (
        select(DeliverableVersion.deliverable_id, func.max(DeliverableVersion.version_number).label("v"))
        .group_by(DeliverableVersion.deliverable_id)
        .subquery()
    )
    rows = session.execute(
        select(Deliverable, latest.c.v)
        .outerjoin(latest, latest.c.deliverable_id == Deliverable.id)
        .where(Deliverable.user_id == user_id, Deliverable.status.in_(("active", "paused")))
        .order_by(Deliverable.updated_at.desc(), Deliverable.id)
    ).all()
    version_at: dict[str, dt.datetime] = {}
    with_versions = [(d.id, v) for d, v in rows if v is not None]
    if with_versions:
        for ver in session.scalars(
            select(DeliverableVersion).where(DeliverableVersion.deliverable_id.in_([i for i, _ in with_versions]))
        ):
            if (ver.deliverable_id, ver.version_number) in set(with_versions):
                version_at[ver.deliverable_id] = ver.delivered_at or ver.created_at
    previews = _version_previews(store, user_id, [i for i, _ in with_versions])
    return [
        DeliverableView(
            id=d.id, title=d.title, deliverable_type=d.deliverable_type, status=d.status, origin=d.origin,
            trigger_type=d.trigger_type, sources=list(d.sources or []), type_config=dict(d.type_config or {}),
            signal_ref=d.signal_ref, next_run_at=d.next_run_at, last_run_at=d.last_run_at, updated_at=d.updated_at,
            latest_version_number=v, latest_version_at=version_at.get(d.id), preview=previews.get(d.id),
        )
        for d, v in rows
    ]


def _version_previews(store: DeltaStore, user_id: str, deliverable_ids: list[str]) -> dict[str, str]:
    """400-char previews of each deliverable's latest output, when the deliverables table exists."""
    if not deliverable_ids:
        return {}
    for name in VERSION_TABLES:
        lf = store.scan(name)
        if lf is None:
            continue
        cols = lf.collect_schema().names()
        text_col = next((c for c in ("final_content", "draft_content", "content") if c in cols), None)
        if "deliverable_id" not in cols or "version_number" not in cols or text_col is None:
            continue
        pred = In("deliverable_id", deliverable_ids)
        if "user_id" in cols:
            pred = all_of(pred, Eq("user_id", user_id))  # type: ignore[assignment]
        frame = (
            lf.filter(pred.to_polars())
            .sort("version_number", descending=True)
            .unique("deliverable_id", keep="first")
            .select(["deliverable_id", text_col])
            .collect()
        )
        return {r[0]: " ".join(str(r[1] or "").split())[:400] for r in frame.iter_rows()}
    return {}


def load_memory(session: Session, user_id: str, limit: int = MEMORY_LIMIT) -> list[str]:
    """Up to 15 fact/preference/instruction rows of the user's memory, highest confidence first."""
    return [f"{c.key}: {c.value}" for c in user_memory.for_prompt(session, user_id, limit)]


def is_noise(event_type: str, metadata: str | None) -> bool:
    """Heartbeat-like rows say nothing about the user's work: noise types and empty signal passes."""
    if event_type in NOISE_EVENT_TYPES:
        return True
    if event_type == "signal_processed":
        try:
            return int(json.loads(metadata or "{}").get("actions_taken", 0)) == 0
        except (ValueError, TypeError, AttributeError):
            return True
    return False


def load_activity(store: DeltaStore, user_id: str, as_of: dt.datetime, limit: int = ACTIVITY_LIMIT) -> list[str]:
    """The last 10 meaningful events of the 7 days before ``as_of``."""
    events = read_events(store, user_ids=[user_id], since=as_of - dt.timedelta(days=ACTIVITY_DAYS), until=as_of)
    if events.is_empty():
        return []
    rows = [
        r for r in events.sort("created_at", descending=True).iter_rows(named=True)
        if r["user_id"] == user_id and not is_noise(r["event_type"], r["metadata"])
    ][:limit]
    return [f"[{r['created_at']:%Y-%m-%d %H:%M}] {r['event_type']}: {r['summary'][:200]}" for r in rows]


def is_automated(address: str | None) -> bool:
    a = (address or "").lower()
    return any(marker in a for marker in AUTOMATED_SENDERS)
