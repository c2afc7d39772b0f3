"""Normalizers: the raw objects of one batch in, silver items and rejects out.

Two kinds, registered per object type by each platform module:

* ``NORMALIZERS``: per-object functions ``(BronzeObject, BatchContext) -> Iterable[ContentItem | Reject]``
  for formats that need real parsing (MIME, iCalendar, Notion pages);
* ``FRAME_NORMALIZERS``: vectorized functions ``(pl.DataFrame of bronze rows, BatchContext) ->
  (items frame, rejects)`` for high-volume JSON objects (Slack messages), where per-object Python
  would dominate the cost of a large sync or export.

A normalizer sees the batch's context objects (``BatchContext``) because some objects only make
sense together: Slack messages need the export's users.json. An exception inside a per-object
normalizer becomes a reject for that object, never a failed run.
"""

from __future__ import annotations

import json
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import polars as pl

from yarn_assets.ingest.objects import BronzeObject, ContentItem, Reject

Normalizer = Callable[[BronzeObject, "BatchContext"], Iterable[ContentItem | Reject]]
FrameNormalizer = Callable[[pl.DataFrame, "BatchContext"], tuple[pl.DataFrame, list[Reject]]]

#: Object types that carry context only (read by other normalizers, never rows themselves).
CONTEXT_ONLY = frozenset({"slack_users", "slack_channels", "slack_export_meta", "notion_export_meta"})

#: Columns of an items frame (what a frame normalizer returns; ContentItem's fields).
ITEM_SCHEMA: dict[str, pl.DataType] = {
    "resource_id": pl.Utf8,
    "resource_name": pl.Utf8,
    "external_id": pl.Utf8,
    "content_type": pl.Utf8,
    "content": pl.Utf8,
    "title": pl.Utf8,
    "author": pl.Utf8,
    "author_id": pl.Utf8,
    "participants": pl.List(pl.Utf8),
    "thread_id": pl.Utf8,
    "occurred_at": pl.Datetime("us", "UTC"),
    "ends_at": pl.Datetime("us", "UTC"),
    "source_created_at": pl.Datetime("us", "UTC"),
    "source_updated_at": pl.Datetime("us", "UTC"),
    "metadata": pl.Utf8,  # JSON text
    "is_deleted": pl.Boolean,
    "seq": pl.Int64,
    "raw_sha256": pl.Utf8,
}


@dataclass
class BatchContext:
    """The batch's context objects (users.json, channels.json…), with lazily built lookups."""

    objects: list[BronzeObject]
    cache: dict[str, Any] = field(default_factory=dict)
    #: objects deliberately dropped (e.g. Slack system subtypes), by reason: not rejects, but counted
    filtered: Counter[str] = field(default_factory=Counter)

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


def _registries() -> tuple[dict[str, Normalizer], dict[str, FrameNormalizer]]:
    from yarn_assets.ingest.normalizers import calendar, email, gcal_api, notion, notion_api, slack, slack_api

    per_object: dict[str, Normalizer] = {}
    per_frame: dict[str, FrameNormalizer] = {}
    for module in (calendar, email, notion, slack, slack_api, notion_api, gcal_api):
        per_object.update(getattr(module, "NORMALIZERS", {}))
        per_frame.update(getattr(module, "FRAME_NORMALIZERS", {}))
    return per_object, per_frame


def items_frame(items: list[ContentItem]) -> pl.DataFrame:
    if not items:
        return pl.DataFrame(schema=ITEM_SCHEMA)
    rows = [
        {
            **{k: getattr(it, k) for k in ITEM_SCHEMA if k != "metadata"},
            "participants": list(it.participants),
            "metadata": json.dumps(it.metadata, sort_keys=True, default=str, ensure_ascii=False),
        }
        for it in items
    ]
    return pl.DataFrame(rows, schema=ITEM_SCHEMA)


def normalize_objects(objects: list[BronzeObject], ctx: BatchContext) -> Iterator[ContentItem | Reject]:
    """Per-object normalization (the slow path), exceptions become rejects."""
    per_object, _ = _registries()
    for obj in objects:
        fn = per_object.get(obj.object_type)
        if fn is None:
            yield Reject(reason=f"no normalizer for object type {obj.object_type!r}", raw=obj.raw,
                         object_type=obj.object_type, external_id=obj.external_id)
            continue
        try:
            for out in fn(obj, ctx):
                if isinstance(out, ContentItem):
                    out.seq = obj.seq
                    out.raw_sha256 = out.raw_sha256 or obj.raw_sha256
                yield out
        except Exception as exc:
            tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            yield Reject(reason=f"normalize {obj.object_type} failed: {tail}", raw=obj.raw,
                         object_type=obj.object_type, external_id=obj.external_id)


def normalize_batch_frame(
    frame: pl.DataFrame, filtered: Counter[str] | None = None
) -> tuple[pl.DataFrame, list[Reject]]:
    """Normalize the bronze rows of ONE batch: an items frame (ITEM_SCHEMA) and the rejects.

    ``filtered`` (when given) receives the counts of objects the normalizers dropped on purpose.
    """
    from yarn_assets.ingest.bronze import to_objects

    _, per_frame = _registries()
    ctx = BatchContext(to_objects(frame.filter(pl.col("object_type").is_in(list(CONTEXT_ONLY)))))
    parts: list[pl.DataFrame] = []
    rejects: list[Reject] = []
    content = frame.filter(~pl.col("object_type").is_in(list(CONTEXT_ONLY)))
    for (object_type,), sub in content.group_by(["object_type"], maintain_order=True):
        fn = per_frame.get(str(object_type))
        if fn is not None:
            items, bad = fn(sub, ctx)
            parts.append(items.select(list(ITEM_SCHEMA)).cast(ITEM_SCHEMA))  # type: ignore[arg-type]
            rejects.extend(bad)
            continue
        slow: list[ContentItem] = []
        for out in normalize_objects(to_objects(sub), ctx):
            (rejects if isinstance(out, Reject) else slow).append(out)  # type: ignore[arg-type]
        parts.append(items_frame(slow))
    items = pl.concat(parts) if parts else pl.DataFrame(schema=ITEM_SCHEMA)
    if filtered is not None:
        filtered.update(ctx.filtered)
    return items, rejects
