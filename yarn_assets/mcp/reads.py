"""What an assistant may read of ONE user's context, and the one thing it may write (a stated fact).

Every function takes the user id first and filters by it in the read itself (Delta predicate or SQL
``WHERE user_id = …``): an id that belongs to someone else answers exactly like an id that does not
exist (:class:`NotFound`), so the tools are no existence oracle. Sizes are bounded (text per item,
items per thread, results per call).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.models import Deliverable
from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, all_of
from yarn_assets.core import user_memory
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS
from yarn_assets.memory import user_context
from yarn_assets.people import retrieval, timeline
from yarn_assets.people.tables import item_key_expr

MAX_ITEM_CHARS = 20_000
MAX_THREAD_ITEMS = 50
MAX_DELIVERABLE_CHARS = 20_000
MAX_MEETINGS = 100
MAX_DAYS_AHEAD = 60
ITEM_KEY_CHARS = 24


class NotFound(LookupError):
    """No such object for this user (whether it exists for someone else is not said)."""


class BadRequest(ValueError):
    """An argument outside its documented range."""


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _clip(text: str | None, limit: int) -> tuple[str, bool]:
    text = text or ""
    return (text[:limit], True) if len(text) > limit else (text, False)


@dataclass
class UserReads:
    store: DeltaStore
    sessions: Callable[[], AbstractContextManager[Session]]
    embedder: Callable[[], Any]
    max_k: int = 50

    # ------------------------------------------------------------------ platform content
    def search(self, user_id: str, query: str, k: int = 10, platforms: list[str] | None = None,
               now: dt.datetime | None = None) -> list[dict[str, Any]]:
        if not 1 <= k <= self.max_k:
            raise BadRequest(f"k must be between 1 and {self.max_k}")
        try:
            hits = retrieval.search(self.store, user_id, query, k,
                                    retrieval.SearchFilters(platforms=tuple(platforms or ())),
                                    embedder=self.embedder(), max_k=self.max_k, now=now)
        except retrieval.SearchError as exc:
            raise BadRequest(str(exc)) from None
        return [{"item_key": h.item_key, "score": round(h.score, 4), "platform": h.platform,
                 "source": h.resource_name or h.resource_id, "type": h.content_type, "title": h.title,
                 "author": h.author, "occurred_at": _iso(h.occurred_at), "thread_id": h.thread_id,
                 "snippet": h.snippet} for h in hits]

    def _items(self, user_id: str, keys: pl.Expr) -> pl.DataFrame:
        lf = self.store.scan(PLATFORM_CONTENT, Eq("user_id", user_id))
        if lf is None:
            return pl.DataFrame()
        now = dt.datetime.now(dt.UTC)
        return (lf.with_columns(item_key_expr(pl.col("user_id"), pl.col("platform"), pl.col("resource_id"),
                                              pl.col("external_id")).alias("item_key"))
                .filter(pl.col("user_id") == user_id)
                .filter(pl.col("retained").fill_null(False) | pl.col("expires_at").is_null()
                        | (pl.col("expires_at") > now))
                .filter(keys)
                .select("item_key", "platform", "resource_id", "resource_name", "external_id", "content_type",
                        "thread_id", "title", "author", "participants", "content", "occurred_at", "ends_at")
                .sort("occurred_at", nulls_last=True)
                .head(MAX_THREAD_ITEMS + 1)
                .collect())

    @staticmethod
    def _item(row: dict[str, Any]) -> dict[str, Any]:
        text, clipped = _clip(row["content"], MAX_ITEM_CHARS)
        return {"item_key": row["item_key"], "platform": row["platform"],
                "source": row["resource_name"] or row["resource_id"], "type": row["content_type"],
                "title": row["title"], "author": row["author"], "participants": row["participants"] or [],
                "occurred_at": _iso(row["occurred_at"]), "ends_at": _iso(row["ends_at"]), "text": text,
                "truncated": clipped}

    def read_item(self, user_id: str, item_key: str) -> dict[str, Any]:
        """One message/mail/page/event by its ``item_key`` (from search), with its thread when it has one."""
        if not isinstance(item_key, str) or len(item_key) != ITEM_KEY_CHARS:
            raise NotFound("not found")
        found = self._items(user_id, pl.col("item_key") == item_key)
        if found.is_empty():
            raise NotFound("not found")
        row = found.row(0, named=True)
        out = self._item(row)
        if row["thread_id"]:
            thread = self._items(user_id, (pl.col("platform") == row["platform"])
                                 & (pl.col("resource_id") == row["resource_id"])
                                 & (pl.col("thread_id") == row["thread_id"]))
            out["thread"] = [self._item(r) for r in thread.head(MAX_THREAD_ITEMS).iter_rows(named=True)]
            out["thread_truncated"] = thread.height > MAX_THREAD_ITEMS
        return out

    # ------------------------------------------------------------------ calendar
    def upcoming_meetings(self, user_id: str, days: int = 7, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        if not 1 <= days <= MAX_DAYS_AHEAD:
            raise BadRequest(f"days must be between 1 and {MAX_DAYS_AHEAD}")
        now = now or dt.datetime.now(dt.UTC)
        df = timeline.calendar_events_of(self.store, user_id, since=now, until=now + dt.timedelta(days=days))
        out = []
        for r in df.iter_rows(named=True):
            if r.get("user_id") != user_id or r.get("is_cancelled"):
                continue
            out.append({k: (_iso(v) if isinstance(v, dt.datetime) else v) for k, v in r.items()
                        if k in ("item_key", "title", "starts_at", "ends_at", "all_day", "location", "organizer",
                                 "organizer_name", "attendees", "calendar_name", "self_response")})
            if len(out) == MAX_MEETINGS:
                break
        return out

    # ------------------------------------------------------------------ memory
    def memory(self, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
        if not 1 <= limit <= 200:
            raise BadRequest("limit must be between 1 and 200")
        with self.sessions() as session:
            rows = user_memory.for_prompt(session, user_id, limit)  # the published read into memory
            return [{"key": r.key, "value": r.value, "source": r.source, "confidence": r.confidence,
                     "since": _iso(r.valid_from)} for r in rows]

    def remember(self, user_id: str, key: str, value: str, now: dt.datetime | None = None) -> dict[str, Any]:
        """A fact the user states, as ``user_stated`` (outranks anything inferred), via memory's own rule."""
        now = now or dt.datetime.now(dt.UTC)
        try:
            assertion = user_context.Assertion(user_id=user_id, key=key, value=value, source="user_stated",
                                               confidence=1.0, observed_at=now, source_ref=f"mcp:{now.isoformat()}")
        except user_context.InvalidAssertion as exc:
            raise BadRequest(str(exc)) from None
        if key.startswith("pattern:"):
            raise BadRequest("pattern: keys are learned, not stated; use fact:, preference: or instruction:")
        with self.sessions() as session:
            outcome = user_context.upsert(session, assertion, now=now)
            return {"action": outcome.action, "key": key, "value": outcome.current_value,
                    "source": outcome.current_source}

    # ------------------------------------------------------------------ deliverables
    def recent_deliverables(self, user_id: str, limit: int = 5) -> list[dict[str, Any]]:
        if not 1 <= limit <= 20:
            raise BadRequest("limit must be between 1 and 20")
        with self.sessions() as session:
            items = list(session.scalars(select(Deliverable).where(Deliverable.user_id == user_id)
                                         .order_by(Deliverable.last_run_at.desc().nulls_last(),
                                                   Deliverable.created_at.desc()).limit(limit)))
            meta = [(d.id, d.title, d.deliverable_type, d.status) for d in items]
        out = []
        for deliverable_id, title, kind, status in meta:
            latest = self._latest_version(user_id, deliverable_id, preview=500)
            out.append({"deliverable_id": deliverable_id, "title": title, "type": kind, "status": status,
                        "latest_version": latest})
        return out

    def read_deliverable(self, user_id: str, deliverable_id: str) -> dict[str, Any]:
        with self.sessions() as session:
            d = session.scalars(select(Deliverable).where(Deliverable.id == deliverable_id,
                                                          Deliverable.user_id == user_id)).first()
            if d is None:
                raise NotFound("not found")
            head = {"deliverable_id": d.id, "title": d.title, "type": d.deliverable_type, "status": d.status}
        return {**head, "latest_version": self._latest_version(user_id, deliverable_id, MAX_DELIVERABLE_CHARS)}

    def _latest_version(self, user_id: str, deliverable_id: str, preview: int) -> dict[str, Any] | None:
        df = self.store.read(DELIVERABLE_VERSIONS, all_of(Eq("deliverable_id", deliverable_id), Eq("user_id", user_id)),
                             columns=["version_number", "status", "final_content", "draft_content", "generated_at",
                                      "delivery_status", "sources_used"])
        if df.is_empty():
            return None
        r = df.sort("version_number").row(-1, named=True)
        text, clipped = _clip(r["final_content"] or r["draft_content"], preview)
        try:
            sources = len(json.loads(r["sources_used"] or "[]"))
        except ValueError:
            sources = 0
        return {"version": r["version_number"], "status": r["status"], "generated_at": _iso(r["generated_at"]),
                "delivery_status": r["delivery_status"], "sources": sources, "text": text, "truncated": clipped}
