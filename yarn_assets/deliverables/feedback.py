"""A user's feedback on a version: approve, reject, edit. Service functions for the API (and any front end).

Each writes, in this order: the content (edited text, unified diff, the user's reason) to the gold
Delta table ``gold/deliverable_feedback``; the verdict (ids and counts) to the control-plane
``deliverable_reviews``; and its activity event (``deliverable_approved|rejected|edited``, counts
and ids only), which the nightly patterns read (``yarn_assets.memory.patterns``: edit location,
length preference). An edit also becomes the version's ``final_content`` (the draft stays), so the
next version's "previous output" context is the user's text.

Edit location: the changed lines of the text before the edit (``difflib`` opcodes), each placed by
its position: the first 20 % of lines ``intro``, the last 20 % ``conclusion``, the rest ``body``;
the location with the most changed lines wins (ties: ``body``).

A rejection of a signal-created deliverable blocks its signal (type, ref) for
``deliverables_rejection_block_days`` (:func:`blocked_signals`, read by the signal passes' screening).

Every function takes the acting user's id: a version of another user is :class:`NotFound`,
exactly like an unknown id (no existence oracle).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.models import Deliverable, DeliverableReview, DeliverableVersion, new_id, utcnow
from io_managers.delta_store import DeltaStore, TableSpec
from io_managers.predicates import Eq, all_of
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.core.tables import UTC_TS
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS

SessionFactory = Callable[[], AbstractContextManager[Session]]
MAX_EDIT_CHARS = 100_000
MAX_REASON_CHARS = 2_000
INTRO_SHARE, CONCLUSION_SHARE = 0.2, 0.8
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.M)

DELIVERABLE_FEEDBACK = TableSpec(
    name="gold/deliverable_feedback",
    description="Users' approvals, rejections (with their reason) and edits of deliverable versions: the text "
    "before and after an edit and its unified diff.",
    schema={
        "deliverable_id": pl.Utf8,
        "feedback_id": pl.Utf8,
        "version_id": pl.Utf8,
        "version_number": pl.Int64,
        "user_id": pl.Utf8,
        "action": pl.Utf8,  # approved | rejected | edited
        "reason": pl.Utf8,
        "content_before": pl.Utf8,
        "content_after": pl.Utf8,
        "diff": pl.Utf8,  # difflib unified diff, before -> after
        "lines_added": pl.Int64,
        "lines_removed": pl.Int64,
        "edit_location": pl.Utf8,  # intro | body | conclusion
        "created_at": UTC_TS,
    },
    partition_by=("deliverable_id",),
    keys=("feedback_id",),
)
TABLES = (DELIVERABLE_FEEDBACK,)


class FeedbackError(ValueError):
    """Feedback that cannot be applied (empty or oversized edit, nothing stored to edit)."""


class NotFound(LookupError):
    """No such deliverable or version *of this user* (the same answer whether it exists for someone else)."""


@dataclass(frozen=True)
class Review:
    review_id: str
    action: str
    deliverable_id: str
    version_id: str
    version_number: int
    created_at: dt.datetime
    repeated: bool = False  # the same verdict was already the latest one: nothing new written
    diff: str | None = None
    edit_location: str | None = None
    blocked_until: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"review_id": self.review_id, "action": self.action, "deliverable_id": self.deliverable_id,
                "version_id": self.version_id, "version_number": self.version_number,
                "created_at": self.created_at.isoformat(), "repeated": self.repeated, "diff": self.diff,
                "edit_location": self.edit_location,
                "blocked_until": self.blocked_until.isoformat() if self.blocked_until else None}


# ------------------------------------------------------------------------------------------ reads
def deliverable_of_user(session: Session, user_id: str, deliverable_id: str) -> Deliverable:
    d = session.get(Deliverable, deliverable_id)
    if d is None or d.user_id != user_id:
        raise NotFound("no such deliverable")
    return d


def version_of_user(session: Session, user_id: str, version_id: str) -> tuple[Deliverable, DeliverableVersion]:
    v = session.get(DeliverableVersion, version_id)
    d = session.get(Deliverable, v.deliverable_id) if v is not None else None
    if v is None or d is None or d.user_id != user_id:
        raise NotFound("no such version")
    return d, v


def latest_review(session: Session, version_id: str) -> DeliverableReview | None:
    return session.scalars(select(DeliverableReview).where(DeliverableReview.version_id == version_id)
                           .order_by(DeliverableReview.created_at.desc(), DeliverableReview.id)).first()


def gold_version(store: DeltaStore, deliverable_id: str, version_id: str) -> dict[str, Any] | None:
    df = store.read(DELIVERABLE_VERSIONS, all_of(Eq("deliverable_id", deliverable_id), Eq("version_id", version_id)))
    return df.row(0, named=True) if df.height else None


def feedback_rows(store: DeltaStore, deliverable_id: str, version_id: str) -> pl.DataFrame:
    return store.read(DELIVERABLE_FEEDBACK, all_of(Eq("deliverable_id", deliverable_id),
                                                   Eq("version_id", version_id))).sort("created_at")


def blocked_signals(session: Session, user_id: str,
                    as_of: dt.datetime | None = None) -> dict[tuple[str, str], dt.datetime]:
    """(signal type, ref) -> until when the user's rejection blocks it (read by the signal screening);
    every block when ``as_of`` is None (a backfilled hour judges them at its own time)."""
    q = select(DeliverableReview.signal_type, DeliverableReview.signal_ref, DeliverableReview.blocked_until).where(
        DeliverableReview.user_id == user_id, DeliverableReview.action == "rejected",
        DeliverableReview.signal_type.is_not(None), DeliverableReview.blocked_until.is_not(None))
    if as_of is not None:
        q = q.where(DeliverableReview.blocked_until > as_of)
    rows = session.execute(q).all()
    out: dict[tuple[str, str], dt.datetime] = {}
    for stype, ref, until in rows:
        key = (str(stype), str(ref or ""))
        out[key] = max(until, out.get(key, until))
    return out


# ------------------------------------------------------------------------------------------ edit analysis
def edit_location(before: str, after: str) -> str | None:
    """Where an edit happened in the text before it (intro / body / conclusion; see the module docstring)."""
    lines = before.splitlines()
    n = max(1, len(lines))
    counts: Counter[str] = Counter()
    for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(a=lines, b=after.splitlines(), autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        for i in range(i1, max(i2, i1 + 1)):
            share = min(i, n - 1) / n
            counts["intro" if share < INTRO_SHARE else "conclusion" if share >= CONCLUSION_SHARE else "body"] += 1
    if not counts:
        return None
    best = max(counts.values())
    winners = [k for k, v in counts.items() if v == best]
    return "body" if len(winners) > 1 else winners[0]


def unified_diff(before: str, after: str, label: str) -> tuple[str, int, int]:
    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), f"{label} (delivered)",
                                     f"{label} (edited)", lineterm=""))
    added = sum(1 for x in diff if x.startswith("+") and not x.startswith("+++"))
    removed = sum(1 for x in diff if x.startswith("-") and not x.startswith("---"))
    return "\n".join(diff), added, removed


# ------------------------------------------------------------------------------------------ writes
def _feedback_row(d: Deliverable, v: DeliverableVersion, user_id: str, action: str, now: dt.datetime,
                  **fields: Any) -> dict[str, Any]:
    return {"deliverable_id": d.id, "feedback_id": fields.pop("feedback_id"), "version_id": v.id,
            "version_number": v.version_number, "user_id": user_id, "action": action, "created_at": now, **fields}


def _write_feedback(store: DeltaStore, row: dict[str, Any]) -> None:
    df = pl.DataFrame([row], schema=dict(DELIVERABLE_FEEDBACK.schema), strict=False)
    store.merge(DELIVERABLE_FEEDBACK, df, pin=Eq("deliverable_id", row["deliverable_id"]))


def _event(store: DeltaStore, d: Deliverable, v: DeliverableVersion, event_type: str, review_id: str,
           summary: str, now: dt.datetime, **metadata: Any) -> None:
    write_events(store, [ActivityEvent(
        user_id=d.user_id, event_type=event_type, summary=summary, idempotency_key=review_id, event_ref=v.id,
        created_at=now, metadata={"deliverable_id": d.id, "version_id": v.id, "version_number": v.version_number,
                                  "deliverable_type": d.deliverable_type, "review_id": review_id, **metadata},
    )])


def _repeat(existing: DeliverableReview, d: Deliverable, v: DeliverableVersion) -> Review:
    return Review(existing.id, existing.action, d.id, v.id, v.version_number, existing.created_at, repeated=True,
                  blocked_until=existing.blocked_until)


def approve(store: DeltaStore, session_factory: SessionFactory, *, user_id: str, version_id: str,
            now: dt.datetime | None = None) -> Review:
    now = now or utcnow()
    with session_factory() as session:
        d, v = version_of_user(session, user_id, version_id)
        last = latest_review(session, v.id)
        if last is not None and last.action == "approved":
            return _repeat(last, d, v)
        edited = session.scalars(select(DeliverableReview.id).where(
            DeliverableReview.version_id == v.id, DeliverableReview.action == "edited")).first() is not None
        review = DeliverableReview(id=new_id(), user_id=user_id, deliverable_id=d.id, version_id=v.id,
                                   action="approved", created_at=now)
        session.add(review)
        session.flush()
        session.expunge_all()
    _write_feedback(store, _feedback_row(d, v, user_id, "approved", now, feedback_id=review.id))
    # the edits themselves were counted by their deliverable_edited events: ``had_edits`` stays false
    _event(store, d, v, "deliverable_approved", review.id, f"Approved {d.title} v{v.version_number}", now,
           had_edits=False, edited_before=edited)
    return Review(review.id, "approved", d.id, v.id, v.version_number, now)


def reject(store: DeltaStore, session_factory: SessionFactory, *, user_id: str, version_id: str,
           reason: str | None = None, block_days: int = 30, now: dt.datetime | None = None) -> Review:
    """Reject a version; a signal-created deliverable's signal is not proposed again for ``block_days``."""
    now = now or utcnow()
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON_CHARS:
        raise FeedbackError(f"a reason is at most {MAX_REASON_CHARS} characters")
    with session_factory() as session:
        d, v = version_of_user(session, user_id, version_id)
        last = latest_review(session, v.id)
        if last is not None and last.action == "rejected":
            return _repeat(last, d, v)
        signal = (d.type_config or {}).get("signal") or {}
        signal_type = (signal.get("signal_type") or d.deliverable_type) if d.origin == "signal_emergent" else None
        blocked = now + dt.timedelta(days=block_days) if signal_type and block_days > 0 else None
        review = DeliverableReview(id=new_id(), user_id=user_id, deliverable_id=d.id, version_id=v.id,
                                   action="rejected", signal_type=signal_type,
                                   signal_ref=(d.signal_ref or signal.get("signal_ref")) if signal_type else None,
                                   blocked_until=blocked, created_at=now)
        session.add(review)
        session.flush()
        session.expunge_all()
    _write_feedback(store, _feedback_row(d, v, user_id, "rejected", now, feedback_id=review.id, reason=reason or None))
    _event(store, d, v, "deliverable_rejected", review.id, f"Rejected {d.title} v{v.version_number}", now,
           origin=d.origin, signal_type=signal_type, blocked_until=blocked.isoformat() if blocked else None,
           reason_chars=len(reason))
    return Review(review.id, "rejected", d.id, v.id, v.version_number, now, blocked_until=blocked)


def edit(store: DeltaStore, session_factory: SessionFactory, *, user_id: str, version_id: str, content: str,
         now: dt.datetime | None = None) -> Review:
    """Replace the version's text with the user's; the diff is kept, the pattern rules get the counts."""
    from yarn_assets.deliverables.versions import write_gold

    now = now or utcnow()
    if not content.strip():
        raise FeedbackError("an edit needs the new text (to drop a version, reject it)")
    if len(content) > MAX_EDIT_CHARS:
        raise FeedbackError(f"an edited version is at most {MAX_EDIT_CHARS} characters")
    with session_factory() as session:
        d, v = version_of_user(session, user_id, version_id)
        session.expunge_all()
    row = gold_version(store, d.id, v.id)
    before = (row or {}).get("final_content") or ""
    if row is None or not before.strip():
        raise FeedbackError(f"version {v.version_number} has no stored text to edit")
    diff, added, removed = unified_diff(before, content, f"{d.title} v{v.version_number}")
    location = edit_location(before, content)
    review_id = new_id()
    with session_factory() as session:
        session.add(DeliverableReview(id=review_id, user_id=user_id, deliverable_id=d.id, version_id=v.id,
                                      action="edited", chars_before=len(before), chars_after=len(content),
                                      created_at=now))
    _write_feedback(store, _feedback_row(d, v, user_id, "edited", now, feedback_id=review_id, content_before=before,
                                         content_after=content, diff=diff, lines_added=added, lines_removed=removed,
                                         edit_location=location))
    write_gold(store, {**row, "final_content": content})
    _event(store, d, v, "deliverable_edited", review_id, f"Edited {d.title} v{v.version_number}", now,
           draft_length=len(before), final_length=len(content), draft_bullets=len(_BULLET.findall(before)),
           final_bullets=len(_BULLET.findall(content)), edit_location=location, lines_added=added,
           lines_removed=removed)
    return Review(review_id, "edited", d.id, v.id, v.version_number, now, diff=diff, edit_location=location)
