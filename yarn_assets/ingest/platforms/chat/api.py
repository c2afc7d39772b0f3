"""The chat platform's live source: the chat app's own control-plane tables (chat_sessions, session_messages).

Read per UTC day; the rows have the same shape as imported lines, so both meet in one silver merge.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from control_plane.models import ChatSession, SessionMessage
from yarn_assets.ingest.platforms.chat.normalize import content_hash


def chat_app_rows(session: Session, day: dt.date) -> list[dict[str, Any]]:
    """Messages of chat-app sessions that started or were updated on ``day`` (UTC)."""
    lo = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    hi = lo + dt.timedelta(days=1)
    sessions = session.scalars(
        select(ChatSession).where(
            or_(
                (ChatSession.started_at >= lo) & (ChatSession.started_at < hi),
                (ChatSession.updated_at >= lo) & (ChatSession.updated_at < hi),
            )
        ).order_by(ChatSession.id)
    ).all()
    rows: list[dict[str, Any]] = []
    for cs in sessions:
        messages = session.scalars(
            select(SessionMessage).where(SessionMessage.session_id == cs.id).order_by(SessionMessage.sequence_number)
        ).all()
        for m in messages:
            rows.append({
                "user_id": cs.user_id,
                "session_id": cs.id,
                "sequence": m.sequence_number,
                "role": m.role,
                "content": m.content,
                "content_hash": content_hash(m.role, m.content),
                "created_at": m.created_at,
                "session_type": cs.session_type,
                "metadata": json.dumps(m.meta or {}, sort_keys=True, default=str, ensure_ascii=False),
                "source_kind": "chat_app",
                "batch_id": f"chat_app:{cs.id}",
                "fetched_at": cs.updated_at,  # deterministic: replays produce the same version
                "ingest_date": day,
                "session_started_at": cs.started_at,
                "session_status": cs.status,
                "session_ended_at": cs.ended_at,
                "session_updated_at": cs.updated_at,
            })
    return rows
