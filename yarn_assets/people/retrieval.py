"""Semantic retrieval over one user's content: ``search(user, query, k, filters)``.

Exact search (brute force): the user's vectors are one float32 matrix, the query one vector, the
scores one matrix-vector product. Chosen by measurement (``benchmarks/people.py``, README there): on 2
cores ~9 ms per query at 100 k chunks and ~43 ms at 1 M, recall 1 by construction; an HNSW index
(usearch) answers in under a millisecond but needed ~30 s of build per 100 k vectors (2 min under
load) and ``expansion_search`` >= 128 to pass recall@10 0.95, plus maintenance on every edit.

The matrix of a user is cached per process (LRU, bounded in MiB) and keyed by the vectors table's
version (read from the Delta log at most once a second), so a write invalidates it within a second.
Isolation: vectors are read with ``user_id = <user>`` and the
hits are re-read from silver with the same filter; an item silver no longer holds (expired,
deleted) is never returned, even before the cleanup has removed its vectors.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from io_managers.delta_store import DeltaStore, partitions_predicate
from io_managers.predicates import Eq, all_of
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.people.tables import CONTENT_VECTORS, item_key_expr

MAX_QUERY_CHARS = 2_000
SNIPPET_CHARS = 300
_META = ["item_key", "platform", "created_day", "resource_id", "external_id", "content_type", "thread_id",
         "occurred_at", "chunk", "chunk_start", "chunk_end"]


class SearchError(ValueError):
    """A search request that cannot be answered (bad k, empty query)."""


@dataclass(frozen=True)
class SearchFilters:
    platforms: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    resource_ids: tuple[str, ...] = ()
    content_types: tuple[str, ...] = ()
    exclude_item_keys: frozenset[str] = frozenset()
    max_values: int = 1_000

    def __post_init__(self) -> None:
        for name in ("platforms", "resource_ids", "content_types"):
            if len(getattr(self, name)) > self.max_values:
                raise SearchError(f"filter {name} has more than {self.max_values} values")


@dataclass
class Hit:
    score: float
    item_key: str
    platform: str
    resource_id: str
    resource_name: str
    external_id: str
    content_type: str
    title: str | None
    author: str | None
    occurred_at: dt.datetime | None
    thread_id: str | None
    snippet: str
    user_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class _Entry:
    meta: pl.DataFrame
    matrix: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes) + int(self.meta.estimated_size())


@dataclass
class VectorCache:
    """Per-process LRU of users' vector matrices, bounded in bytes."""

    capacity_bytes: int = 512 * 2**20
    #: how long a table version read from the Delta log is trusted (a write shows after at most this)
    version_ttl_seconds: float = 1.0
    _versions: dict[str, tuple[float, int | None]] = field(default_factory=dict)
    _entries: OrderedDict[tuple[str, str, str, int], _Entry] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    hits: int = 0
    misses: int = 0

    @property
    def held_bytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def _version(self, store: DeltaStore) -> int | None:
        now = time.monotonic()
        seen = self._versions.get(store.root)
        if seen is not None and now - seen[0] < self.version_ttl_seconds:
            return seen[1]
        version = store.version(CONTENT_VECTORS)
        self._versions[store.root] = (now, version)
        return version

    def get(self, store: DeltaStore, user_id: str, model: str) -> _Entry:
        version = self._version(store)
        key = (store.root, user_id, model, -1 if version is None else version)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry
        self.misses += 1
        entry = load_user_vectors(store, user_id, model)
        with self._lock:
            for stale in [k for k in self._entries if k[:3] == key[:3]]:
                del self._entries[stale]
            if entry.nbytes <= self.capacity_bytes:
                self._entries[key] = entry
                while self.held_bytes > self.capacity_bytes:
                    self._entries.popitem(last=False)
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._versions.clear()


CACHE = VectorCache()


def set_cache_limit(megabytes: int) -> None:
    CACHE.capacity_bytes = max(0, int(megabytes)) * 2**20
    with CACHE._lock:
        while CACHE._entries and CACHE.held_bytes > CACHE.capacity_bytes:
            CACHE._entries.popitem(last=False)


def load_user_vectors(store: DeltaStore, user_id: str, model: str) -> _Entry:
    """One user's chunks of one model: metadata frame + (n, dim) float32 matrix."""
    lf = store.scan(CONTENT_VECTORS, all_of(Eq("user_id", user_id), Eq("model", model)))
    if lf is None:
        return _Entry(pl.DataFrame(schema={c: CONTENT_VECTORS.schema[c] for c in _META}), np.zeros((0, 0), np.float32))
    df = lf.select([*_META, "vector"]).collect()
    if df.is_empty():
        return _Entry(df.drop("vector"), np.zeros((0, 0), np.float32))
    # the list column's values buffer, viewed as one (n, dim) matrix: no per-row copy (a 1 M-chunk user
    # would otherwise hold three copies of 1 GiB at once)
    arr = df.get_column("vector").to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    flat = np.asarray(arr.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    matrix = np.ascontiguousarray(flat.reshape(df.height, -1))
    return _Entry(df.drop("vector"), matrix)


def _mask(meta: pl.DataFrame, f: SearchFilters) -> np.ndarray | None:
    conds = []
    if f.platforms:
        conds.append(pl.col("platform").is_in(list(f.platforms)))
    if f.resource_ids:
        conds.append(pl.col("resource_id").is_in(list(f.resource_ids)))
    if f.content_types:
        conds.append(pl.col("content_type").is_in(list(f.content_types)))
    if f.since is not None:
        conds.append(pl.col("occurred_at") >= f.since)
    if f.until is not None:
        conds.append(pl.col("occurred_at") < f.until)
    if f.exclude_item_keys:
        conds.append(~pl.col("item_key").is_in(list(f.exclude_item_keys)))
    if not conds:
        return None
    expr = conds[0]
    for c in conds[1:]:
        expr = expr & c
    return meta.select(expr.fill_null(False)).to_series().to_numpy()


def top_chunks(matrix: np.ndarray, query: np.ndarray, n: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Row indices of the ``n`` best chunks, best first (exact)."""
    if matrix.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.flatnonzero(mask) if mask is not None else None
    scores = (matrix[idx] if idx is not None else matrix) @ query
    n = min(n, scores.shape[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    best = part[np.argsort(-scores[part], kind="stable")]
    return idx[best] if idx is not None else best


def search(store: DeltaStore, user_id: str, query: str, k: int = 10, filters: SearchFilters | None = None, *,
           embedder: Any, max_k: int = 100, now: dt.datetime | None = None,
           cache: VectorCache | None = None) -> list[Hit]:
    """The ``k`` items of ``user_id`` closest in meaning to ``query`` (one hit per item, best chunk)."""
    if not user_id:
        raise SearchError("a user is required")
    if not 1 <= k <= max_k:
        raise SearchError(f"k must be between 1 and {max_k}, got {k}")
    text = " ".join((query or "").split())[:MAX_QUERY_CHARS]
    if not text:
        raise SearchError("the query is empty")
    filters = filters or SearchFilters()
    now = now or dt.datetime.now(dt.UTC)
    entry = (cache or CACHE).get(store, user_id, embedder.model_id)
    if entry.matrix.shape[0] == 0:
        return []
    q = np.asarray(embedder.embed([text]), dtype=np.float32)[0]
    if q.shape[0] != entry.matrix.shape[1]:
        raise SearchError(f"query vector has {q.shape[0]} dimensions, stored vectors {entry.matrix.shape[1]}")
    mask = _mask(entry.meta, filters)
    picked = top_chunks(entry.matrix, q, k * 4, mask)
    scores = entry.matrix[picked] @ q
    best = (entry.meta[picked.tolist()].with_columns(pl.Series("score", scores))
            .sort("score", descending=True).unique("item_key", keep="first", maintain_order=True))
    return _hydrate(store, user_id, best, k, now)


def _hydrate(store: DeltaStore, user_id: str, best: pl.DataFrame, k: int, now: dt.datetime) -> list[Hit]:
    """Hits from the live silver rows of the best items (the vectors alone never leave this module)."""
    if best.is_empty():
        return []
    pin = partitions_predicate(["platform", "created_day"], best.select("platform", "created_day").unique().rows())
    lf = store.scan(PLATFORM_CONTENT, all_of(pin, Eq("user_id", user_id)))
    if lf is None:
        return []
    keys = best["item_key"].implode()
    rows = (lf.with_columns(item_key_expr(pl.col("user_id"), pl.col("platform"), pl.col("resource_id"),
                                          pl.col("external_id")).alias("item_key"))
            .filter(pl.col("item_key").is_in(keys))
            .filter(pl.col("retained").fill_null(False) | pl.col("expires_at").is_null() | (pl.col("expires_at") > now))
            .select("item_key", "user_id", "resource_name", "title", "author", "content")
            .collect())
    found = {r["item_key"]: r for r in rows.iter_rows(named=True)}
    hits = []
    for r in best.iter_rows(named=True):
        s = found.get(r["item_key"])
        if s is None or s["user_id"] != user_id:
            continue
        content = s["content"] or ""
        snippet = " ".join(content[r["chunk_start"]:r["chunk_end"]].split())[:SNIPPET_CHARS]
        hits.append(Hit(score=float(r["score"]), item_key=r["item_key"], platform=r["platform"],
                        resource_id=r["resource_id"], resource_name=s["resource_name"] or "",
                        external_id=r["external_id"], content_type=r["content_type"], title=s["title"],
                        author=s["author"], occurred_at=r["occurred_at"], thread_id=r["thread_id"], snippet=snippet,
                        user_id=user_id))
        if len(hits) == k:
            break
    return hits


def closest(store: DeltaStore, user_id: str, queries: Sequence[str], k: int, *, embedder: Any,
            exclude: frozenset[str] = frozenset(), filters: SearchFilters | None = None,
            now: dt.datetime | None = None) -> list[Hit]:
    """The best ``k`` items over several queries (a meeting title, a deliverable's focus...)."""
    merged: dict[str, Hit] = {}
    base = filters or SearchFilters()
    for q in queries:
        if not q or not q.strip():
            continue
        f = SearchFilters(platforms=base.platforms, since=base.since, until=base.until,
                          resource_ids=base.resource_ids, content_types=base.content_types,
                          exclude_item_keys=frozenset(exclude) | base.exclude_item_keys)
        for h in search(store, user_id, q, k, f, embedder=embedder, now=now):
            if h.item_key not in merged or merged[h.item_key].score < h.score:
                merged[h.item_key] = h
    return sorted(merged.values(), key=lambda h: (-h.score, h.item_key))[:k]
