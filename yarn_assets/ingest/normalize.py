"""Normalization machinery: the raw objects of one batch in, silver items and rejects out.

The normalizers themselves live with their platform (``platforms/<name>/normalize.py``) and are
registered per object type in its ``Platform``. Two kinds:

* ``NORMALIZERS``: per-object functions ``(BronzeObject, BatchContext) -> Iterable[ContentItem | Reject]``
  for formats that need real parsing (MIME, iCalendar, Notion pages);
* ``FRAME_NORMALIZERS``: vectorized functions ``(pl.DataFrame of bronze rows, BatchContext) ->
  (items frame, rejects)`` for high-volume JSON objects (Slack messages), where per-object Python
  would dominate the cost of a large sync or export. One marked :func:`row_wise` (each item
  depends on its own object and the batch context only) is run on large frames in chunks on
  several threads (polars releases the GIL), so JSON decoding uses every core.

A normalizer sees the batch's context objects (``BatchContext``) because some objects only make
sense together: Slack messages need the export's users.json. An exception inside a per-object
normalizer becomes a reject for that object, never a failed run.
"""

from __future__ import annotations

import json
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from resources.input_limits import DEFAULT_LIMITS, InputLimits
from yarn_assets.ingest.objects import BronzeObject, ContentItem, Reject

Normalizer = Callable[[BronzeObject, "BatchContext"], Iterable[ContentItem | Reject]]
FrameNormalizer = Callable[[pl.DataFrame, "BatchContext"], tuple[pl.DataFrame, list[Reject]]]

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
    #: what bounds the normalizers (recurrence expansion); the defaults when the caller passes none
    limits: InputLimits = field(default_factory=lambda: DEFAULT_LIMITS)
    #: facts worth a metric that are not drops (e.g. ``ics_series_capped``, ``ics_series_not_expanded``)
    stats: Counter[str] = field(default_factory=Counter)

    def of_type(self, *object_types: str) -> list[BronzeObject]:
        return [o for o in self.objects if o.object_type in object_types]

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """A lookup built once per batch (e.g. Slack user names from the batch's users.json)."""
        if key not in self.cache:
            self.cache[key] = build()
        return self.cache[key]


#: A row-wise frame normalizer splits frames of at least twice this many rows into chunks of it.
ROW_WISE_CHUNK_ROWS = 50_000


def row_wise(fn: FrameNormalizer) -> FrameNormalizer:
    """Mark a frame normalizer as row-wise: a large frame may be normalized in parallel chunks."""
    fn.row_wise = True  # type: ignore[attr-defined]
    return fn


def workers() -> int:
    """Threads for parallel normalization: polars' own pool size (the cores it may use)."""
    return max(1, pl.thread_pool_size())


#: Frame normalizers registered at run time (benchmarks, tests); the platforms' own win on a clash.
_EXTRA_FRAME_NORMALIZERS: dict[str, FrameNormalizer] = {}


def register_frame_normalizer(object_type: str, fn: FrameNormalizer) -> None:
    """Register a vectorized normalizer for an object type no platform handles."""
    _EXTRA_FRAME_NORMALIZERS[object_type] = fn


def _registries() -> tuple[dict[str, Normalizer], dict[str, FrameNormalizer]]:
    from yarn_assets.ingest import platforms

    per_object, per_frame, _ = platforms.normalizer_tables()
    return per_object, {**_EXTRA_FRAME_NORMALIZERS, **per_frame}


def context_only() -> frozenset[str]:
    """Object types that carry context only (read by other normalizers, never rows themselves)."""
    from yarn_assets.ingest import platforms

    return platforms.normalizer_tables()[2]


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


def normalize_objects(objects: list[BronzeObject], ctx: BatchContext,
                      normalizers: Mapping[str, Normalizer] | None = None) -> Iterator[ContentItem | Reject]:
    """Per-object normalization (the slow path), exceptions become rejects. ``normalizers``
    (object type -> function) defaults to every platform's."""
    per_object = normalizers if normalizers is not None else _registries()[0]
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
    frame: pl.DataFrame,
    finish: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    filtered: Counter[str] | None = None,
    *,
    limits: InputLimits | None = None,
    stats: Counter[str] | None = None,
) -> tuple[pl.DataFrame, list[Reject]]:
    """Normalize the bronze rows of ONE batch: an items frame (ITEM_SCHEMA) and the rejects.

    ``finish`` (e.g. items -> silver rows) is applied to every part (object type, parallel chunk)
    before the parts are concatenated, so no part is copied to line it up with the others.
    ``filtered`` (when given) receives the counts of objects the normalizers dropped on purpose,
    ``stats`` other counts worth a metric; ``limits`` (the ``input_limits`` resource) bound them.
    """
    from yarn_assets.ingest.bronze import to_objects

    _, per_frame = _registries()
    context_types = context_only()
    ctx = BatchContext(to_objects(frame.filter(pl.col("object_type").is_in(list(context_types)))),
                       limits=limits or DEFAULT_LIMITS)
    done = finish or (lambda items: items)
    parts: list[pl.DataFrame] = []
    rejects: list[Reject] = []
    for object_type, sub in contiguous_groups(frame, "object_type"):
        if object_type in context_types:
            continue
        fn = per_frame.get(str(object_type))
        if fn is not None:
            items, bad = _run_frame_normalizer(fn, sub, ctx, done)
            parts.extend(items)
            rejects.extend(bad)
            continue
        slow: list[ContentItem] = []
        for out in normalize_objects(to_objects(sub), ctx):
            (rejects if isinstance(out, Reject) else slow).append(out)  # type: ignore[arg-type]
        parts.append(done(items_frame(slow)))
    if filtered is not None:
        filtered.update(ctx.filtered)
    if stats is not None:
        stats.update(ctx.stats)
    if not parts:
        return done(pl.DataFrame(schema=ITEM_SCHEMA)), rejects
    # one contiguous chunk per batch: columns polars keeps as one value would otherwise be chunked
    # unlike the others, and every later whole-frame conversion would have to copy to line them up
    return (pl.concat(parts).rechunk() if len(parts) > 1 else parts[0]), rejects


def contiguous_groups(frame: pl.DataFrame, column: str) -> list[tuple[Any, pl.DataFrame]]:
    """``frame`` split by ``column`` in order of first appearance: zero-copy slices when every value's
    rows are contiguous (the usual layout of a batch), otherwise one filtered copy per value."""
    if frame.is_empty():
        return []
    values = frame.get_column(column)
    runs = values.rle()
    if runs.len() == values.n_unique():
        lengths = runs.struct.field("len").to_list()
        starts = [sum(lengths[:i]) for i in range(len(lengths))]
        return [(v, frame.slice(st, n)) for v, st, n in zip(runs.struct.field("value"), starts, lengths, strict=True)]
    return [(v, frame.filter(pl.col(column).eq_missing(v))) for v in values.unique(maintain_order=True)]


def _run_frame_normalizer(
    fn: FrameNormalizer, frame: pl.DataFrame, ctx: BatchContext, finish: Callable[[pl.DataFrame], pl.DataFrame]
) -> tuple[list[pl.DataFrame], list[Reject]]:
    """Run ``fn`` on the frame, or on chunks of it in parallel when it is row-wise and the frame large."""
    def run(chunk: pl.DataFrame) -> tuple[pl.DataFrame, list[Reject]]:
        items, bad = fn(chunk, ctx)
        return finish(items.select(list(ITEM_SCHEMA)).cast(ITEM_SCHEMA)), bad  # type: ignore[arg-type]

    n = workers()
    if not getattr(fn, "row_wise", False) or n < 2 or frame.height < 2 * ROW_WISE_CHUNK_ROWS:
        items, bad = run(frame)
        return [items], bad
    size = max(ROW_WISE_CHUNK_ROWS, -(-frame.height // n))
    chunks = [frame.slice(start, size) for start in range(0, frame.height, size)]
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="normalize") as pool:
        done = list(pool.map(run, chunks))
    return [items for items, _ in done], [r for _, bad in done for r in bad]
