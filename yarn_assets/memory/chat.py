"""Reads of the silver chat tables for the memory domain (the chat platform writes them, memory starts here)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, In, all_of
from yarn_assets.ingest.platforms.chat.tables import CHAT_MESSAGES, CHAT_SESSIONS


def sessions_of_day(store: DeltaStore, day: str, session_types: Sequence[str] | None = None) -> pl.DataFrame:
    pred = Eq("session_day", day)
    df = store.read(CHAT_SESSIONS, pred)
    if session_types is not None:
        df = df.filter(pl.col("session_type").is_in(list(session_types)))
    return df.sort(["user_id", "started_at", "session_id"])


def messages_of(store: DeltaStore, day: str, user_id: str, session_ids: Sequence[str]) -> pl.DataFrame:
    """Turns of some sessions of one user and session day, in order."""
    pred = all_of(Eq("session_day", day), Eq("user_id", user_id), In("session_id", list(session_ids)))
    return store.read(CHAT_MESSAGES, pred).sort(["session_id", "sequence"])
