"""The nightly memory work of one day: which sessions are due, facts, summaries (pure-ish logic).

The assets in ``yarn_assets.memory.assets`` call these with the warehouse, the control plane and
the LLM; tests call them directly. Everything is keyed deterministically so a replayed night
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy.orm import Session

from control_plane.models import ChatSession, UserContextHistory
from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, In, all_of
from yarn_assets.core.activity_log import ActivityEvent
from yarn_assets.memory import junk, user_context
from yarn_assets.memory.chat import sessions_of_day
from yarn_assets.memory.extraction import (
    FACTS_SYSTEM,
    SUMMARY_SYSTEM,
    FactExtraction,
    SessionSummary,
    Turn,
    facts_prompt,
    offline_facts,
    offline_summary,
    summary_prompt,
)
from yarn_assets.memory.tables import CHAT_MESSAGES, FACT_CANDIDATES, SESSION_SUMMARIES

#: Session types the nightly run reads (the original: thinking_partner sessions).
MEMORY_SESSION_TYPES = ("thinking_partner",)
MIN_USER_MESSAGES_FACTS = 3
MIN_USER_MESSAGES_SUMMARY = 5
FACTS_MAX_TOKENS = 1024
SUMMARY_MAX_TOKENS = 256


@dataclass
class DueSession:
    user_id: str
    session_id: str
    session_day: str
    user_messages: int
    last_message_at: dt.datetime
    turns: list[Turn] = field(default_factory=list)

    @property
    def custom_id(self) -> str:
        """Stable, Message-Batches-safe id ([A-Za-z0-9_-]) of this session."""
        return hashlib.sha1(f"{self.user_id}|{self.session_id}".encode()).hexdigest()[:32]


def due_sessions(store: DeltaStore, day: str, min_user_messages: int,
                 users_of: Callable[[list[str]], list[str]] | None = None) -> list[DueSession]:
    """Sessions that started on ``day`` (UTC) with at least ``min_user_messages`` user turns, with turns.

    ``users_of`` narrows the day's users (to a shard's) before the messages are read: one scan of the
    day's messages for the users kept, never one per user."""
    sessions = sessions_of_day(store, day, MEMORY_SESSION_TYPES).filter(
        pl.col("user_message_count") >= min_user_messages
    )
    if users_of is not None and not sessions.is_empty():
        sessions = sessions.filter(pl.col("user_id").is_in(users_of(sessions["user_id"].unique().to_list())))
    if sessions.is_empty():
        return []
    messages = store.read(
        CHAT_MESSAGES, all_of(Eq("session_day", day), In("session_id", sessions["session_id"].to_list()))
    ).sort(["user_id", "session_id", "sequence"])
    turns: dict[tuple[str, str], list[Turn]] = {}
    for row in messages.iter_rows(named=True):
        turns.setdefault((row["user_id"], row["session_id"]), []).append(
            Turn(row["sequence"], row["role"], row["content"] or "", row["created_at"])
        )
    return [
        DueSession(r["user_id"], r["session_id"], day, r["user_message_count"], r["last_message_at"],
                   turns.get((r["user_id"], r["session_id"]), []))
        for r in sessions.iter_rows(named=True)
    ]


def facts_request_parts(s: DueSession) -> tuple[str, str]:
    return FACTS_SYSTEM, facts_prompt(s.turns)


def summary_request_parts(s: DueSession) -> tuple[str, str]:
    return SUMMARY_SYSTEM, summary_prompt(s.turns, s.session_day)


def offline_facts_for(s: DueSession) -> FactExtraction:
    return offline_facts(s.turns)


def offline_summary_for(s: DueSession) -> SessionSummary:
    return offline_summary(s.turns)


# --------------------------------------------------------------------------- facts
@dataclass
class FactsOutcome:
    rows: list[dict[str, Any]] = field(default_factory=list)  # FACT_CANDIDATES rows
    events: list[ActivityEvent] = field(default_factory=list)
    decisions: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)


def apply_facts(
    session: Session,
    day: str,
    user_id: str,
    extracted: Sequence[tuple[DueSession, FactExtraction]],
    *,
    extractor: str,
    offline: bool,
    now: dt.datetime,
) -> FactsOutcome:
    """Screen one user's candidates of the night and upsert the survivors (see junk and user_context)."""
    out = FactsOutcome()
    candidates: list[tuple[DueSession, Any, str, dt.datetime, str | None]] = []
    for s, extraction in extracted:
        users = [t for t in s.turns if t.role == "user"]
        for fact in extraction.facts:
            turn = users[fact.evidence - 1] if fact.evidence and 0 < fact.evidence <= len(users) else None
            source = "user_stated" if fact.explicit else "conversation"
            ref = f"chat:{s.session_id}:{turn.sequence}" if turn else f"chat:{s.session_id}"
            observed = _turn_time(s, turn) if turn else s.last_message_at
            candidates.append((s, fact, source, observed, ref))
    if not candidates:
        return out
    existing = [junk.Existing(r.key, r.value, r.source, r.confidence) for r in user_context.current(session, user_id)]
    ids = [user_context.assertion_id(user_id, f.key, f.value, src, ref) for _, f, src, _, ref in candidates]
    known = {h.id: h for h in session.query(UserContextHistory).filter(UserContextHistory.id.in_(ids))}
    # a user turn echoing a system message is a pasted prompt or a recalled memory (the chat app
    # injects memory there), never news; echoing the assistant is normal ("Noted: you're …")
    others = [t.content for s in {id(c[0]): c[0] for c in candidates}.values() for t in s.turns if t.role == "system"]
    screened = junk.screen(
        [(f.key, f.value, src, f.confidence) for _, f, src, _, _ in candidates],
        existing,
        others,
        replayed=[i in known for i in ids],
    )
    for (s, fact, source, observed, ref), verdict, cid in zip(candidates, screened, ids, strict=True):
        decision, reason = "rejected", verdict.reason
        if cid in known:
            decision = "outranked" if known[cid].status == "outranked" else "kept"
            reason = None
        elif verdict.kept:
            assertion = user_context.Assertion(user_id=user_id, key=fact.key, value=fact.value, source=source,
                                               confidence=fact.confidence, observed_at=observed, source_ref=ref)
            result = user_context.upsert(session, assertion, now=now)
            if result.action == "outranked":
                decision = "outranked"
            elif result.action == "unchanged":
                decision, reason = "rejected", "duplicate"
            else:
                decision = "kept"
                out.events.append(ActivityEvent(
                    user_id=user_id, event_type="memory_written", summary=f"Noted: {fact.value[:60]}",
                    idempotency_key=cid, event_ref=cid, created_at=observed,
                    event_date=dt.date.fromisoformat(day),
                    metadata={"key": fact.key, "source": source, "confidence": fact.confidence,
                              "session_id": s.session_id, "action": result.action},
                ))
        out.decisions[decision] += 1
        if decision == "rejected" and reason:
            out.rejected[reason] += 1
        out.rows.append({
            "candidate_id": cid, "user_id": user_id, "session_day": day, "session_id": s.session_id,
            "key": fact.key, "value": fact.value, "source": source, "confidence": fact.confidence,
            "observed_at": observed, "decision": decision, "reason": reason, "extractor": extractor,
            "offline": offline,
        })
    return out


def _turn_time(s: DueSession, turn: Turn) -> dt.datetime:
    return turn.created_at or s.last_message_at


def candidates_frame(rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    if not rows:
        return FACT_CANDIDATES.empty()
    return FACT_CANDIDATES.conform(pl.DataFrame(list(rows), schema=dict(FACT_CANDIDATES.schema)))


# --------------------------------------------------------------------------- summaries
def summary_row(s: DueSession, summary: str, model: str, offline: bool) -> dict[str, Any]:
    text = " ".join(summary.split())
    return {
        "user_id": s.user_id, "session_id": s.session_id, "session_day": s.session_day,
        "summary": f"[{s.session_day}] {text}", "user_message_count": s.user_messages,
        "last_message_at": s.last_message_at, "model": model, "offline": offline,
    }


def summaries_frame(rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    if not rows:
        return SESSION_SUMMARIES.empty()
    return SESSION_SUMMARIES.conform(pl.DataFrame(list(rows), schema=dict(SESSION_SUMMARIES.schema)))


def write_back_summaries(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Store each summary with its chat-app session (``chat_sessions.summary``), as the original did."""
    written = 0
    for row in rows:
        cs = session.get(ChatSession, row["session_id"])
        if cs is not None and cs.user_id == row["user_id"] and cs.summary != row["summary"]:
            cs.summary = row["summary"]
            written += 1
    return written


def summary_event(row: dict[str, Any]) -> ActivityEvent:
    return ActivityEvent(
        user_id=row["user_id"], event_type="session_summary_written",
        summary=f"Summarized a {row['user_message_count']}-message chat session",
        idempotency_key=f"summary:{row['session_id']}", event_ref=row["session_id"],
        created_at=row["last_message_at"], event_date=dt.date.fromisoformat(row["session_day"]),
        metadata={"session_id": row["session_id"], "model": row["model"], "offline": row["offline"]},
    )
