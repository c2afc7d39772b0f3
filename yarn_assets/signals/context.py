"""Per-user prompt inputs beyond platform content: profile, memory, recent activity, deliverables.

Every single-user loader takes one ``user_id`` and filters by it. The ``*_for`` loaders serve an
hour of many users with one query or one table scan (a per-user scan of a shared table made the
hour's cost grow with users × table size) and hand back a dict keyed by user id, each value built
only from that user's rows: nothing here can return another user's rows for a user.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_plane.models import Deliverable, DeliverableVersion, PlatformConnection, User
from io_managers.delta_store import DeltaStore
from io_managers.predicates import In
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
    return _profile(user, list(session.scalars(select(PlatformConnection)
                                               .where(PlatformConnection.user_id == user_id))))


def _profile(user: User, connections: list[PlatformConnection]) -> UserProfile:
    addresses = {user.email.lower()} if user.email else set()
    for conn in connections:
        label = (conn.account_label or "").strip().lower()
        if "@" in label and " " not in label:
            addresses.add(label)
    extra = (user.preferences or {}).get("email_addresses") or []
    addresses.update(str(a).lower() for a in extra if isinstance(a, str))
    return UserProfile(id=user.id, email=user.email, name=user.name, tier=user.tier, timezone=user.timezone,
                       status=user.status, addresses=frozenset(addresses))


def _selected(connections: list[PlatformConnection]) -> dict[str, set[str] | None]:
    out: dict[str, set[str] | None] = {}
    for conn in connections:
        chosen = conn.selected_sources
        if not chosen:
            out[conn.platform] = None
            continue
        ids = {str(s.get("id")) if isinstance(s, dict) else str(s) for s in chosen}
        out[conn.platform] = {i for i in ids if i and i != "None"} or None
    return out


def selected_sources(session: Session, user_id: str) -> dict[str, set[str] | None]:
    """platform -> selected resource ids (None = no explicit selection: everything counts)."""
    return _selected(list(session.scalars(select(PlatformConnection).where(PlatformConnection.user_id == user_id))))


def _chunks(ids: Sequence[str], size: int = 900) -> Iterator[list[str]]:
    """SQLite caps bound parameters; large IN lists go in chunks."""
    ids = list(ids)
    for lo in range(0, len(ids), size):
        yield ids[lo:lo + size]


def load_profiles(session: Session, user_ids: Sequence[str]
                  ) -> tuple[dict[str, UserProfile], dict[str, dict[str, set[str] | None]]]:
    """Profiles and source selections of many users in two queries (users, connections)."""
    users: dict[str, User] = {}
    conns: dict[str, list[PlatformConnection]] = defaultdict(list)
    for chunk in _chunks(user_ids):
        users.update({u.id: u for u in session.scalars(select(User).where(User.id.in_(chunk)))})
        for conn in session.scalars(select(PlatformConnection).where(PlatformConnection.user_id.in_(chunk))
                                    .order_by(PlatformConnection.id)):
            conns[conn.user_id].append(conn)
    profiles = {uid: _profile(u, conns.get(uid, [])) for uid, u in users.items()}
    return profiles, {uid: _selected(conns.get(uid, [])) for uid in users}


def load_deliverables(session: Session, store: DeltaStore, user_id: str) -> list[DeliverableView]:
    """The user's active and paused deliverables, newest first, **including those without versions**
    (the original inner-joined versions, so new deliverables were invisible to the model)."""
    return load_deliverables_for(session, store, [user_id]).get(user_id, [])


def load_deliverables_for(session: Session, store: DeltaStore, user_ids: Sequence[str]
                          ) -> dict[str, list[DeliverableView]]:
    """:func:`load_deliverables` of many users: two control-plane queries per chunk of users and one
    scan of the versions table for all of them (the table's log is read once per hour, not per user)."""
    rows: list[tuple[Deliverable, int | None]] = []
    latest = (
        select(DeliverableVersion.deliverable_id, func.max(DeliverableVersion.version_number).label("v"))
        .group_by(DeliverableVersion.deliverable_id)
        .subquery()
    )
    for chunk in _chunks(user_ids):
        rows.extend(session.execute(
            select(Deliverable, latest.c.v)
            .outerjoin(latest, latest.c.deliverable_id == Deliverable.id)
            .where(Deliverable.user_id.in_(chunk), Deliverable.status.in_(("active", "paused")))
            .order_by(Deliverable.updated_at.desc(), Deliverable.id)
        ).all())
    with_versions = {d.id: v for d, v in rows if v is not None}
    version_at: dict[str, dt.datetime] = {}
    for chunk in _chunks(list(with_versions)):
        for ver in session.scalars(select(DeliverableVersion).where(DeliverableVersion.deliverable_id.in_(chunk))):
            if with_versions.get(ver.deliverable_id) == ver.version_number:
                version_at[ver.deliverable_id] = ver.delivered_at or ver.created_at
    owners = {d.id: d.user_id for d, v in rows if v is not None}
    previews = _version_previews(store, owners)
    out: dict[str, list[DeliverableView]] = {uid: [] for uid in user_ids}
    for d, v in rows:
        out.setdefault(d.user_id, []).append(DeliverableView(
            id=d.id, title=d.title, deliverable_type=d.deliverable_type, status=d.status, origin=d.origin,
            trigger_type=d.trigger_type, sources=list(d.sources or []), type_config=dict(d.type_config or {}),
            signal_ref=d.signal_ref, next_run_at=d.next_run_at, last_run_at=d.last_run_at, updated_at=d.updated_at,
            latest_version_number=v, latest_version_at=version_at.get(d.id), preview=previews.get(d.id),
        ))
    return out


def _version_previews(store: DeltaStore, owners: Mapping[str, str]) -> dict[str, str]:
    """400-char previews of each deliverable's latest output (``owners``: deliverable id -> user id),
    from one scan of the versions table; a row counts only when its user_id is the deliverable's owner."""
    if not owners:
        return {}
    for name in VERSION_TABLES:
        lf = store.scan(name)
        if lf is None:
            continue
        cols = lf.collect_schema().names()
        text_col = next((c for c in ("final_content", "draft_content", "content") if c in cols), None)
        if "deliverable_id" not in cols or "version_number" not in cols or text_col is None:
            continue
        frame = (
            lf.filter(In("deliverable_id", sorted(owners)).to_polars())
            .select(["deliverable_id", "version_number", text_col, *(["user_id"] if "user_id" in cols else [])])
            .collect()
        )
        if "user_id" in cols:
            mine = pl.DataFrame({"deliverable_id": list(owners), "user_id": list(owners.values())},
                                schema={"deliverable_id": pl.Utf8, "user_id": pl.Utf8})
            frame = frame.join(mine, on=["deliverable_id", "user_id"], how="semi")
        frame = frame.sort("version_number", descending=True).unique("deliverable_id", keep="first")
        return {r[0]: " ".join(str(r[1] or "").split())[:400]
                for r in frame.select(["deliverable_id", text_col]).iter_rows()}
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
    return load_activity_for(store, [user_id], as_of, limit).get(user_id, [])


def load_activity_for(store: DeltaStore, user_ids: Sequence[str], as_of: dt.datetime,
                      limit: int = ACTIVITY_LIMIT) -> dict[str, list[str]]:
    """:func:`load_activity` of many users from one read of the 7-day window, grouped by user."""
    out: dict[str, list[str]] = {uid: [] for uid in user_ids}
    if not user_ids:
        return out
    events = read_events(store, user_ids=list(user_ids), since=as_of - dt.timedelta(days=ACTIVITY_DAYS), until=as_of)
    if events.is_empty():
        return out
    wanted = set(user_ids)
    for r in events.sort("created_at", descending=True).iter_rows(named=True):
        mine = out.get(r["user_id"]) if r["user_id"] in wanted else None
        if mine is None or len(mine) >= limit or is_noise(r["event_type"], r["metadata"]):
            continue
        mine.append(f"[{r['created_at']:%Y-%m-%d %H:%M}] {r['event_type']}: {r['summary'][:200]}")
    return out


def is_automated(address: str | None) -> bool:
    a = (address or "").lower()
    return any(marker in a for marker in AUTOMATED_SENDERS)
