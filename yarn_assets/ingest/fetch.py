"""What fetchers take and return: one selected resource in, raw objects plus its next cursor out."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from yarn_assets.ingest.objects import RawObject, Reject
from yarn_assets.ingest.objects import parse_utc as parse_iso

__all__ = ["Fetcher", "Prior", "Resource", "ResourceResult", "dumps", "parse_iso"]


@dataclass(frozen=True)
class Resource:
    """A channel, label, calendar, page or data source, as listed in the landscape."""

    id: str
    name: str
    type: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "metadata": self.metadata}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Resource:
        return cls(str(data["id"]), str(data.get("name") or data["id"]), str(data.get("type") or ""),
                   dict(data.get("metadata") or {}))


@dataclass
class Prior:
    """What sync_registry remembers about a resource."""

    cursor: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    last_synced_at: dt.datetime | None = None

    @property
    def first(self) -> bool:
        return self.cursor is None


@dataclass
class ResourceResult:
    """One resource's fetch: objects for bronze, and the cursor to store once they are committed."""

    resource: Resource
    objects: list[RawObject] = field(default_factory=list)
    cursor: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    source_latest_at: dt.datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)  # fetched, new, edited, tombstones, filtered...
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # partial failures (the resource still synced)
    rejects: list[Reject] = field(default_factory=list)
    capped: bool = False

    def bump(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


class Fetcher(Protocol):
    platform: str
    provider: str

    def landscape(self) -> list[Resource]: ...

    def prepare(self, selected: list[Resource], priors: dict[str, Prior], now: dt.datetime) -> None: ...

    def fetch(self, resource: Resource, prior: Prior, now: dt.datetime) -> ResourceResult: ...

    def finish(self) -> dict[str, tuple[str | None, dict[str, Any]]]:
        """Connection-level registry rows to store after the last resource (e.g. user cache)."""
        ...


def dumps(obj: Any) -> bytes:
    """An API object as JSON bytes (key order as received)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
