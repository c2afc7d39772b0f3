"""Content vectors: chunking, the embedding write path, and deletion with the content.

* An ingest partition embeds the live silver rows it merged (``ingest_date`` = the day): an item is
  (re)embedded only when it has no vectors yet, or its ``content_hash`` (or the model) changed;
  re-running the partition embeds nothing.
* New items are appended; a changed item's chunks are replaced in one commit (``replaceWhere`` on
  its partitions and keys), so an edit that shortens a message leaves no stale chunk behind.
* Vectors never outlive their silver row: :func:`sweep_orphans` deletes the vectors of items that
  silver no longer holds in the given (platform, created_day) partitions. The embedding step runs
  it over the days its partition touched (edits, tombstones), the TTL cleanup over the days it
  deleted rows from.
* The chunk text is not copied: a vector row keeps character offsets into the silver content.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl

from io_managers.delta_store import DeltaStore, partitions_predicate
from io_managers.predicates import Eq, In, Predicate, all_of
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.people.tables import CONTENT_VECTORS, item_key_expr

#: Keys per IN list in one delete/replace predicate (a SQL string, so it stays bounded).
KEYS_PER_COMMIT = 5_000
#: Texts embedded per call to the embedder (bounds the transient memory of a first load).
EMBED_BLOCK = 20_000
TITLE_PLATFORMS = ("gmail", "calendar", "notion")


@dataclass
class EmbedReport:
    candidates: int = 0
    embedded_items: int = 0
    unchanged_items: int = 0
    chunks_written: int = 0
    replaced_items: int = 0
    orphans_deleted: int = 0
    texts_chars: int = 0


def chunk_spans(text: str, size: int, max_chunks: int) -> list[tuple[int, int]]:
    """Character spans of ~``size`` chars, cut at whitespace, overlapping by ~10 %, at most ``max_chunks``."""
    n = len(text)
    if n == 0:
        return []
    if n <= size:
        return [(0, n)]
    spans, start, overlap = [], 0, size // 10
    while start < n and len(spans) < max_chunks:
        end = min(n, start + size)
        if end < n:
            cut = text.rfind(" ", start + size // 2, end)
            end = cut if cut > start else end
        spans.append((start, end))
        if end >= n:
            break
        start = max(end - overlap, start + 1)
        while start < end and not text[start - 1].isspace():
            start += 1
    return spans


def _live(now: dt.datetime) -> pl.Expr:
    return pl.col("retained").fill_null(False) | pl.col("expires_at").is_null() | (pl.col("expires_at") > now)


def partition_rows(store: DeltaStore, platform: str, day: dt.date, now: dt.datetime) -> pl.DataFrame:
    """Live silver rows whose current version landed in this ingest partition."""
    lf = store.scan(PLATFORM_CONTENT, all_of(Eq("platform", platform), Eq("ingest_date", day)))
    if lf is None:
        return PLATFORM_CONTENT.empty()
    cols = ["user_id", "platform", "created_day", "resource_id", "external_id", "content_type", "thread_id",
            "title", "content", "content_hash", "occurred_at", "fetched_at", "expires_at", "retained"]
    df = lf.select(cols).filter(_live(now)).collect()
    return df.with_columns(item_key_expr(pl.col("user_id"), pl.col("platform"), pl.col("resource_id"),
                                         pl.col("external_id")).alias("item_key"))


def _pin(pairs: Iterable[tuple[str, str]]) -> Predicate:
    return partitions_predicate(["platform", "created_day"], set(pairs))


def existing_hashes(store: DeltaStore, rows: pl.DataFrame) -> pl.DataFrame:
    """(item_key, content_hash, model) of the vectors already stored for these rows' partitions."""
    schema = {"item_key": pl.Utf8, "content_hash": pl.Utf8, "model": pl.Utf8}
    if rows.is_empty() or not store.exists(CONTENT_VECTORS):
        return pl.DataFrame(schema=schema)
    pin = _pin(rows.select("platform", "created_day").unique().iter_rows())
    lf = store.scan(CONTENT_VECTORS, pin)
    assert lf is not None
    keys = rows["item_key"].unique()
    return (lf.select("item_key", "content_hash", "model").filter(pl.col("item_key").is_in(keys.implode()))
            .unique().collect())


def embed_rows(rows: pl.DataFrame, embedder: object, chunk_chars: int, max_chunks: int) -> pl.DataFrame:
    """One vector row per chunk of each silver row (title first for mail, events and pages)."""
    if rows.is_empty():
        return CONTENT_VECTORS.empty()
    parts = []
    for start in range(0, rows.height, EMBED_BLOCK):
        block = rows.slice(start, EMBED_BLOCK)
        meta, texts = [], []
        for r in block.iter_rows(named=True):
            content = r["content"] or ""
            title = (r["title"] or "").strip() if r["platform"] in TITLE_PLATFORMS else ""
            spans = chunk_spans(content, chunk_chars, max_chunks) or ([(0, 0)] if title else [])
            for i, (a, b) in enumerate(spans):
                texts.append(f"{title}\n{content[a:b]}" if title else content[a:b])
                meta.append((r["item_key"], i, a, b))
        if not texts:
            continue
        vectors = embedder.embed(texts)  # type: ignore[attr-defined]
        chunks = pl.DataFrame(meta, schema={"item_key": pl.Utf8, "chunk": pl.Int64, "chunk_start": pl.Int64,
                                            "chunk_end": pl.Int64}, orient="row")
        chunks = chunks.with_columns(
            pl.Series("vector", np.asarray(vectors, dtype=np.float32)).cast(pl.List(pl.Float32)),
            pl.lit(embedder.model_id).alias("model"),  # type: ignore[attr-defined]
        )
        parts.append(chunks.join(block.drop("content", "title"), on="item_key", how="left"))
    if not parts:
        return CONTENT_VECTORS.empty()
    return CONTENT_VECTORS.conform(pl.concat(parts)).select(list(CONTENT_VECTORS.schema)).sort(
        ["user_id", "occurred_at", "item_key", "chunk"])


def embed_partition(store: DeltaStore, rows: pl.DataFrame, embedder: object, chunk_chars: int,
                    max_chunks: int) -> EmbedReport:
    """Embed what is new or changed among ``rows`` and write it, one block at a time (bounded memory)."""
    report = EmbedReport(candidates=rows.height)
    if rows.is_empty():
        return report
    have = existing_hashes(store, rows)
    model = embedder.model_id  # type: ignore[attr-defined]
    current = have.filter(pl.col("model") == model).unique("item_key")
    joined = rows.join(current.rename({"content_hash": "_have"}).drop("model"), on="item_key", how="left")
    todo = joined.filter(pl.col("_have").is_null() | (pl.col("_have") != pl.col("content_hash"))).drop("_have")
    stale = have.select("item_key").unique()  # any vector of these keys is replaced, whatever its model
    report.unchanged_items = rows.height - todo.height
    for start in range(0, todo.height, EMBED_BLOCK):
        block = todo.slice(start, EMBED_BLOCK)
        report.texts_chars += int(block["content"].str.len_chars().sum() or 0)
        chunks = embed_rows(block, embedder, chunk_chars, max_chunks)
        report.embedded_items += block.height
        report.chunks_written += chunks.height
        changed = block.join(stale, on="item_key", how="semi")
        fresh = chunks.join(changed.select("item_key"), on="item_key", how="anti")
        if fresh.height:
            store.append(CONTENT_VECTORS, fresh)
        for offset in range(0, changed.height, KEYS_PER_COMMIT):
            part = changed.slice(offset, KEYS_PER_COMMIT)
            keys = part["item_key"].to_list()
            scope = all_of(_pin(part.select("platform", "created_day").unique().iter_rows()), In("item_key", keys))
            assert scope is not None
            store.replace(CONTENT_VECTORS, chunks.filter(pl.col("item_key").is_in(keys)), scope)
        report.replaced_items += changed.height
    return report


def sweep_orphans(store: DeltaStore, pairs: Iterable[tuple[str, str]]) -> int:
    """Delete vectors whose item silver no longer holds, in these (platform, created_day) partitions."""
    pairs = set(pairs)
    if not pairs or not store.exists(CONTENT_VECTORS):
        return 0
    pin = _pin(pairs)
    vec = store.scan(CONTENT_VECTORS, pin)
    assert vec is not None
    keys = vec.select("item_key").unique().collect()
    if keys.is_empty():
        return 0
    silver = store.scan(PLATFORM_CONTENT, pin)
    alive = (silver.select(item_key_expr(pl.col("user_id"), pl.col("platform"), pl.col("resource_id"),
                                         pl.col("external_id")).alias("item_key")).collect()
             if silver is not None else pl.DataFrame(schema={"item_key": pl.Utf8}))
    orphans = keys.join(alive, on="item_key", how="anti")["item_key"].to_list()
    deleted = 0
    for start in range(0, len(orphans), KEYS_PER_COMMIT):
        scope = all_of(pin, In("item_key", orphans[start:start + KEYS_PER_COMMIT]))
        assert scope is not None
        deleted += store.delete(CONTENT_VECTORS, scope)
    return deleted


def delete_items(store: DeltaStore, items: pl.DataFrame) -> int:
    """Delete the vectors of these items (columns user_id, platform, created_day, resource_id, external_id):
    the TTL cleanup calls it with the silver rows it is about to delete."""
    if items.is_empty() or not store.exists(CONTENT_VECTORS):
        return 0
    keyed = items.select("platform", "created_day", item_key_expr(
        pl.col("user_id"), pl.col("platform"), pl.col("resource_id"), pl.col("external_id")).alias("item_key"))
    deleted = 0
    for start in range(0, keyed.height, KEYS_PER_COMMIT):
        part = keyed.slice(start, KEYS_PER_COMMIT)
        scope = all_of(_pin(part.select("platform", "created_day").unique().iter_rows()),
                       In("item_key", part["item_key"].to_list()))
        assert scope is not None
        deleted += store.delete(CONTENT_VECTORS, scope)
    return deleted


def delete_user(store: DeltaStore, user_id: str) -> int:
    """Every vector of one user (account deletion)."""
    return store.delete(CONTENT_VECTORS, Eq("user_id", user_id)) if store.exists(CONTENT_VECTORS) else 0

