"""``user_context``: each user's current memory, its bi-temporal history, and the one upsert rule.

**Where it lives.** The control plane (SQLAlchemy), not a gold Delta table: every writer (the
nightly extraction, patterns, edit feedback, ``yarnnn memory set``, a chat app) does a small
read-compare-write on one ``(user, key)`` that must be atomic, prompts read one user's rows at
request time, and the volume is tens of rows per user. Delta would turn each of those into a
file-rewriting merge that races other writers. The gold Delta table
``gold/memory_facts`` keeps the nightly audit trail (every candidate and its decision).

**The rule.** A new assertion replaces the current value when it ranks higher by
``(source priority, confidence, valid_from)``, with priority ``user_stated > conversation >
feedback > pattern``. So the current value is the maximum over every assertion ever made for the
key, whatever order nights are processed in (backfills are order-independent), and replaying a
night changes nothing (assertion ids are deterministic, so a replay is recognised and skipped).

**History.** Nothing is overwritten: ``user_context_history`` keeps every assertion with
``valid_from``/``valid_to`` (world time) and ``recorded_at``/``expired_at`` (system time), as
graphiti's edges. A replaced value becomes ``superseded`` (with ``superseded_by``), a
contradiction that lost becomes ``outranked``, a value the user removed ``retracted``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane.models import UserContext, UserContextHistory, utcnow
from yarn_assets.core.user_memory import PROMPT_PREFIXES, for_prompt  # noqa: F401  (re-exported: memory's published read)

PRIORITY: dict[str, int] = {"user_stated": 10, "conversation": 5, "feedback": 3, "pattern": 1}
NAMESPACES = ("fact", "preference", "instruction", "pattern")
KEY_RE = re.compile(r"^(fact|preference|instruction|pattern):[a-z0-9][a-z0-9_]{0,79}$")
MAX_VALUE_CHARS = 500

_NS = uuid.UUID("8c1e7a52-3f0d-4e8b-a1c6-2d9f4b7e6a31")

Action = Literal["inserted", "replaced", "upgraded", "unchanged", "outranked", "replayed"]


class InvalidAssertion(ValueError):
    """A key outside the namespaces, an unknown source, a confidence outside [0, 1], an empty value."""


def normalize_value(value: str) -> str:
    """Case, whitespace and trailing punctuation do not make a different value."""
    return re.sub(r"\s+", " ", value).strip().rstrip(".!;,").strip().lower()


def slug(text: str, max_words: int = 4) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())[:max_words]
    return "_".join(words)[:60] or "note"


@dataclass(frozen=True)
class Assertion:
    """Someone or something says ``key = value`` about a user, at ``observed_at``."""

    user_id: str
    key: str
    value: str
    source: str
    confidence: float
    observed_at: dt.datetime
    source_ref: str | None = None

    def __post_init__(self) -> None:
        if not KEY_RE.match(self.key):
            raise InvalidAssertion(
                f"memory key {self.key!r} must look like fact:x, preference:x, instruction:x or pattern:x "
                "(lowercase letters, digits, underscores)"
            )
        if self.source not in PRIORITY:
            raise InvalidAssertion(f"unknown memory source {self.source!r}; known: {sorted(PRIORITY)}")
        if not 0.0 <= self.confidence <= 1.0:
            raise InvalidAssertion(f"confidence {self.confidence} is outside [0, 1]")
        if not self.value.strip():
            raise InvalidAssertion(f"empty value for {self.key}")
        if len(self.value) > MAX_VALUE_CHARS:
            raise InvalidAssertion(f"value of {self.key} is longer than {MAX_VALUE_CHARS} characters")
        if self.observed_at.tzinfo is None:
            raise InvalidAssertion("observed_at must be timezone-aware (UTC)")

    @property
    def id(self) -> str:
        return assertion_id(self.user_id, self.key, self.value, self.source, self.source_ref)

    @property
    def rank(self) -> tuple[int, float, dt.datetime]:
        return rank(self.source, self.confidence, self.observed_at)


def assertion_id(user_id: str, key: str, value: str, source: str, source_ref: str | None) -> str:
    return str(uuid.uuid5(_NS, f"{user_id}|{key}|{normalize_value(value)}|{source}|{source_ref or ''}"))


def rank(source: str, confidence: float, observed_at: dt.datetime) -> tuple[int, float, dt.datetime]:
    return (PRIORITY.get(source, 0), round(float(confidence), 4), observed_at.astimezone(dt.UTC))


@dataclass(frozen=True)
class UpsertOutcome:
    action: Action
    assertion_id: str
    current_value: str
    current_source: str
    replaced_value: str | None = None
    history_status: str | None = None  # for a replay: the status the assertion has in history

    @property
    def changed(self) -> bool:
        """The current value (or its source/confidence) changed: worth a memory_written event."""
        return self.action in ("inserted", "replaced", "upgraded")


def upsert(session: Session, a: Assertion, *, now: dt.datetime | None = None) -> UpsertOutcome:
    """Apply ``a`` under the rule above; safe against a concurrent writer of the same key (one retry)."""
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                return _upsert(session, a, now or utcnow())
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _current(session: Session, user_id: str, key: str) -> UserContext | None:
    return session.scalars(
        select(UserContext).where(UserContext.user_id == user_id, UserContext.key == key).with_for_update()
    ).first()


def _upsert(session: Session, a: Assertion, now: dt.datetime) -> UpsertOutcome:
    aid = a.id
    seen = session.get(UserContextHistory, aid)
    cur = _current(session, a.user_id, a.key)
    if seen is not None:
        return UpsertOutcome("replayed", aid, cur.value if cur else seen.value, cur.source if cur else seen.source,
                             history_status=seen.status)
    if cur is None:
        session.add(_history(a, "current", now))
        session.add(UserContext(user_id=a.user_id, key=a.key, value=a.value, source=a.source,
                                confidence=a.confidence, source_ref=a.source_ref, valid_from=a.observed_at,
                                assertion_id=aid))
        session.flush()
        return UpsertOutcome("inserted", aid, a.value, a.source, history_status="current")
    old = session.get(UserContextHistory, cur.assertion_id)
    same_value = normalize_value(cur.value) == normalize_value(a.value)
    if same_value:  # restating the current value is news only from a stronger source or with more confidence
        higher = a.rank[:2] > rank(cur.source, cur.confidence, cur.valid_from)[:2]
    else:  # rank the current value by its own assertion's time (an upgrade keeps the older valid_from)
        higher = a.rank > rank(cur.source, cur.confidence, old.valid_from if old is not None else cur.valid_from)
    if same_value and not higher:
        return UpsertOutcome("unchanged", aid, cur.value, cur.source)
    if not higher:
        row = _history(a, "outranked", now)
        row.valid_to = a.observed_at
        row.expired_at = now
        row.reason = (f"outranked by the current value {cur.value!r} ({cur.source}, confidence "
                      f"{cur.confidence:.2f}, since {cur.valid_from.date().isoformat()})")
        session.add(row)
        session.flush()
        return UpsertOutcome("outranked", aid, cur.value, cur.source, history_status="outranked")
    if old is not None:
        old.status = "superseded"
        old.superseded_by = aid
        old.expired_at = now
        if same_value:
            old.reason = f"restated by {a.source} with confidence {a.confidence:.2f}"
        else:
            old.valid_to = max(a.observed_at, old.valid_from)
            old.reason = f"replaced by {a.source} value {a.value!r}"
    session.add(_history(a, "current", now))
    replaced = cur.value
    cur.value = cur.value if same_value else a.value
    cur.source, cur.confidence, cur.source_ref, cur.assertion_id = a.source, a.confidence, a.source_ref, aid
    if not same_value:
        cur.valid_from = a.observed_at
    cur.updated_at = now
    session.flush()
    return UpsertOutcome("upgraded" if same_value else "replaced", aid, cur.value, a.source,
                         None if same_value else replaced, "current")


def _history(a: Assertion, status: str, now: dt.datetime) -> UserContextHistory:
    return UserContextHistory(
        id=a.id, user_id=a.user_id, key=a.key, value=a.value, source=a.source, confidence=a.confidence,
        source_ref=a.source_ref, status=status, valid_from=a.observed_at, recorded_at=now,
    )


def retract(session: Session, user_id: str, key: str, *, now: dt.datetime | None = None,
            reason: str = "removed by the user") -> bool:
    """Remove the current value of ``key`` (kept in history as retracted); False if there was none."""
    now = now or utcnow()
    cur = _current(session, user_id, key)
    if cur is None:
        return False
    old = session.get(UserContextHistory, cur.assertion_id)
    if old is not None:
        old.status, old.valid_to, old.expired_at, old.reason = "retracted", now, now, reason
    session.delete(cur)
    session.flush()
    return True


def current(session: Session, user_id: str) -> list[UserContext]:
    """The user's current memory, highest confidence first."""
    return list(session.scalars(
        select(UserContext).where(UserContext.user_id == user_id)
        .order_by(UserContext.confidence.desc(), UserContext.key)
    ))


def history(session: Session, user_id: str, key: str | None = None) -> list[UserContextHistory]:
    q = select(UserContextHistory).where(UserContextHistory.user_id == user_id)
    if key is not None:
        q = q.where(UserContextHistory.key == key)
    return list(session.scalars(q.order_by(UserContextHistory.key, UserContextHistory.valid_from,
                                           UserContextHistory.id)))
