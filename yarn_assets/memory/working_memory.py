"""Working memory: the one text block prompts get about a user (signals, deliverables, chat).

``render_working_memory(store, session, user_id, now)`` renders, for that user only:

* **About you**: ``fact:`` rows, highest confidence first;
* **Your preferences**: ``preference:`` rows; **What you've told me**: ``instruction:`` rows;
* **Patterns I've noticed**: ``pattern:`` rows;
* **Recent conversations**: up to 3 session summaries of the last 7 days (300 characters each);
* **Recent activity**: the last 10 meaningful events of the last 7 days, newest first; noise
  (``yarn_assets.core.activity_log.NOISE_EVENT_TYPES``, and pattern/analysis runs that found
  nothing) is excluded *before* the limit, so it can never crowd real events out (the
  original's heartbeat bug).

At most 20 memory rows, and the whole block is capped near 2,000 tokens (8,000 characters).
The function only reads, never calls an LLM, and returns "" when there is nothing to say.
"""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
from sqlalchemy.orm import Session

from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, Window, all_of
from yarn_assets.core.activity_log import EVENT_TYPES, NOISE_EVENT_TYPES, read_events
from yarn_assets.memory import user_context
from yarn_assets.memory.tables import SESSION_SUMMARIES

MAX_CONTEXT_ROWS = 20
MAX_SUMMARIES = 3
SUMMARY_CHARS = 300
MAX_EVENTS = 10
LOOKBACK = dt.timedelta(days=7)
MAX_CHARS = 8000

SECTIONS = (
    ("fact", "About you"),
    ("preference", "Your preferences"),
    ("instruction", "What you've told me"),
    ("pattern", "Patterns I've noticed"),
)


def _meaningful(event_type: str, metadata: str | None) -> bool:
    """Bookkeeping runs that found nothing say nothing about the user's work."""
    if event_type not in ("pattern_detected", "conversation_analyzed"):
        return True
    try:
        meta = json.loads(metadata or "{}")
    except ValueError:
        return True
    return bool(meta.get("patterns") or meta.get("feedback") or meta.get("suggested"))


def recent_events(store: DeltaStore, user_id: str, now: dt.datetime, limit: int = MAX_EVENTS) -> pl.DataFrame:
    """The user's last ``limit`` meaningful events of the last 7 days, newest first."""
    kinds = sorted(EVENT_TYPES - NOISE_EVENT_TYPES)
    events = read_events(store, user_ids=[user_id], since=now - LOOKBACK, until=now, event_types=kinds)
    events = events.sort(["created_at", "event_id"], descending=True)
    keep = [_meaningful(t, m) for t, m in zip(events["event_type"], events["metadata"], strict=True)]
    return events.filter(pl.Series(keep, dtype=pl.Boolean)).head(limit)


def recent_summaries(store: DeltaStore, user_id: str, now: dt.datetime, limit: int = MAX_SUMMARIES) -> pl.DataFrame:
    lo = now - LOOKBACK
    days = [(lo.date() + dt.timedelta(days=i)).isoformat() for i in range((now.date() - lo.date()).days + 1)]
    pred = all_of(Window("session_day", days[0], (now.date() + dt.timedelta(days=1)).isoformat()),
                  Eq("user_id", user_id))
    df = store.read(SESSION_SUMMARIES, pred)
    df = df.filter((pl.col("last_message_at") >= lo) & (pl.col("last_message_at") <= now))
    return df.sort(["last_message_at", "session_id"], descending=True).head(limit)


def _line(text: str) -> str:
    return " ".join(text.split())


def render_working_memory(store: DeltaStore, session: Session, user_id: str, now: dt.datetime) -> str:
    """The user's working memory as Markdown-ish text for a prompt (see the module docstring)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    parts: list[str] = []
    rows = user_context.current(session, user_id)[:MAX_CONTEXT_ROWS]
    for namespace, title in SECTIONS:
        mine = [r for r in rows if r.key.startswith(f"{namespace}:")]
        if mine:
            lines = [f"- {r.key.split(':', 1)[1].replace('_', ' ')}: {_line(r.value)}" for r in mine]
            parts.append(f"## {title}\n" + "\n".join(lines))
    summaries = recent_summaries(store, user_id, now)
    if summaries.height:
        lines = [f"- {_line(s)[:SUMMARY_CHARS]}" for s in summaries["summary"].to_list()]
        parts.append("## Recent conversations\n" + "\n".join(lines))
    events = recent_events(store, user_id, now)
    if events.height:
        lines = [
            f"- {row['created_at'].astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC {row['event_type']}: {_line(row['summary'])}"
            for row in events.iter_rows(named=True)
        ]
        parts.append("## Recent activity (last 7 days)\n" + "\n".join(lines))
    text = "\n\n".join(parts)
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 1].rsplit("\n", 1)[0] + "\n…"
    return text
