"""What one bronze batch shares while people facts are extracted from it, and the output rows."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from yarn_assets.core.tables import UNDATED
from yarn_assets.ingest.normalizers import normalize_batch_frame
from yarn_assets.people.tables import CALENDAR_EVENTS, IDENTITY_EVIDENCE, INTERACTIONS, item_key_expr

#: Most participants recorded per item (a 2 000-person announcement keeps its first 200).
MAX_PARTICIPANTS_PER_ITEM = 200
_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>")
_PARENT = re.compile(r'"parent_user_id"\s*:\s*"([UW][A-Z0-9]+)"')


@dataclass(frozen=True)
class Limits:
    max_recipients: int = 50
    phone_region: str | None = None
    history_days: int = 3650
    future_days: int = 180
    max_instances: int = 1000


@dataclass
class Extract:
    interactions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    users: set[str] = field(default_factory=set)
    expired: set[tuple[str, int]] = field(default_factory=set)  # (batch_id, seq) whose body is gone

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        interactions = _frame(INTERACTIONS, self.interactions)
        if interactions.height:
            interactions = interactions.with_columns(item_key_expr(
                pl.col("user_id"), pl.col("platform"), pl.col("resource_id"), pl.col("external_id")).alias("item_key"))
        events = _frame(CALENDAR_EVENTS, self.events)
        if events.height:
            events = events.with_columns(item_key_expr(
                pl.col("user_id"), pl.lit("calendar"), pl.col("calendar_id"), pl.col("instance_id")).alias("item_key"))
        return interactions, events, _frame(IDENTITY_EVIDENCE, self.evidence)


def _frame(spec: Any, rows: list[dict[str, Any]]) -> pl.DataFrame:
    if not rows:
        return spec.empty()
    df = pl.DataFrame(rows, schema=dict(spec.schema), strict=False)
    return df.sort([c for c in ("user_id", "batch_id", "seq") if c in df.columns])


def _day(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).date().isoformat() if value is not None else UNDATED


class _Batch:
    """What one bronze batch shares: its user, landing facts and self addresses."""

    def __init__(self, frame: pl.DataFrame, own: frozenset[str], limits: Limits, out: Extract) -> None:
        first = frame.row(0, named=True)
        self.user_id: str = first["user_id"]
        self.platform: str = first["platform"]
        self.ingest_date: dt.date = first["ingest_date"]
        self.batch_id: str = first["batch_id"]
        self.fetched_at: dt.datetime = first["fetched_at"]
        self.own = set(own)
        self.limits = limits
        self.out = out

    def evidence(self, a: str, b: str, rule: str, confidence: float, reason: str, seq: int,
                 name: str | None = None) -> None:
        self.out.evidence.append({
            "user_id": self.user_id, "platform": self.platform, "ingest_date": self.ingest_date, "a": a, "b": b,
            "rule": rule, "confidence": confidence, "reason": reason, "name": name,
            "ref": f"{self.batch_id}:{seq}", "observed_at": self.fetched_at, "batch_id": self.batch_id, "seq": seq,
        })

    def self_evidence(self, identifier: str, rule: str, reason: str, seq: int) -> None:
        if identifier not in self.own:
            self.own.add(identifier)
        self.evidence("self", identifier, rule, 1.0, reason, seq)

    def row(self, item: dict[str, Any], *, participant: str, address: str, name: str | None, name_source: str | None,
            role: str, direction: str, response: str | None = None) -> None:
        self.out.interactions.append({
            **item, "participant": participant, "participant_address": address, "participant_name": name,
            "name_source": name_source if name else None, "role": role, "direction": direction,
            "response_status": response, "is_self": participant in self.own, "is_deleted": False,
        })

    def tombstone(self, item: dict[str, Any]) -> None:
        self.out.interactions.append({**item, "participant": "", "participant_address": "", "participant_name": None,
                                      "name_source": None, "role": "tombstone", "direction": "none",
                                      "response_status": None, "is_self": False, "is_deleted": True})

    def item(self, *, channel: str, resource_id: str, resource_name: str | None, external_id: str,
             created_day: str, thread_id: str | None, occurred_at: dt.datetime | None, subject: str | None,
             sender: str | None, seq: int, is_bulk: bool = False, bulk: str | None = None) -> dict[str, Any]:
        return {
            "user_id": self.user_id, "platform": self.platform, "ingest_date": self.ingest_date, "channel": channel,
            "item_key": None, "resource_id": resource_id,
            "resource_name": resource_name, "external_id": external_id, "created_day": created_day,
            "thread_id": thread_id, "occurred_at": occurred_at, "subject": (subject or "")[:300] or None,
            "sender": sender, "is_bulk": is_bulk, "bulk_reason": bulk, "fetched_at": self.fetched_at,
            "batch_id": self.batch_id, "seq": seq,
        }




def _items(frame: pl.DataFrame) -> pl.DataFrame:
    items, _rejects = normalize_batch_frame(frame)  # rejects are silver's business (bronze/rejects)
    return items

