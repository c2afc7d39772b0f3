"""Weekly digests: per user, at their own local day and hour, counts only, at most once a week.

Fixes against the original: the digest is computed for and sent to the user it belongs to (the
original passed a workspace id as the user id, so every digest was empty and none was sent);
"at most once" is a unique ``(user, kind, ISO week)`` claim in ``notification_log``, taken before
sending, so ticks, retries and backfills of the same week cannot send twice; an empty week is
skipped (IBZ #744); a failed send can be retried, an interrupted one is never resent blindly.

A user is due in the UTC hour ``H`` when, in their timezone, ``H`` falls on ``digest_day``
(0 = Sunday, as the original) at ``digest_hour``. The week covered is the 7 days before ``H``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane.models import (
    Deliverable,
    DeliverableVersion,
    NotificationLog,
    User,
    UserContextHistory,
    utcnow,
)
from io_managers.delta_store import DeltaStore
from yarn_assets.core.activity_log import read_events

KIND = "weekly_digest"
SYNC_EVENTS = ("platform_synced", "import_completed")


def local_zone(user: User) -> ZoneInfo:
    try:
        return ZoneInfo(user.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def sunday_based_weekday(local: dt.datetime) -> int:
    """0 = Sunday … 6 = Saturday (the original's digest_day convention)."""
    return (local.weekday() + 1) % 7


def iso_week(local: dt.datetime) -> str:
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


def is_due(user: User, hour_start: dt.datetime) -> bool:
    local = hour_start.astimezone(local_zone(user))
    return (
        bool(user.digest_enabled)
        and user.status == "active"
        and (user.preferences or {}).get("email_weekly_digest", True) is not False
        and sunday_based_weekday(local) == user.digest_day
        and local.hour == user.digest_hour
    )


def due_users(session: Session, hour_start: dt.datetime) -> list[User]:
    users = session.scalars(select(User).where(User.digest_enabled.is_(True)).order_by(User.id)).all()
    return [u for u in users if is_due(u, hour_start)]


@dataclass(frozen=True)
class WeekCounts:
    versions_delivered: int
    new_memory: int
    syncs: int

    @property
    def empty(self) -> bool:
        return self.versions_delivered == 0 and self.new_memory == 0 and self.syncs == 0


def week_counts(session: Session, store: DeltaStore, user_id: str, start: dt.datetime, end: dt.datetime) -> WeekCounts:
    """This user's week: versions delivered, memory keys learned, syncs and imports (only their rows)."""
    delivered = session.scalar(
        select(func.count(DeliverableVersion.id))
        .join(Deliverable, Deliverable.id == DeliverableVersion.deliverable_id)
        .where(Deliverable.user_id == user_id, DeliverableVersion.delivered_at >= start,
               DeliverableVersion.delivered_at < end)
    ) or 0
    memory = session.scalar(
        select(func.count(func.distinct(UserContextHistory.key))).where(
            UserContextHistory.user_id == user_id, UserContextHistory.valid_from >= start,
            UserContextHistory.valid_from < end, UserContextHistory.status != "outranked",
        )
    ) or 0
    syncs = read_events(store, user_ids=[user_id], since=start, until=end - dt.timedelta(microseconds=1),
                        event_types=SYNC_EVENTS).height
    return WeekCounts(int(delivered), int(memory), int(syncs))


def render(user: User, counts: WeekCounts, start: dt.datetime, end: dt.datetime) -> tuple[str, str, str]:
    zone = local_zone(user)
    span = f"{start.astimezone(zone):%b %d} – {(end - dt.timedelta(seconds=1)).astimezone(zone):%b %d}"
    subject = (f"Your week with yarnnn: {counts.versions_delivered} delivered, "
               f"{counts.new_memory} new memories, {counts.syncs} syncs")
    items = [
        ("Deliverables delivered", counts.versions_delivered),
        ("New things yarnnn learned about you", counts.new_memory),
        ("Platform syncs and imports", counts.syncs),
    ]
    text = "\n".join([f"Hi {user.name or user.email},", "", f"Your week ({span}):", "",
                      *[f"- {label}: {n}" for label, n in items], "",
                      "You get this every week; turn it off in your settings."])
    html = ("<p>Hi {name},</p><p>Your week ({span}):</p><ul>{rows}</ul>"
            "<p>You get this every week; turn it off in your settings.</p>").format(
        name=_esc(user.name or user.email), span=_esc(span),
        rows="".join(f"<li>{_esc(label)}: <strong>{n}</strong></li>" for label, n in items))
    return subject, text, html


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def claim(session: Session, user: User, period_key: str, subject: str, kind: str = KIND) -> str | None:
    """Take the (user, kind, period) send slot: returns the row id, or None if it is taken.

    A ``failed`` earlier attempt is taken over (retry); ``sending`` or ``sent`` is not.
    """
    try:
        with session.begin_nested():
            row = NotificationLog(user_id=user.id, kind=kind, period_key=period_key, status="sending",
                                  recipient=user.email, subject=subject)
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        pass
    row = session.scalars(select(NotificationLog).where(
        NotificationLog.user_id == user.id, NotificationLog.kind == kind, NotificationLog.period_key == period_key
    )).one()
    if row.status != "failed":
        return None
    row.status, row.error, row.recipient, row.subject = "sending", None, user.email, subject
    session.flush()
    return row.id


def settle(session: Session, row_id: str, *, ok: bool, message_id: str | None = None, error: str | None = None,
           details: dict[str, object] | None = None) -> None:
    row = session.get(NotificationLog, row_id)
    if row is None:
        return
    row.status = "sent" if ok else "failed"
    row.message_id, row.error = message_id, error
    row.sent_at = utcnow() if ok else None
    row.details = dict(details or {})


def status_of(session: Session, user_id: str, period_key: str, kind: str = KIND) -> str | None:
    return session.scalar(select(NotificationLog.status).where(
        NotificationLog.user_id == user_id, NotificationLog.kind == kind, NotificationLog.period_key == period_key
    ))


def due_hours(users: Sequence[User], start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """UTC hours in [start, end) when at least one of ``users`` is due (demo and backfill helper)."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        if any(is_due(u, hour) for u in users):
            out.append(hour)
        hour += dt.timedelta(hours=1)
    return out
