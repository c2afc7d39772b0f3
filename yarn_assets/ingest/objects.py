"""What readers produce (raw objects for bronze) and what normalizers produce (items for silver).

Readers turn an export file or an API response into :class:`RawObject` s without interpreting
them; anything they cannot even split is a :class:`Reject`. Normalizers turn the raw objects of
one batch into :class:`ContentItem` s (or rejects). Both are pure functions, tested byte for byte
against ``shared/corpus``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RawObject:
    """One object exactly as read: the bytes plus what the reader knew around them."""

    object_type: str  # e.g. slack_message, slack_users, email_message, ics_calendar, notion_page_md
    external_id: str  # stable within (user, platform, resource)
    raw: bytes
    resource_id: str = ""
    resource_name: str = ""
    context: dict[str, Any] = field(default_factory=dict)  # JSON-serializable
    is_tombstone: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


@dataclass(frozen=True)
class Reject:
    """Something that could not be read or normalized; kept with its reason and raw bytes."""

    reason: str
    raw: bytes = b""
    location: str = ""  # file or zip member path, or API resource
    object_type: str = ""
    external_id: str = ""


@dataclass(frozen=True)
class BronzeObject:
    """A raw object as stored in bronze, handed to normalizers (adds batch facts to RawObject)."""

    object_type: str
    external_id: str
    raw: bytes
    resource_id: str
    resource_name: str
    context: dict[str, Any]
    is_tombstone: bool
    seq: int
    batch_id: str
    provider: str
    raw_sha256: str
    fetched_at: dt.datetime


@dataclass
class ContentItem:
    """A normalized item: one future silver row (the writer adds user, TTL, hash and batch facts)."""

    resource_id: str
    external_id: str
    content_type: str  # message | thread_reply | email | page | database_row | event
    content: str
    resource_name: str = ""
    title: str | None = None
    author: str | None = None
    author_id: str | None = None
    participants: list[str] = field(default_factory=list)
    thread_id: str | None = None
    occurred_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    source_created_at: dt.datetime | None = None  # immutable creation time -> created_day partition
    source_updated_at: dt.datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    is_deleted: bool = False  # tombstone: remove the item from silver
    seq: int = 0  # position of the bronze object (later wins inside a batch)
    raw_sha256: str = ""

    def __post_init__(self) -> None:
        for name in ("occurred_at", "ends_at", "source_created_at", "source_updated_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware (UTC), got {value!r}")


def parse_utc(value: Any) -> dt.datetime | None:
    """An ISO 8601 time from an API (``Z`` or an offset; naive = UTC) as UTC, or None when it is not one."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
