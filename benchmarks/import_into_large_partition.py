"""Benchmark: a 1-item import into a (day, gmail) partition that already holds 150 k rows (issue 11 §4).

    python -m benchmarks.import_into_large_partition [--rows 150000] [--batches 15] [--repeat 3]

Setup (not timed): 150 k generated messages land in bronze as 15 earlier import batches of one
(day, gmail) partition and are merged into silver; then a 1-message ``.eml`` is registered and its
bronze step runs (it lands one batch). From that same state (a copy of the yarnnn home per run),
the ``silver/platform_content`` step runs two ways, each in a fresh spawned process:

* **before**: the whole partition is re-normalized and merged: what every import's silver step
  did before the batch ledger (today: a replay run, tag ``yarnnn/replay: full``);
* **after**: the silver step of an ordinary run: only the batches it has not merged (here, 1).

The step time is Dagster's own (step start to step end, from the run's step stats). Prints
best / median of ``--repeat`` runs and peak RSS; writes JSON to ``benchmarks/results/``.
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
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from email.utils import format_datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _message(i: int, when: dt.datetime, tag: str) -> bytes:
    return (f"From: Sender {i % 50} <sender{i % 50}@example.com>\nTo: alice@example.com\n"
            f"Subject: Status update {tag}-{i}\nDate: {format_datetime(when)}\nMessage-ID: <{tag}-{i}@example.com>\n"
            f"Content-Type: text/plain; charset=utf-8\n\nHello Alice, this is update {i} about project {i % 97}.\n"
            "Regards\n").encode()


def _settings(home: Path):  # type: ignore[no-untyped-def]
    from resources.settings import load_settings

    return load_settings(home=home, executor="in_process")


def setup(home: Path, rows: int, batches: int) -> dict[str, Any]:
    """The large partition (bronze + silver), then the 1-item import landed in bronze."""
    import dagster as dg

    from control_plane import db
    from control_plane.models import User
    from io_managers.delta_store import DeltaStore
    from yarn_assets.definitions import build_definitions
    from yarn_assets.ingest import batches as ledger
    from yarn_assets.ingest import bronze, import_jobs
    from yarn_assets.ingest.objects import RawObject
    from yarn_assets.ingest.sources import BRONZE_IMPORTS, SILVER_CONTENT

    settings = _settings(home)
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    with db.session_scope(url) as s:
        s.add(User(id="alice", email="alice@example.com", tier="pro"))
    store = DeltaStore(settings.resolved_warehouse_root)
    now = dt.datetime.now(dt.UTC)
    per = rows // batches
    t0 = time.perf_counter()
    for b in range(batches):
        objects = [RawObject("email_message", f"<bulk{b}-{i}@example.com>", _message(i, now - dt.timedelta(minutes=i),
                                                                                    f"bulk{b}"),
                             resource_id="mbox", resource_name="mbox") for i in range(per)]
        info = bronze.BatchInfo("alice", "gmail", now.date(), "import", "mbox", f"bulk-{b:03d}", now, run_id="setup")
        bronze.write_batch(store, bronze.bronze_frame(objects, info), info)
        with db.session_scope(url) as s:
            ledger.record_landed(s, info, rows=per)
    land_s = time.perf_counter() - t0
    job = build_definitions(settings).resolve_job_def("ingest_job")
    key = f"{now.date().isoformat()}|gmail"
    with dg.DagsterInstance.ephemeral() as instance:
        t0 = time.perf_counter()
        assert job.execute_in_process(instance=instance, partition_key=key, asset_selection=[SILVER_CONTENT]).success
        first_silver_s = time.perf_counter() - t0
        eml = home / "one.eml"
        eml.write_bytes(_message(0, now, "one"))
        with db.session_scope(url) as s:
            import_jobs.register_import(s, user_id="alice", path=eml, archive_root=settings.resolved_home / "imports",
                                        partition_date=now.date())
        assert job.execute_in_process(instance=instance, partition_key=key, asset_selection=[BRONZE_IMPORTS]).success
    db.dispose_all()
    return {"key": key, "rows": per * batches, "batches": batches, "bronze_land_s": land_s,
            "first_silver_s": first_silver_s}


def silver_step(home: str, key: str, full: bool) -> dict[str, Any]:
    """One silver step (in a fresh process): Dagster's step time and the asset's own counts."""
    import dagster as dg

    from yarn_assets.definitions import build_definitions
    from yarn_assets.ingest.sources import SILVER_CONTENT

    settings = _settings(Path(home))
    job = build_definitions(settings).resolve_job_def("ingest_job")
    tags = {"yarnnn/replay": "full"} if full else {}
    with dg.DagsterInstance.ephemeral() as instance:
        t0 = time.perf_counter()
        quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
        result = job.execute_in_process(instance=instance, partition_key=key, asset_selection=[SILVER_CONTENT],
                                        tags=tags, run_config=quiet)
        wall = time.perf_counter() - t0
        assert result.success
        [stats] = [s for s in instance.get_run_step_stats(result.run_id) if s.step_key == "silver__platform_content"]
        meta = {k: v.value for k, v in result.asset_materializations_for_node("silver__platform_content")[0]
                .metadata.items()}
    return {"step_s": stats.end_time - stats.start_time, "run_wall_s": wall,
            "batches_merged": meta["batches_merged"], "bronze_objects": meta["bronze_objects"], "new": meta["new"],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _best_median(values: list[float]) -> str:
    return f"{min(values):.3f} / {statistics.median(values):.3f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=150_000)
    ap.add_argument("--batches", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="yarnnn-bench-") as tmp:
        base = Path(tmp) / "base"
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            info = pool.submit(setup, base, args.rows, args.batches).result()
        runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
        for i in range(args.repeat):
            for label, full in (("after", False), ("before", True)):  # alternate: both see the same load
                home = Path(tmp) / f"{label}-{i}"
                shutil.copytree(base, home)
                with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                    runs[label].append(pool.submit(silver_step, str(home), info["key"], full).result())
                shutil.rmtree(home)
    before, after = runs["before"], runs["after"]
    print(f"1-item .eml import into a (day, gmail) partition of {info['rows']:,} rows "
          f"({info['batches']} earlier batches); load average {os.getloadavg()[0]:.1f}")
    print(f"(best / median of {args.repeat})          before: full partition      after: per batch")
    print(f"silver step (Dagster step time)     {_best_median([r['step_s'] for r in before]):>22}"
          f"   {_best_median([r['step_s'] for r in after]):>18}")
    print(f"silver-only run, wall               {_best_median([r['run_wall_s'] for r in before]):>22}"
          f"   {_best_median([r['run_wall_s'] for r in after]):>18}")
    print(f"batches normalized + merged         {before[0]['batches_merged']:>22}   {after[0]['batches_merged']:>18}")
    print(f"bronze objects normalized           {before[0]['bronze_objects']:>22,}   {after[0]['bronze_objects']:>18,}")
    print(f"rows inserted into silver           {before[0]['new']:>22}   {after[0]['new']:>18}")
    print(f"peak RSS                            {max(r['peak_rss_mib'] for r in before):>18,.0f} MiB"
          f"   {max(r['peak_rss_mib'] for r in after):>14,.0f} MiB")
    print(f"setup: bronze landing {info['bronze_land_s']:.1f} s, first silver load {info['first_silver_s']:.1f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"import_into_large_partition-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps({"setup": info, "before": before, "after": after, "machine": platform.platform(),
                               "cpus": os.cpu_count()}, indent=2))
    print(f"JSON: {out}")


if __name__ == "__main__":
    main()
