"""System status (the seed's ``GET /api/system/status``): a pure read of the control plane, the
warehouse and the Dagster instance. Nothing here writes, migrates or creates anything: a table or
database that does not exist yet is reported as absent.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from control_plane import db
from control_plane.models import Deliverable, DeliverableVersion, ImportJob, PlatformConnection, SyncRegistry, User
from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, In, Window, all_of
from yarn_assets.core.tables import ACTIVITY_LOG

SIGNAL_EVENTS = ("signal_processed",)
MEMORY_EVENTS = ("memory_written", "session_summary_written", "pattern_detected")


def readonly_engine(url: str) -> Engine | None:
    """An engine that cannot write; None when the database does not exist (SQLite file absent)."""
    parsed = make_url(db.normalize_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or not Path(path).exists():
            return None
        return create_engine(f"sqlite:///file:{Path(path).resolve()}?mode=ro&uri=true")
    connect_args = {"options": "-c default_transaction_read_only=on"} if parsed.get_backend_name() == "postgresql" \
        else {}
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds") if value else None


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@dataclass
class UserStatus:
    user_id: str
    tier: str | None = None
    timezone: str | None = None
    connections: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    last_signal_pass: dict[str, Any] | None = None
    deliverables: dict[str, Any] = field(default_factory=dict)
    last_memory_run: dict[str, Any] | None = None
    imports: dict[str, Any] = field(default_factory=dict)
    run_failures: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SystemStatus:
    now: dt.datetime
    users: dict[str, UserStatus] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    daemons: list[dict[str, Any]] = field(default_factory=list)
    operator_failures: list[dict[str, Any]] = field(default_factory=list)

    def user(self, user_id: str) -> UserStatus:
        if user_id not in self.users:
            self.users[user_id] = UserStatus(user_id)
        return self.users[user_id]

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps({
            "now": self.now, "notes": self.notes, "daemons": self.daemons,
            "operator_failures": self.operator_failures,
            "users": {u: vars(s) for u, s in sorted(self.users.items())},
        }, default=lambda v: _iso(v) if isinstance(v, dt.datetime) else str(v)))


# ------------------------------------------------------------------------------- control plane
def _control_plane(status: SystemStatus, url: str, only: str | None) -> None:
    engine = readonly_engine(url)
    if engine is None:
        status.notes.append("control plane: database not created yet (run `yarnnn db upgrade`)")
        return
    try:
        tables = set(inspect(engine).get_table_names())
        with Session(engine) as session:
            if "users" not in tables:
                status.notes.append("control plane: schema not created yet (run `yarnnn db upgrade`)")
                return
            q = select(User).order_by(User.id)
            if only:
                q = q.where(User.id == only)
            for user in session.scalars(q):
                s = status.user(user.id)
                s.tier, s.timezone = user.tier, user.timezone
            ids = list(status.users) if only is None else [only]
            if "platform_connections" in tables:
                _connections(status, session, ids)
            if "sync_registry" in tables:
                _sources(status, session, ids)
            if "deliverables" in tables:
                _deliverables(status, session, ids, "deliverable_versions" in tables)
            if "import_jobs" in tables:
                _imports(status, session, ids)
    finally:
        engine.dispose()


def _connections(status: SystemStatus, session: Session, ids: list[str]) -> None:
    for c in session.scalars(select(PlatformConnection).where(PlatformConnection.user_id.in_(ids))
                             .order_by(PlatformConnection.platform)):
        last = _utc(c.last_synced_at)
        status.user(c.user_id).connections.append({
            "platform": c.platform, "status": c.status, "last_synced_at": last,
            "age_minutes": None if last is None else int((status.now - last).total_seconds() // 60),
            "last_error": c.last_error,
        })


def _sources(status: SystemStatus, session: Session, ids: list[str]) -> None:
    rows = session.scalars(select(SyncRegistry).where(SyncRegistry.user_id.in_(ids))
                           .order_by(SyncRegistry.platform, SyncRegistry.resource_id))
    grouped: dict[tuple[str, str], list[SyncRegistry]] = defaultdict(list)
    for r in rows:
        if r.resource_id.startswith("__"):
            continue
        grouped[(r.user_id, r.platform)].append(r)
    for (user_id, platform), group in sorted(grouped.items()):
        synced = [_utc(r.last_synced_at) for r in group if r.last_synced_at]
        status.user(user_id).sources.append({
            "platform": platform, "sources": len(group), "items": sum(int(r.item_count or 0) for r in group),
            "newest_sync": max(synced) if synced else None, "oldest_sync": min(synced) if synced else None,
            "never_synced": sum(1 for r in group if r.last_synced_at is None),
            "errors": {r.resource_name or r.resource_id: (r.last_error or "")[:120] for r in group if r.last_error},
        })


def _deliverables(status: SystemStatus, session: Session, ids: list[str], with_versions: bool) -> None:
    items = list(session.scalars(select(Deliverable).where(Deliverable.user_id.in_(ids))))
    latest: dict[str, DeliverableVersion] = {}
    if with_versions and items:
        for v in session.scalars(select(DeliverableVersion)
                                 .where(DeliverableVersion.deliverable_id.in_([d.id for d in items]))
                                 .order_by(DeliverableVersion.version_number)):
            latest[v.deliverable_id] = v
    for user_id in ids:
        mine = [d for d in items if d.user_id == user_id]
        active = [d for d in mine if d.status == "active"]
        due = [d for d in active if d.next_run_at is not None and _utc(d.next_run_at) <= status.now]
        failed = []
        for d in mine:
            v = latest.get(d.id)
            if v is not None and (v.status == "failed" or v.delivery_status == "failed"):
                failed.append({"title": d.title, "version": v.version_number,
                               "error": (v.delivery_error or getattr(v, "error", None) or v.status or "")[:160],
                               "at": _utc(v.created_at)})
        if mine:
            status.user(user_id).deliverables = {
                "active": len(active), "paused": sum(1 for d in mine if d.status == "paused"),
                "due": [{"title": d.title, "next_run_at": _utc(d.next_run_at)} for d in due],
                "failed": failed,
                "next": min((_utc(d.next_run_at) for d in active if d.next_run_at), default=None),
            }


def _imports(status: SystemStatus, session: Session, ids: list[str]) -> None:
    jobs = list(session.scalars(select(ImportJob).where(ImportJob.user_id.in_(ids)).order_by(ImportJob.created_at)))
    for user_id in ids:
        mine = [j for j in jobs if j.user_id == user_id]
        if not mine:
            continue
        counts: dict[str, int] = defaultdict(int)
        for j in mine:
            counts[j.status] += 1
        status.user(user_id).imports = {
            "by_status": dict(sorted(counts.items())),
            "failed": [{"file": j.original_name, "error": (j.error or "")[:160]} for j in mine if j.status == "failed"],
            "last": _utc(max((j.completed_at or j.created_at) for j in mine)),
        }


# ---------------------------------------------------------------------------------- warehouse
def _activity(status: SystemStatus, store: DeltaStore, only: str | None, since: dt.datetime) -> None:
    if not store.exists(ACTIVITY_LOG):
        status.notes.append("warehouse: activity_log absent (nothing has run yet)")
        return
    wanted = (*SIGNAL_EVENTS, *MEMORY_EVENTS)
    pred = all_of(Window("event_date", since.date(), (status.now + dt.timedelta(days=1)).date()),
                  In("event_type", list(wanted)), Eq("user_id", only) if only else None)
    events = store.read(ACTIVITY_LOG, pred, columns=["user_id", "event_type", "summary", "created_at"])
    if events.is_empty():
        return
    latest = events.sort("created_at").group_by("user_id", "event_type").last()
    for row in latest.sort("created_at").iter_rows(named=True):
        s = status.user(row["user_id"])
        entry = {"event": row["event_type"], "at": row["created_at"], "summary": row["summary"][:160]}
        if row["event_type"] in SIGNAL_EVENTS:
            s.last_signal_pass = entry
        else:
            s.last_memory_run = entry


# ------------------------------------------------------------------------------------ dagster
def _dagster(status: SystemStatus, instance: Any, only: str | None, since: dt.datetime, limit: int) -> None:
    import dagster as dg

    from yarn_assets.core.runs import OPERATOR_USER, users_from_tags

    for name, st in sorted(instance.get_daemon_statuses().items()):
        beat = st.last_heartbeat
        at = dt.datetime.fromtimestamp(beat.timestamp, dt.UTC) if beat else None
        status.daemons.append({"daemon": name, "healthy": bool(st.healthy), "last_heartbeat": at})
    records = instance.get_run_records(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], created_after=since), limit=limit,
    )
    for rec in records:
        run = rec.dagster_run
        users = users_from_tags(dict(run.tags))
        entry = {"run_id": run.run_id, "job": run.job_name, "partition": run.tags.get("dagster/partition"),
                 "ended_at": _utc(rec.end_time and dt.datetime.fromtimestamp(rec.end_time, dt.UTC))}
        if users == [OPERATOR_USER]:
            if only is None:
                status.operator_failures.append(entry)
            continue
        for user_id in users:
            if only is None or user_id == only:
                status.user(user_id).run_failures.append(entry)


def collect(*, control_plane_url: str, store: DeltaStore, instance: Any | None, user_id: str | None = None,
            now: dt.datetime | None = None, days: int = 7, run_limit: int = 200) -> SystemStatus:
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    status = SystemStatus(now=now)
    since = now - dt.timedelta(days=days)
    _control_plane(status, control_plane_url, user_id)
    _activity(status, store, user_id, since)
    if instance is None:
        status.notes.append("dagster: DAGSTER_HOME not set; daemon health and run failures not shown")
    else:
        _dagster(status, instance, user_id, since, run_limit)
    if user_id is not None and user_id not in status.users:
        status.notes.append(f"unknown user {user_id!r}")
    return status

