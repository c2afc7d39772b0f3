"""Benchmark of the bronze -> silver write path against plain Delta writes (issue 2, point 11).

    python -m benchmarks.bronze_silver [--sizes 100000,1000000] [--batch-size 100000] [--incremental 10000]

Per size N, every phase runs in a fresh (spawned) process, so its peak RSS is its own:

1. ``bronze``    synthetic Slack export objects -> ``bronze.bronze_frame`` + ``bronze.write_batch``
2. ``silver``    the ``silver/platform_content`` step: ``bronze.scan_partition`` ->
                 ``silver.normalize_partition`` -> ``silver.merge_platform_content`` (empty silver)
3. ``append``    reference: the same silver rows, in the same order, ``write_deltalake(mode="append")``
4. ``merge``     an incremental sync of 10 k items (new ones from the last 2 days, 30 % exact
                 duplicates and 10 % edits of the last 7 days) merged by ``merge_platform_content``
5. ``unpruned``  reference: the same batch by a plain ``DeltaTable.merge`` on the keys only
                 (update all / insert all), into a copy of the same table

Prints a table and writes JSON to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SILVER_PLATFORM = "slack"
KEY_PREDICATE = " AND ".join(f"t.{k} = s.{k}" for k in ("user_id", "platform", "resource_id", "external_id"))


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _workspace(n: int, anchor: str):  # type: ignore[no-untyped-def]
    from benchmarks.synthetic import Workspace

    return Workspace(n, dt.datetime.fromisoformat(anchor))


def _batch_info(user: str, day: dt.date, batch_id: str, fetched_at: dt.datetime):  # type: ignore[no-untyped-def]
    from yarn_assets.ingest.bronze import BatchInfo

    return BatchInfo(user_id=user, platform=SILVER_PLATFORM, ingest_date=day, source_kind="import",
                     provider="slack_export", batch_id=batch_id, fetched_at=fetched_at, run_id="bench")


# ---------------------------------------------------------------------- phases (run in children)
def phase_bronze(root: str, n: int, anchor: str, batch_size: int) -> dict[str, Any]:
    """Land N messages as bronze batches of ``batch_size`` (each with its users.json)."""
    from io_managers.delta_store import DeltaStore
    from yarn_assets.ingest import bronze

    store = DeltaStore(root)
    ws = _workspace(n, anchor)
    fetched_at = dt.datetime.fromisoformat(anchor)
    order = ws.export_order(ws.items)
    baseline = _rss_mib()
    generate = frame_s = write_s = 0.0
    objects_written = 0
    for b, start in enumerate(range(0, n, batch_size)):
        t0 = time.perf_counter()
        objects = ws.raw_objects(ws.message_frame(ws.items.take(order[start:start + batch_size])))
        t1 = time.perf_counter()
        info = _batch_info("bench-user", fetched_at.date(), f"bench-import-{b:04d}", fetched_at)
        frame = bronze.bronze_frame(objects, info)
        t2 = time.perf_counter()
        objects_written += bronze.write_batch(store, frame, info)
        t3 = time.perf_counter()
        generate += t1 - t0
        frame_s += t2 - t1
        write_s += t3 - t2
        del objects, frame
    seconds = frame_s + write_s
    return {"objects": objects_written, "seconds": seconds, "items_per_s": n / seconds,
            "bronze_frame_s": frame_s, "write_batch_s": write_s, "generate_s": generate,
            "baseline_rss_mib": baseline, "peak_rss_mib": _peak_rss_mib()}


def phase_silver(root: str, n: int, anchor: str) -> dict[str, Any]:
    """The silver/platform_content step for the bronze partition, into an empty silver table."""
    from io_managers.delta_store import DeltaStore

    # the normalizer modules load once per process (a code location has them loaded), not per item
    from yarn_assets.ingest import bronze, platforms, silver

    platforms.all_platforms()

    store = DeltaStore(root)
    now = dt.datetime.fromisoformat(anchor)
    baseline = _rss_mib()
    t0 = time.perf_counter()
    bronze_rows = bronze.scan_partition(store, SILVER_PLATFORM, now.date())  # as the asset reads it
    batches = bronze_rows.select(["batch_id", "user_id", "provider", "fetched_at"]).unique("batch_id").collect()
    t1 = time.perf_counter()
    norm = silver.normalize_partition(bronze_rows)  # reads and normalizes batch by batch
    t2 = time.perf_counter()
    merged = silver.merge_platform_content(store, norm.rows, now=now)
    t3 = time.perf_counter()
    seconds = t3 - t0
    return {"items": norm.rows.height, "seconds": seconds, "items_per_s": norm.rows.height / seconds,
            "read_s": t1 - t0, "normalize_s": t2 - t1, "merge_s": t3 - t2,
            "new": merged.new, "rejected": sum(len(r) for r in norm.rejects.values()), "batches": batches.height,
            "baseline_rss_mib": baseline, "peak_rss_mib": _peak_rss_mib()}


def phase_append(root: str, target: str) -> dict[str, Any]:
    """Reference: a plain partitioned append of the same silver rows, in the order silver got them."""
    import polars as pl
    from deltalake import write_deltalake

    from yarn_assets.core.tables import PLATFORM_CONTENT

    df = pl.read_delta(f"{root}/{PLATFORM_CONTENT.name}").select(list(PLATFORM_CONTENT.schema)) \
        .sort("resource_id", "external_id")
    baseline = _rss_mib()
    t0 = time.perf_counter()
    write_deltalake(target, df.to_arrow(), mode="append", partition_by=list(PLATFORM_CONTENT.partition_by))
    seconds = time.perf_counter() - t0
    return {"items": df.height, "seconds": seconds, "items_per_s": df.height / seconds,
            "baseline_rss_mib": baseline, "peak_rss_mib": _peak_rss_mib()}


def phase_prepare_incremental(root: str, n: int, anchor: str, size: int, out: str) -> dict[str, Any]:
    """Land the incremental sync batch in bronze (next day), normalize it, save the silver rows."""
    from io_managers.delta_store import DeltaStore
    from yarn_assets.ingest import bronze, silver

    store = DeltaStore(root)
    ws = _workspace(n, anchor)
    sync_at = dt.datetime.fromisoformat(anchor) + dt.timedelta(days=1)
    items, shape = ws.incremental(size, sync_at)
    info = _batch_info("bench-user", sync_at.date(), "bench-sync-0001", sync_at)
    info = type(info)(**{**info.__dict__, "source_kind": "sync", "provider": "slack_api"})
    bronze.write_batch(store, bronze.bronze_frame(ws.raw_objects(ws.message_frame(items)), info), info)
    t0 = time.perf_counter()
    norm = silver.normalize_partition(bronze.scan_partition(store, SILVER_PLATFORM, sync_at.date()))
    normalize_s = time.perf_counter() - t0
    norm.rows.write_parquet(out)
    return {**shape, "rows": norm.rows.height, "read_normalize_s": normalize_s, "sync_at": sync_at.isoformat()}


def phase_merge(root: str, batch: str, sync_at: str) -> dict[str, Any]:
    """The product merge (``merge_platform_content``) of the incremental batch."""
    import polars as pl
    from deltalake import DeltaTable

    from io_managers.delta_store import DeltaStore
    from yarn_assets.core.tables import PLATFORM_CONTENT
    from yarn_assets.ingest import silver

    store = DeltaStore(root)
    rows = pl.read_parquet(batch)
    t0 = time.perf_counter()
    merged = silver.merge_platform_content(store, rows, now=dt.datetime.fromisoformat(sync_at))
    seconds = time.perf_counter() - t0
    table = DeltaTable(store.uri(PLATFORM_CONTENT))
    return {"seconds": seconds, "new": merged.new, "updated": merged.updated, "unchanged": merged.unchanged,
            "files_scanned": merged.stats.files_scanned, "files_skipped": merged.stats.files_skipped,
            "files_added": merged.stats.files_added, "files_removed": merged.stats.files_removed,
            "rows_copied": merged.stats.raw.get("num_target_rows_copied", 0),
            "delta_scan_ms": merged.stats.raw.get("scan_time_ms"), "delta_rewrite_ms": merged.stats.raw.get(
                "rewrite_time_ms"), "delta_execution_ms": merged.stats.raw.get("execution_time_ms"),
            "rows_after": _rows(table), "peak_rss_mib": _peak_rss_mib()}


def phase_unpruned(root: str, batch: str) -> dict[str, Any]:
    """Reference: ``DeltaTable.merge`` on the keys only, update all / insert all."""
    import polars as pl
    from deltalake import DeltaTable

    from yarn_assets.core.tables import PLATFORM_CONTENT

    uri = f"{root}/{PLATFORM_CONTENT.name}"
    data = PLATFORM_CONTENT.conform(pl.read_parquet(batch).drop("is_deleted", "seq")).to_arrow()
    t0 = time.perf_counter()
    raw = (
        DeltaTable(uri).merge(source=data, predicate=KEY_PREDICATE, source_alias="s", target_alias="t")
        .when_matched_update_all().when_not_matched_insert_all().execute()
    )
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "new": raw.get("num_target_rows_inserted"),
            "updated": raw.get("num_target_rows_updated"), "files_scanned": raw.get("num_target_files_scanned"),
            "files_added": raw.get("num_target_files_added"), "files_removed": raw.get("num_target_files_removed"),
            "rows_copied": raw.get("num_target_rows_copied", 0), "delta_scan_ms": raw.get("scan_time_ms"),
            "delta_rewrite_ms": raw.get("rewrite_time_ms"), "delta_execution_ms": raw.get("execution_time_ms"),
            "rows_after": _rows(DeltaTable(uri)), "peak_rss_mib": _peak_rss_mib()}


def _rows(table: Any) -> int:
    import pyarrow as pa

    return sum(n or 0 for n in pa.table(table.get_add_actions(flatten=True)).column("num_records").to_pylist())


def run(phase: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Run one phase in a fresh interpreter (spawn), so its peak RSS is not inherited."""
    load = os.getloadavg()[0]
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        result = pool.submit(phase, **kwargs).result()
    result["load_before"] = load
    print(f"    {phase.__name__.removeprefix('phase_')}: "
          + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()), flush=True)
    return result


def _copy_silver(src_root: Path, dst_root: Path) -> None:
    from yarn_assets.core.tables import BRONZE_ITEMS, PLATFORM_CONTENT

    if dst_root.exists():
        shutil.rmtree(dst_root)
    shutil.copytree(src_root / PLATFORM_CONTENT.name, dst_root / PLATFORM_CONTENT.name)
    (dst_root / BRONZE_ITEMS.name).parent.mkdir(parents=True, exist_ok=True)
    (dst_root / BRONZE_ITEMS.name).symlink_to(src_root / BRONZE_ITEMS.name)  # read-only (tombstone check)


# ---------------------------------------------------------------------- driver
def _summary(runs: list[dict[str, Any]], items: int) -> dict[str, Any]:
    """Best and median of the repeats (the machine is shared: the best run is the least disturbed)."""
    secs = sorted(r["seconds"] for r in runs)
    best, median = secs[0], statistics.median(secs)
    return {"best_s": best, "median_s": median, "items_per_s_best": items / best, "items_per_s_median": items / median,
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs), "runs": runs}


def bench_size(n: int, work: Path, anchor: str, batch_size: int, incremental: int, repeat: int) -> dict[str, Any]:
    base = work / f"n{n}"
    if base.exists():
        shutil.rmtree(base)
    root = base / "warehouse"
    out: dict[str, Any] = {"n": n, "repeat": repeat}
    bronze_runs = []
    for r in range(repeat):  # each repeat lands the same objects into a fresh warehouse; the first is kept
        target = root if r == 0 else base / f"warehouse{r}"
        target.mkdir(parents=True)
        print(f"[{n:,}] bronze {r + 1}/{repeat} ...", flush=True)
        bronze_runs.append(run(phase_bronze, root=str(target), n=n, anchor=anchor, batch_size=batch_size))
        if r:
            shutil.rmtree(target)
    out["bronze"] = _summary(bronze_runs, n)
    silver_runs, append_runs = [], []
    reference = base / "append_reference"
    for r in range(repeat):  # silver and its reference alternate, so both see the same machine load
        shutil.rmtree(root / "silver", ignore_errors=True)
        print(f"[{n:,}] silver {r + 1}/{repeat} ...", flush=True)
        silver_runs.append(run(phase_silver, root=str(root), n=n, anchor=anchor))
        print(f"[{n:,}] plain append {r + 1}/{repeat} ...", flush=True)
        append_runs.append(run(phase_append, root=str(root), target=str(reference)))
        shutil.rmtree(reference)
    out["silver"] = _summary(silver_runs, silver_runs[0]["items"])
    out["append"] = _summary(append_runs, append_runs[0]["items"])
    print(f"[{n:,}] incremental batch ...", flush=True)
    batch = str(base / "incremental.parquet")
    prep = run(phase_prepare_incremental, root=str(root), n=n, anchor=anchor, size=incremental, out=batch)
    out["incremental"] = prep
    merge_runs, unpruned_runs = [], []
    copy = base / "copy"
    for r in range(repeat):  # every merge goes into a fresh copy of the same silver table
        _copy_silver(root, copy)
        print(f"[{n:,}] merge {r + 1}/{repeat} ...", flush=True)
        merge_runs.append(run(phase_merge, root=str(copy), batch=batch, sync_at=prep["sync_at"]))
        _copy_silver(root, copy)
        print(f"[{n:,}] unpruned merge {r + 1}/{repeat} ...", flush=True)
        unpruned_runs.append(run(phase_unpruned, root=str(copy), batch=batch))
    shutil.rmtree(copy)
    out["merge"] = _summary(merge_runs, incremental)
    out["unpruned"] = _summary(unpruned_runs, incremental)
    return out


def _fmt(x: float, unit: str = "") -> str:
    return f"{x:,.0f}{unit}" if x >= 100 else f"{x:.2f}{unit}"


TARGETS = (
    "silver >= 50% of plain append throughput at the largest size",
    "merge into the largest <= 1.5x the merge into the smallest",
    "merge >= 5x faster than the unpruned merge at the largest size",
    "peak RSS < 2 GiB in every phase at the largest size",
)


def targets(results: list[dict[str, Any]], stat: str) -> list[tuple[str, str, bool]]:
    small, big = results[0], results[-1]
    sec = f"{stat}_s"
    ratio = big["append"][sec] / big["silver"][sec]
    scale = big["merge"][sec] / small["merge"][sec]
    speedup = big["unpruned"][sec] / big["merge"][sec]
    rss = max(big[p]["peak_rss_mib"] for p in ("bronze", "silver", "merge"))
    return [
        (TARGETS[0], f"{ratio:.0%}", ratio >= 0.5),
        (TARGETS[1], f"{scale:.2f}x", scale <= 1.5 or len(results) == 1),
        (TARGETS[2], f"{speedup:.1f}x", speedup >= 5),
        (TARGETS[3], f"{rss:,.0f} MiB", rss < 2048),
    ]


def report(results: list[dict[str, Any]]) -> str:
    lines = []
    head = f"{'(best of ' + str(results[0]['repeat']) + ' / median)':<34}" + "".join(
        f"{r['n']:>26,}" for r in results)
    lines += [head, "-" * len(head)]

    def row(label: str, fn: Callable[[dict[str, Any]], str]) -> None:
        lines.append(f"{label:<34}" + "".join(f"{fn(r):>26}" for r in results))

    def both(phase: str, key: str, unit: str = "") -> Callable[[dict[str, Any]], str]:
        return lambda r: f"{_fmt(r[phase][key + '_best'], unit)} / {_fmt(r[phase][key + '_median'], unit)}"

    def secs(phase: str) -> Callable[[dict[str, Any]], str]:
        return lambda r: f"{r[phase]['best_s']:.3f} / {r[phase]['median_s']:.3f} s"

    for phase, label in (("bronze", "bronze write"), ("silver", "silver step"), ("append", "plain append")):
        row(f"{label:<14}items/s", both(phase, "items_per_s"))
        row(f"{'':<14}seconds", secs(phase))
        row(f"{'':<14}peak RSS", lambda r, p=phase: _fmt(r[p]["peak_rss_mib"], " MiB"))
    row("  silver index/normalize/merge s", lambda r: "/".join(
        f"{min(x[k] for x in r['silver']['runs']):.2f}" for k in ("read_s", "normalize_s", "merge_s")))
    row("silver / plain append", lambda r: f"{r['silver']['items_per_s_best'] / r['append']['items_per_s_best']:.0%}"
        f" / {r['silver']['items_per_s_median'] / r['append']['items_per_s_median']:.0%}")
    inc = results[0]["incremental"]
    lines.append(f"incremental batch: {inc['new']:,} new + {inc['duplicates']:,} exact duplicates "
                 f"+ {inc['edits']:,} edits, merged into the silver table above")
    row("merge_platform_content", secs("merge"))
    first = lambda r, p: r[p]["runs"][0]  # noqa: E731
    row("  new/updated/unchanged", lambda r: "{new}/{updated}/{unchanged}".format(**first(r, "merge")))
    row("  files rewritten (rows copied)", lambda r: "{files_removed} ({rows_copied:,})".format(**first(r, "merge")))
    row("  rows after", lambda r: "{rows_after:,}".format(**first(r, "merge")))
    row("  peak RSS", lambda r: _fmt(r["merge"]["peak_rss_mib"], " MiB"))
    row("unpruned DeltaTable.merge", secs("unpruned"))
    row("  new/updated", lambda r: "{new}/{updated}".format(**first(r, "unpruned")))
    row("  files rewritten (rows copied)", lambda r: "{files_removed} ({rows_copied:,})".format(**first(r, "unpruned")))
    row("unpruned / product", lambda r: f"{r['unpruned']['best_s'] / r['merge']['best_s']:.1f}x"
        f" / {r['unpruned']['median_s'] / r['merge']['median_s']:.1f}x")
    if len(results) > 1:
        small, big = results[0], results[-1]
        lines.append(f"merge {big['n']:,} / {small['n']:,} (best / median): product "
                     f"{big['merge']['best_s'] / small['merge']['best_s']:.2f}x / "
                     f"{big['merge']['median_s'] / small['merge']['median_s']:.2f}x, unpruned "
                     f"{big['unpruned']['best_s'] / small['unpruned']['best_s']:.2f}x / "
                     f"{big['unpruned']['median_s'] / small['unpruned']['median_s']:.2f}x")
    lines.append("")
    lines.append("targets (issue 2 acceptance)                              best       median")
    for (name, best, ok_b), (_, median, ok_m) in zip(targets(results, "best"), targets(results, "median"),
                                                      strict=True):
        lines.append(f"  {name:<64} {best:>9} {'ok' if ok_b else 'MISS':<4} {median:>9} {'ok' if ok_m else 'MISS'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated item counts")
    parser.add_argument("--batch-size", type=int, default=100_000, help="objects per bronze batch")
    parser.add_argument("--incremental", type=int, default=10_000, help="items in the incremental sync batch")
    parser.add_argument("--repeat", type=int, default=3, help="runs of every timed phase (best and median)")
    parser.add_argument("--workdir", help="scratch folder (default: a temporary folder, removed afterwards)")
    parser.add_argument("--out", default=str(RESULTS), help="folder for the JSON result")
    args = parser.parse_args(argv)
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    anchor = (now - dt.timedelta(days=1)).isoformat()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="yarnnn-bench-"))
    started = time.perf_counter()
    try:
        results = [bench_size(n, work, anchor, args.batch_size, args.incremental, args.repeat) for n in sizes]
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    table = report(results)
    print()
    print(table)
    doc = {
        "benchmark": "bronze_silver",
        "at": now.isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()},
        "args": vars(args),
        "wall_s": time.perf_counter() - started,
        "results": results,
        "table": table,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bronze_silver_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(doc, indent=2, default=str))
    print(f"\nwritten {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
