"""Normalizers: the raw objects of one batch in, silver items and rejects out.

A normalizer sees the whole batch (``BatchContext``) because some objects only make sense
together: Slack messages need the export's users.json, Notion CSV rows need their database.
Each object type maps to one function; an exception inside it becomes a reject for that
object, never a failed run.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from yarn_assets.ingest.objects import BronzeObject, ContentItem, Reject

Normalizer = Callable[[BronzeObject, "BatchContext"], Iterable[ContentItem | Reject]]


@dataclass
class BatchContext:
    """All objects of one batch, with lazily built lookups shared by the normalizers."""

    objects: list[BronzeObject]
    cache: dict[str, Any] = field(default_factory=dict)

    def of_type(self, *object_types: str) -> list[BronzeObject]:
        return [o for o in self.objects if o.object_type in object_types]

    @cached_property
    def slack_users(self) -> dict[str, dict[str, Any]]:
        """user id -> user object, from every users.json-like object in the batch."""
        users: dict[str, dict[str, Any]] = {}
        for obj in self.of_type("slack_users"):
            try:
                data = json.loads(obj.raw)
            except ValueError:
                continue
            members = data.get("members", data) if isinstance(data, dict) else data
            for user in members if isinstance(members, list) else []:
                if isinstance(user, dict) and user.get("id"):
                    users[str(user["id"])] = user
        return users


def _registry() -> dict[str, Normalizer]:
    from yarn_assets.ingest.normalizers import calendar, email, notion, slack

    registry: dict[str, Normalizer] = {}
    for module in (calendar, email, notion, slack):
        registry.update(module.NORMALIZERS)
    return registry


#: Object types that carry context only (read by other normalizers, never rows themselves).
CONTEXT_ONLY = frozenset({"slack_users", "slack_channels", "slack_export_meta", "notion_export_meta"})


def normalize_batch(objects: list[BronzeObject]) -> Iterator[ContentItem | Reject]:
    registry = _registry()
    ctx = BatchContext(sorted(objects, key=lambda o: o.seq))
    for obj in ctx.objects:
        if obj.object_type in CONTEXT_ONLY:
            continue
        fn = registry.get(obj.object_type)
        if fn is None:
            yield Reject(
                reason=f"no normalizer for object type {obj.object_type!r}",
                raw=obj.raw,
                object_type=obj.object_type,
                external_id=obj.external_id,
            )
            continue
        try:
            for out in fn(obj, ctx):
                if isinstance(out, ContentItem):
                    out.seq = obj.seq
                    out.raw_sha256 = out.raw_sha256 or obj.raw_sha256
                yield out
        except Exception as exc:  # noqa: BLE001 - one bad object must not fail the batch
            tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            yield Reject(
                reason=f"normalize {obj.object_type} failed: {tail}",
                raw=obj.raw,
                object_type=obj.object_type,
                external_id=obj.external_id,
            )
