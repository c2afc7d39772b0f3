"""Chat normalization: imported JSONL lines (bronze/chat_items) and chat-app turns into silver.

Both paths produce the same message rows and meet in one merge, so a session looks the same
whichever way it arrived. Rules (each tested):

* key = (user_id, session_id, sequence); a turn whose role+content hash changed is updated,
  unless silver already holds a newer version (``fetched_at`` orders versions);
* a session keeps the ``session_day`` it was first given (the UTC day it started), even when
  later turns arrive in another import, so the nightly partitions never split a session;
* session rows (counts, first/last message) are recomputed from silver messages after the merge;
* a JSONL line that fails validation becomes a silver-stage reject with the reason, and a line
  claiming another user than its import job's user is rejected (one user's chat never lands
  under another user).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from io_managers.delta_store import DeltaStore, MergeStats
from io_managers.predicates import Eq, In, all_of
from yarn_assets.core.tables import UTC_TS
from yarn_assets.ingest.objects import Reject
from yarn_assets.ingest.platforms.chat.tables import BRONZE_CHAT_ITEMS, CHAT_MESSAGES, CHAT_SESSIONS

DEFAULT_SESSION_TYPE = "thinking_partner"
MAX_CONTENT_CHARS = 100_000

_MESSAGE_ROW = {**CHAT_MESSAGES.schema, "session_started_at": UTC_TS, "session_status": pl.Utf8,
                "session_ended_at": UTC_TS, "session_updated_at": UTC_TS}


class ChatLine(BaseModel):
    """One line of a chat JSONL import (documented in docs/chat_import.md)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    session_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
    user_id: str | None = Field(default=None, max_length=64)
    role: Literal["user", "assistant", "system"]
    content: str = Field(max_length=MAX_CONTENT_CHARS)
    created_at: AwareDatetime
    sequence: int = Field(ge=0)
    session_type: str = Field(default=DEFAULT_SESSION_TYPE, min_length=1, max_length=32)
    session_started_at: AwareDatetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


def content_hash(role: str, content: str) -> str:
    return hashlib.sha256(f"{role}\n{content}".encode()).hexdigest()


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


@dataclass
class ParsedBatch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def parse_import_batch(frame: pl.DataFrame) -> ParsedBatch:
    """Bronze rows of ONE import batch -> message rows and rejects (pure)."""
    out = ParsedBatch()
    for row in frame.sort("seq").iter_rows(named=True):
        raw: bytes = row["raw"] or b""
        try:
            line = ChatLine.model_validate_json(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in exc.errors()[:5]
            )
            out.rejects.append(Reject(reason=f"invalid chat line: {problems}", raw=raw,
                                      location=_location(row), object_type=row["object_type"],
                                      external_id=row["external_id"]))
            continue
        if line.user_id is not None and line.user_id != row["user_id"]:
            out.rejects.append(Reject(
                reason=f"line belongs to user {line.user_id!r} but the import job is for {row['user_id']!r}",
                raw=raw, location=_location(row), object_type=row["object_type"], external_id=row["external_id"],
            ))
            continue
        out.rows.append({
            "user_id": row["user_id"],
            "session_id": line.session_id,
            "sequence": line.sequence,
            "role": line.role,
            "content": line.content,
            "content_hash": content_hash(line.role, line.content),
            "created_at": _utc(line.created_at),
            "session_type": line.session_type,
            "metadata": json.dumps(line.metadata, sort_keys=True, default=str, ensure_ascii=False),
            "source_kind": "import",
            "batch_id": row["batch_id"],
            "fetched_at": row["fetched_at"],
            "ingest_date": row["ingest_date"],
            "session_started_at": _utc(line.session_started_at) if line.session_started_at else None,
            "session_status": "completed",
            "session_ended_at": None,
            "session_updated_at": None,
        })
    return out


def _location(row: dict[str, Any]) -> str:
    ctx = json.loads(row.get("context") or "{}")
    return f"{ctx.get('file', '')}:{ctx.get('line', '')}"


def read_import_rows(store: DeltaStore, ingest_date: dt.date) -> tuple[pl.DataFrame, dict[str, ParsedBatch]]:
    """Every import batch of one ingest day, parsed; returns (bronze rows, parsed per batch)."""
    bronze = store.read(BRONZE_CHAT_ITEMS, Eq("ingest_date", ingest_date))
    parsed: dict[str, ParsedBatch] = {}
    if bronze.is_empty():
        return bronze, parsed
    for (batch_id,), frame in bronze.group_by(["batch_id"], maintain_order=True):
        parsed[str(batch_id)] = parse_import_batch(frame)
    return bronze, parsed



def message_frame(rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=_MESSAGE_ROW)
    return pl.DataFrame(list(rows), schema=_MESSAGE_ROW)


def assign_session_days(store: DeltaStore, messages: pl.DataFrame) -> pl.DataFrame:
    """Give every message its session's ``session_day``: the one silver already has, else the start day."""
    if messages.is_empty():
        return messages.with_columns(pl.lit(None, pl.Utf8).alias("session_day"))
    starts = messages.group_by(["user_id", "session_id"]).agg(
        pl.coalesce(pl.col("session_started_at").min(), pl.col("created_at").min()).alias("_start")
    )
    known = store.read(
        CHAT_SESSIONS,
        all_of(In("user_id", starts["user_id"].unique().to_list()), In("session_id", starts["session_id"].to_list())),
        columns=["user_id", "session_id", "session_day"],
    ).rename({"session_day": "_known_day"})
    days = starts.join(known, on=["user_id", "session_id"], how="left").with_columns(
        pl.coalesce(pl.col("_known_day"), pl.col("_start").dt.date().cast(pl.Utf8)).alias("session_day")
    ).select(["user_id", "session_id", "session_day"])
    return messages.drop("session_day", strict=False).join(days, on=["user_id", "session_id"], how="left")


@dataclass
class ChatMergeResult:
    messages: MergeStats
    sessions: MergeStats
    message_rows: int
    session_rows: int
    session_days: list[str]
    users: list[str]


def merge_chat(store: DeltaStore, messages: pl.DataFrame) -> ChatMergeResult:
    """Merge message rows (``_MESSAGE_ROW`` + session_day) into silver, then rebuild their sessions."""
    if messages.is_empty():
        return ChatMergeResult(MergeStats(attempts=0), MergeStats(attempts=0), 0, 0, [], [])
    latest = messages.sort(["fetched_at"]).unique(
        subset=["user_id", "session_id", "sequence"], keep="last", maintain_order=True
    )
    days = sorted(latest["session_day"].unique().to_list())
    msg_stats = store.merge(
        CHAT_MESSAGES,
        latest.select(list(CHAT_MESSAGES.schema)),
        pin=In("session_day", days),
        update_when="t.content_hash <> s.content_hash AND t.fetched_at <= s.fetched_at",
    )
    sessions = build_sessions(store, latest, days)
    sess_stats = store.merge(
        CHAT_SESSIONS,
        sessions,
        pin=In("session_day", days),
        update_when=" OR ".join(
            f"(t.{c} IS DISTINCT FROM s.{c})" for c in CHAT_SESSIONS.schema if c not in CHAT_SESSIONS.keys
        ),
    )
    return ChatMergeResult(msg_stats, sess_stats, latest.height, sessions.height, days,
                           sorted(latest["user_id"].unique().to_list()))


def build_sessions(store: DeltaStore, batch: pl.DataFrame, days: list[str]) -> pl.DataFrame:
    """Session rows for the sessions of ``batch``, aggregated over all their silver messages."""
    keys = batch.select(["user_id", "session_id"]).unique()
    stored = store.read(
        CHAT_MESSAGES,
        all_of(In("session_day", days), In("session_id", keys["session_id"].to_list())),
        columns=["user_id", "session_id", "session_day", "role", "created_at", "session_type", "source_kind",
                 "batch_id"],
    ).join(keys, on=["user_id", "session_id"], how="semi")
    agg = stored.sort("created_at").group_by(["user_id", "session_id"]).agg(
        pl.col("session_day").first(),
        pl.col("session_type").first(),
        pl.col("source_kind").last(),
        pl.col("batch_id").last(),
        pl.col("created_at").min().alias("first_message_at"),
        pl.col("created_at").max().alias("last_message_at"),
        pl.len().cast(pl.Int64).alias("message_count"),
        (pl.col("role") == "user").sum().cast(pl.Int64).alias("user_message_count"),
    )
    meta = batch.sort("fetched_at").group_by(["user_id", "session_id"]).agg(
        pl.col("session_started_at").drop_nulls().min().alias("_started"),
        pl.col("session_status").last().alias("status"),
        pl.col("session_ended_at").last().alias("_ended"),
        pl.col("session_updated_at").last().alias("_updated"),
    )
    known = store.read(
        CHAT_SESSIONS, all_of(In("session_day", days), In("session_id", keys["session_id"].to_list())),
        columns=["user_id", "session_id", "started_at"],
    ).rename({"started_at": "_known_start"})
    out = (
        agg.join(meta, on=["user_id", "session_id"], how="left")
        .join(known, on=["user_id", "session_id"], how="left")
        .with_columns(
            pl.min_horizontal("_known_start", "_started", "first_message_at").alias("started_at"),
            pl.when(pl.col("source_kind") == "import").then(pl.col("last_message_at"))
            .otherwise(pl.col("_ended")).alias("ended_at"),
            pl.coalesce("_updated", "last_message_at").alias("updated_at"),
            pl.col("status").fill_null("completed"),
        )
    )
    return CHAT_SESSIONS.conform(out).select(list(CHAT_SESSIONS.schema))
