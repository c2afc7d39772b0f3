"""Embeddings and retrieval: the local model never touches the network, vectors follow silver
(incremental, replaced on edit, deleted with expired content), and search never crosses users."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from io_managers.predicates import Eq, all_of
from resources import embeddings as emb
from tests.people.helpers import PeopleHarness
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.ops import cleanup
from yarn_assets.people import retrieval, vectors
from yarn_assets.people.tables import CONTENT_VECTORS, with_item_key


def test_model_loads_offline_without_touching_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access during model load")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(emb, "_WORDLLAMA", {})  # force a real load, not the per-process cache
    model = emb.WordLlamaEmbedder()
    v = model.embed(["meeting about the budget", "discussion of finances", "the cat sat on the mat", ""])
    assert attempts == []
    assert v.shape == (4, 256) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-5) and not v[3].any()
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.1  # closer in meaning, closer in space
    assert model.model_id == "wordllama/l2_supercat_256"


def test_chunk_spans_cover_the_text_at_word_boundaries() -> None:
    text = " ".join(f"word{i}" for i in range(600))
    spans = vectors.chunk_spans(text, 1000, 12)
    assert spans[0][0] == 0 and spans[-1][1] == len(text) and len(spans) > 3
    assert all(b - a <= 1000 for a, b in spans)
    assert all(text[b] == " " for _, b in spans[:-1])  # cut at whitespace
    assert all(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1))  # overlapping
    assert len(vectors.chunk_spans(text, 1000, 2)) == 2 and vectors.chunk_spans("", 1000, 3) == []


def _rows(texts: dict[str, str], user: str = "u1") -> pl.DataFrame:
    now = dt.datetime.now(dt.UTC)
    df = pl.DataFrame({
        "user_id": [user] * len(texts), "platform": ["slack"] * len(texts),
        "created_day": [now.date().isoformat()] * len(texts), "resource_id": ["C1"] * len(texts),
        "external_id": list(texts), "content_type": ["message"] * len(texts), "thread_id": [None] * len(texts),
        "title": [None] * len(texts), "content": list(texts.values()),
        "content_hash": [str(hash(t)) for t in texts.values()], "occurred_at": [now] * len(texts),
        "fetched_at": [now] * len(texts),
    }, schema_overrides={"thread_id": pl.Utf8, "title": pl.Utf8})
    return with_item_key(df)


def test_embedding_is_incremental_and_an_edit_replaces_every_chunk(store) -> None:  # type: ignore[no-untyped-def]
    model = emb.WordLlamaEmbedder()
    long = " ".join(["the launch plan needs a review"] * 150)
    rows = _rows({"1": "short note about invoices", "2": long, "3": "lunch on friday?"})
    first = vectors.embed_partition(store, rows, model, 1000, 12)
    assert (first.embedded_items, first.unchanged_items) == (3, 0) and first.chunks_written > 3
    again = vectors.embed_partition(store, rows, model, 1000, 12)
    assert (again.embedded_items, again.chunks_written) == (0, 0) and again.unchanged_items == 3
    edited = _rows({"1": "short note about invoices", "2": "plan reviewed, shipping", "3": "lunch on friday?"})
    third = vectors.embed_partition(store, edited, model, 1000, 12)
    assert (third.embedded_items, third.replaced_items) == (1, 1)
    stored = store.read(CONTENT_VECTORS)
    per_item = dict(stored.group_by("external_id").len().iter_rows())
    assert per_item == {"1": 1, "2": 1, "3": 1}  # the long version's extra chunks are gone
    assert stored.filter(pl.col("external_id") == "2")["content_hash"][0] == str(hash("plan reviewed, shipping"))


@pytest.fixture
def demo(people: PeopleHarness, tmp_path: Path) -> PeopleHarness:
    """alice and bob of the demo workspace, every platform landed, people assets run."""
    from demo.sample_workspace import generate_workspace

    ws = generate_workspace(tmp_path / "ws", now=dt.datetime.now(dt.UTC).replace(microsecond=0))
    for user in ws.users:
        if user.id in ("alice", "bob"):
            people.add_user(user.id, user.email)
            for e in ws.exports_of(user.id):
                people.register(user.id, e.path, e.provider)
    for platform in ("slack", "gmail", "calendar", "notion"):
        people.run(platform)
    return people


def _keys(store, user: str) -> set[str]:  # type: ignore[no-untyped-def]
    return set(with_item_key(store.read(PLATFORM_CONTENT, Eq("user_id", user)))["item_key"])


def test_vectors_follow_silver_and_reruns_embed_nothing(demo: PeopleHarness) -> None:
    store = demo.store
    vec = store.read(CONTENT_VECTORS)
    for user in ("alice", "bob"):
        with_text = with_item_key(store.read(PLATFORM_CONTENT, Eq("user_id", user)).filter(
            (pl.col("content").str.len_chars() > 0) | pl.col("title").is_not_null()))
        assert set(with_text["item_key"]) == set(vec.filter(pl.col("user_id") == user)["item_key"])
    result = demo.people("gmail")
    meta = result.asset_materializations_for_node("silver__content_vectors")[0].metadata
    assert meta["items_embedded"].value == 0 and meta["items_unchanged"].value > 0
    assert meta["vectors_written"].value == 0


def test_ttl_cleanup_deletes_vectors_with_their_content(demo: PeopleHarness) -> None:
    store = demo.store
    keep = with_item_key(store.read(PLATFORM_CONTENT, all_of(Eq("platform", "gmail"), Eq("user_id", "alice")))).row(
        0, named=True)
    store.update(PLATFORM_CONTENT, all_of(Eq("platform", "gmail"), Eq("user_id", "alice"),
                                          Eq("external_id", keep["external_id"])),
                 {"retained": "true", "expires_at": "NULL"})
    cutoff = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)  # past gmail's 30-day TTL
    report = cleanup.CleanupReport(cutoff=cutoff)
    cleanup.delete_expired_content(store, cutoff, report)
    assert report.silver.rows > 0 and report.vectors.rows > 0
    gmail_vectors = store.read(CONTENT_VECTORS, Eq("platform", "gmail"))
    assert set(gmail_vectors["item_key"]) == {keep["item_key"]}  # only the retained item keeps its vectors
    assert report.user_counts("alice")["content_vectors_deleted"] > 0


def _hits(demo: PeopleHarness, user: str, query: str, k: int = 10, **filters) -> list[retrieval.Hit]:  # type: ignore[no-untyped-def]
    return retrieval.search(demo.store, user, query, k, retrieval.SearchFilters(**filters),
                            embedder=emb.WordLlamaEmbedder())


def test_search_never_crosses_users(demo: PeopleHarness) -> None:
    """Canary: each user's content carries a unique marker; no query of bob's ever reaches alice's items."""
    alice_keys, bob_keys = _keys(demo.store, "alice"), _keys(demo.store, "bob")
    for query in ("ALICE-CANARY-7Q2", "Atlas launch pricing deck", "partner timeline", "Northwind offsite",
                  "Dana Lee partnerco", "BOB-CANARY-4K9 warehouse migration"):
        hits = _hits(demo, "bob", query, k=20)
        assert hits, query
        assert {h.user_id for h in hits} == {"bob"} and {h.item_key for h in hits} <= bob_keys
        assert not any("ALICE-CANARY" in h.snippet or "Northwind" in (h.title or "") for h in hits)
    mine = _hits(demo, "alice", "can you review the pricing deck before Thursday", k=3)
    assert mine[0].platform == "slack" and "pricing deck" in mine[0].snippet
    assert {h.item_key for h in mine} <= alice_keys


def test_search_filters_limits_and_deleted_content(demo: PeopleHarness) -> None:
    hits = _hits(demo, "alice", "launch timeline", k=5, platforms=("gmail",))
    assert hits and {h.platform for h in hits} == {"gmail"}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.item_key for h in hits}) == len(hits)  # one hit per item
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    assert _hits(demo, "alice", "launch timeline", since=future) == []
    with pytest.raises(retrieval.SearchError, match="k must be"):
        _hits(demo, "alice", "x", k=0)
    with pytest.raises(retrieval.SearchError, match="empty"):
        _hits(demo, "alice", "   ")
    # an item silver no longer holds is never returned, even before any cleanup removes its vectors
    top = _hits(demo, "alice", "launch timeline", k=1, platforms=("gmail",))[0]
    demo.store.delete(PLATFORM_CONTENT, all_of(Eq("platform", "gmail"), Eq("user_id", "alice"),
                                               Eq("external_id", top.external_id)))
    assert top.item_key not in {h.item_key for h in _hits(demo, "alice", "launch timeline", k=10)}
    assert retrieval.search(demo.store, "nobody", "anything", 3, embedder=emb.WordLlamaEmbedder()) == []
