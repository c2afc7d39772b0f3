"""People benchmark: embedding throughput beside the silver step, retrieval latency/recall/memory, and
contact extraction precision/recall against the hand-labelled answer key.

```bash
.venv/bin/python -m benchmarks.people                 # 100 k (one user and across 1,000 users), ~5 min
.venv/bin/python -m benchmarks.people --full          # adds 1 M (embeds 1 M messages: ~15-30 min on 2 cores)
.venv/bin/python -m benchmarks.people --sizes 20000 --no-hnsw   # a quick look
```

Per size N:

1. **embedding vs silver**: N synthetic Slack messages (``benchmarks/synthetic.py``) land in bronze; the
   silver step runs as its asset does (``phase_silver`` of the bronze->silver benchmark), then the
   embedding step as ``silver/content_vectors`` does (``vectors.partition_rows`` + ``embed_partition``:
   chunking, WordLlama, Delta append). Each in its own spawned process (peak RSS is its own).
2. **retrieval, one user**: the N vectors just written belong to one user. Exact search (the product's
   ``retrieval.top_chunks``) against 200 queries: cold load from Delta, warm p50/p95, memory held; and an
   HNSW index (usearch) for comparison: build time, p50/p95 and recall@10 against the exact answer at a
   few ``expansion_search`` values, memory.
3. **retrieval, 1,000 users**: the same vectors re-assigned round-robin to 1,000 users in another table;
   each query goes to a random user: cold (load that user's vectors from Delta) and warm p50/p95.
4. **contact extraction**: the corpus mailboxes of ``benchmarks/people_answer_key.py`` through the real
   assets; precision/recall per mailbox.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bronze_silver import SILVER_PLATFORM, _peak_rss_mib, _rss_mib, phase_bronze, phase_silver, run

QUERIES = 200
K = 10
USERS = 1_000
_TEXT = (
    "deploy hotfix review pull request standup customer latency spikes region roll back migration tonight "
    "notes doc dashboard alert overnight flaky test lunch roadmap draft comments budget approved sync "
    "tomorrow incident postmortem friday invoice retro thursday pricing deck launch partner contract renewal "
    "hiring interview offer travel conference security audit vendor warehouse cluster database backup outage"
)
_WORDS = _TEXT.split()


def _queries(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(_WORDS, rng.randint(2, 6))) for _ in range(n)]


def _pct(values: list[float], p: float) -> float:
    import numpy as np

    return float(np.percentile(values, p)) * 1000


# ---------------------------------------------------------------------------------- phases
def phase_embed(root: str, anchor: str) -> dict[str, Any]:
    """What silver/content_vectors does for the partition: read live silver rows, chunk, embed, append."""
    from io_managers.delta_store import DeltaStore
    from resources.embeddings import WordLlamaEmbedder
    from yarn_assets.people import vectors

    store = DeltaStore(root)
    now = dt.datetime.fromisoformat(anchor)
    model = WordLlamaEmbedder()
    baseline = _rss_mib()
    t0 = time.perf_counter()
    rows = vectors.partition_rows(store, SILVER_PLATFORM, now.date(), now)
    t1 = time.perf_counter()
    report = vectors.embed_partition(store, rows, model, 1000, 12)
    t2 = time.perf_counter()
    return {"items": report.embedded_items, "chunks": report.chunks_written, "seconds": t2 - t0,
            "read_s": t1 - t0, "embed_write_s": t2 - t1, "chunks_per_s": report.chunks_written / (t2 - t0),
            "chars_per_item": report.texts_chars / max(1, report.embedded_items),
            "baseline_rss_mib": baseline, "peak_rss_mib": _peak_rss_mib()}


def phase_embed_only(texts: int) -> dict[str, Any]:
    """Model throughput alone (no Delta): short Slack-like texts."""
    from resources.embeddings import WordLlamaEmbedder

    model = WordLlamaEmbedder()
    sample = [" ".join(random.Random(i).choices(_WORDS, k=40)) for i in range(texts)]
    t0 = time.perf_counter()
    model.embed(sample)
    seconds = time.perf_counter() - t0
    return {"texts": texts, "seconds": seconds, "texts_per_s": texts / seconds,
            "chars_per_text": sum(map(len, sample)) / texts}


def phase_retrieval_one_user(root: str, user: str, hnsw: bool, ef: list[int], dtype: str) -> dict[str, Any]:
    import numpy as np

    from io_managers.delta_store import DeltaStore
    from resources.embeddings import WordLlamaEmbedder
    from yarn_assets.people import retrieval

    store = DeltaStore(root)
    model = WordLlamaEmbedder()
    q = model.embed(_queries(QUERIES))
    baseline = _rss_mib()
    t0 = time.perf_counter()
    entry = retrieval.load_user_vectors(store, user, model.model_id)
    cold = time.perf_counter() - t0
    matrix = entry.matrix
    held = entry.nbytes / 2**20
    lat, truth = [], []
    for v in q:
        t = time.perf_counter()
        truth.append(retrieval.top_chunks(matrix, v, K))
        lat.append(time.perf_counter() - t)
    out: dict[str, Any] = {"vectors": int(matrix.shape[0]), "cold_load_s": cold, "exact_p50_ms": _pct(lat, 50),
                           "exact_p95_ms": _pct(lat, 95), "exact_recall": 1.0, "held_mib": held,
                           "rss_after_load_mib": _rss_mib() - baseline}
    if hnsw:
        from usearch.index import Index

        t = time.perf_counter()
        index = Index(ndim=matrix.shape[1], metric="ip", dtype=dtype, connectivity=16, expansion_add=128)
        index.add(np.arange(matrix.shape[0]), matrix, threads=2)
        out["hnsw_build_s"] = time.perf_counter() - t
        out["hnsw_mib"] = index.memory_usage / 2**20
        out["hnsw_dtype"] = dtype
        for e in ef:
            index.expansion_search = e
            lat, recall = [], []
            for v, tr in zip(q, truth, strict=True):
                t = time.perf_counter()
                found = index.search(v, K).keys
                lat.append(time.perf_counter() - t)
                recall.append(len(set(found.tolist()) & set(tr.tolist())) / K)
            out[f"hnsw_ef{e}_p50_ms"] = _pct(lat, 50)
            out[f"hnsw_ef{e}_p95_ms"] = _pct(lat, 95)
            out[f"hnsw_ef{e}_recall"] = float(np.mean(recall))
    out["peak_rss_mib"] = _peak_rss_mib()
    return out


def phase_spread(root: str, target: str, users: int) -> dict[str, Any]:
    """Copy the vectors with user_id reassigned round-robin to ``users`` users (a new table)."""
    import polars as pl

    from io_managers.delta_store import DeltaStore
    from yarn_assets.people.tables import CONTENT_VECTORS

    src, dst = DeltaStore(root), DeltaStore(target)
    lf = src.scan(CONTENT_VECTORS)
    assert lf is not None
    df = lf.collect()
    df = df.with_columns((pl.lit("u") + (pl.int_range(pl.len()) % users).cast(pl.Utf8).str.zfill(4)).alias("user_id"))
    t = time.perf_counter()
    for part in df.sort("user_id").iter_slices(200_000):  # sorted by user: row groups prune per user
        dst.append(CONTENT_VECTORS, part)
    return {"rows": df.height, "write_s": time.perf_counter() - t}


def phase_retrieval_many_users(target: str, users: int) -> dict[str, Any]:
    from io_managers.delta_store import DeltaStore
    from resources.embeddings import WordLlamaEmbedder
    from yarn_assets.people import retrieval

    store = DeltaStore(target)
    model = WordLlamaEmbedder()
    q = model.embed(_queries(QUERIES))
    rng = random.Random(3)
    picks = [f"u{rng.randrange(users):04d}" for _ in range(QUERIES)]
    cache = retrieval.VectorCache(capacity_bytes=512 * 2**20)
    cold, warm, sizes = [], [], []
    for user, v in zip(picks, q, strict=True):
        t = time.perf_counter()
        entry = cache.get(store, user, model.model_id)
        retrieval.top_chunks(entry.matrix, v, K)
        cold.append(time.perf_counter() - t)
        sizes.append(entry.matrix.shape[0])
        t = time.perf_counter()
        retrieval.top_chunks(cache.get(store, user, model.model_id).matrix, v, K)
        warm.append(time.perf_counter() - t)
    return {"users": users, "vectors_per_user": sum(sizes) / len(sizes), "cold_p50_ms": _pct(cold, 50),
            "cold_p95_ms": _pct(cold, 95), "warm_p50_ms": _pct(warm, 50), "warm_p95_ms": _pct(warm, 95),
            "cache_held_mib": cache.held_bytes / 2**20, "peak_rss_mib": _peak_rss_mib()}


def phase_answer_key(home: str) -> dict[str, Any]:
    import logging

    logging.disable(logging.WARNING)
    os.environ["YARNNN_HOME"] = home
    from benchmarks.people_answer_key import run_mailboxes
    from control_plane import db
    from resources.registry import build_resources
    from resources.settings import load_settings

    settings = load_settings()
    db.upgrade(settings.resolved_control_plane_url)
    corpus = Path(os.environ.get("YARNNN_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / "corpus"
    scores = run_mailboxes(build_resources(settings), corpus, Path(home) / "scratch", dt.datetime.now(dt.UTC).date())
    out: dict[str, Any] = {}
    tp = pred = truth = 0
    for user, s in scores.items():
        out[user] = {"precision": s.precision, "recall": s.recall, "predicted": len(s.predicted),
                     "truth": len(s.truth), "wrong": [sorted(w) for w in s.wrong],
                     "missed": [sorted(m) for m in s.missed]}
        tp, pred, truth = tp + s.true_positives, pred + len(s.predicted), truth + len(s.truth)
    out["overall"] = {"precision": tp / pred if pred else 1.0, "recall": tp / truth if truth else 1.0,
                      "predicted": pred, "truth": truth}
    return out


# ---------------------------------------------------------------------------------- driver
def bench_size(n: int, work: Path, anchor: str, hnsw: bool, ef: list[int], dtype: str) -> dict[str, Any]:
    root = work / f"n{n}"
    if root.exists():
        shutil.rmtree(root)
    print(f"== {n:,} messages", flush=True)
    out: dict[str, Any] = {"n": n}
    out["bronze"] = run(phase_bronze, root=str(root), n=n, anchor=anchor, batch_size=100_000)
    out["silver"] = run(phase_silver, root=str(root), n=n, anchor=anchor)
    out["embed"] = run(phase_embed, root=str(root), anchor=anchor)
    out["embed_vs_silver"] = out["embed"]["seconds"] / out["silver"]["seconds"]
    out["one_user"] = run(phase_retrieval_one_user, root=str(root), user="bench-user", hnsw=hnsw, ef=ef, dtype=dtype)
    spread = work / f"n{n}-users"
    if spread.exists():
        shutil.rmtree(spread)
    out["spread"] = run(phase_spread, root=str(root), target=str(spread), users=USERS)
    out["many_users"] = run(phase_retrieval_many_users, target=str(spread), users=USERS)
    return out


def report(results: list[dict[str, Any]], model: dict[str, Any], key: dict[str, Any]) -> str:
    lines = [f"model alone: {model['texts_per_s']:,.0f} texts/s ({model['chars_per_text']:.0f} chars/text)"]
    for r in results:
        e, s, o, m = r["embed"], r["silver"], r["one_user"], r["many_users"]
        lines += [
            f"\n--- {r['n']:,} messages ({e['chars_per_item']:.0f} chars each), {e['chunks']:,} chunks",
            f"silver step            {s['seconds']:8.2f} s   ({s['items_per_s']:,.0f} items/s, peak "
            f"{s['peak_rss_mib']:,.0f} MiB)",
            f"embedding step         {e['seconds']:8.2f} s   ({e['chunks_per_s']:,.0f} chunks/s, peak "
            f"{e['peak_rss_mib']:,.0f} MiB) = {r['embed_vs_silver']:.1f}x the silver step (its own asset: "
            "ingest latency unchanged)",
            f"one user, exact        cold load {o['cold_load_s']:.2f} s, p50 {o['exact_p50_ms']:.2f} ms, p95 "
            f"{o['exact_p95_ms']:.2f} ms, recall@10 1.000, holds {o['held_mib']:,.0f} MiB",
        ]
        if "hnsw_build_s" in o:
            efs = sorted(int(k.removeprefix("hnsw_ef").removesuffix("_p50_ms")) for k in o
                         if k.startswith("hnsw_ef") and k.endswith("_p50_ms"))
            parts = ", ".join(f"ef {e}: p50 {o[f'hnsw_ef{e}_p50_ms']:.2f} / p95 {o[f'hnsw_ef{e}_p95_ms']:.2f} ms "
                              f"recall {o[f'hnsw_ef{e}_recall']:.3f}" for e in efs)
            lines.append(f"one user, HNSW {o['hnsw_dtype']}    build {o['hnsw_build_s']:.1f} s, holds "
                         f"{o['hnsw_mib']:,.0f} MiB; {parts}")
        lines.append(f"{m['users']:,} users ({m['vectors_per_user']:.0f} each)  cold p50 {m['cold_p50_ms']:.1f} / p95 "
                     f"{m['cold_p95_ms']:.1f} ms, warm p50 {m['warm_p50_ms']:.3f} / p95 {m['warm_p95_ms']:.3f} ms, "
                     f"cache {m['cache_held_mib']:.0f} MiB")
    o = key["overall"]
    lines.append(f"\ncontact extraction (answer key): precision {o['precision']:.2f}, recall {o['recall']:.2f} "
                 f"({o['predicted']} predicted, {o['truth']} true)")
    for user, s in key.items():
        if user != "overall" and isinstance(s, dict):
            lines.append(f"  {user:<8} P {s['precision']:.2f} R {s['recall']:.2f} wrong {s['wrong']} "
                         f"missed {s['missed']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="100000")
    p.add_argument("--full", action="store_true", help="also 1,000,000")
    p.add_argument("--no-hnsw", action="store_true")
    p.add_argument("--ef", default="64,256", help="HNSW expansion_search values")
    p.add_argument("--hnsw-dtype", default="f16", choices=("f32", "f16", "i8"))
    p.add_argument("--workdir", default=None)
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.full and 1_000_000 not in sizes:
        sizes.append(1_000_000)
    anchor = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="people-bench-"))
    try:
        model = run(phase_embed_only, texts=50_000)
        results = [bench_size(n, work, anchor, not args.no_hnsw, [int(e) for e in args.ef.split(",")],
                              args.hnsw_dtype) for n in sizes]
        key = run(phase_answer_key, home=str(work / "key"))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    text = report(results, model, key)
    print("\n" + text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"people-{anchor.replace(':', '')}.json"
    path.write_text(json.dumps({"anchor": anchor, "model": model, "results": results, "answer_key": key},
                               indent=1, default=str))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
