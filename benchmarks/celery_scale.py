"""API-mode signal hour fanned out over Celery workers: one worker against two.

    python -m benchmarks.celery_scale                          # 1,000 users, 4 shards, 1 then 2 workers
    python -m benchmarks.celery_scale --users 100 --shards 4 --workers 1,2 --latency 1.0 --concurrency 32

The users and their week of content are the ones ``benchmarks.users_scale`` writes (same ``setup``,
through the product's silver path); the LLM is the loopback Anthropic server answering every signal
pass with ``no_action`` after ``--latency`` seconds. For each worker count W, on a fresh copy of the
same home and a fresh PostgreSQL Dagster instance (``deploy/dagster.postgres.yaml``):

- W real ``celery -A dagster_celery.app worker`` processes (prefork, ``--concurrency 1``, i.e. one
  step at a time per worker, exactly as ``tests/dist`` and ``deploy/celery`` start them) on Redis;
- the hour is fanned out the way the product does it: ``signals_hourly_schedule`` requests one run per
  (hour, user shard), and each run becomes a run worker of its own (the launcher starts one process
  per run; ``max_concurrent_runs`` 8 lets all of an hour's shards start together). Here each run
  worker is a process running ``execute_job`` with ``YARNNN_EXECUTOR=celery``, so each run's step
  is a Celery task and whichever worker is free takes it: with 1 worker the shards run one after
  another, with 2 two at a time;
- every step process has its own LLM limiter (``YARNNN_LLM_MAX_CONCURRENCY``, per process): adding a
  worker adds its 32 calls in flight, which is what a deployment scales by. A global client-side
  requests-per-minute limit would cap the hour whatever the worker count (and the API's own limits
  come back as 429/headers, which each worker's limiter honours).

Printed per W: wall time of the hour (first run worker started -> last run finished), the step span
(first shard step started -> last shard step finished, from the instance's event log: the part
that workers parallelise; run-worker start-up is the same for any W), which worker ran which shard,
API calls, passes evaluated, and ``uptime`` load before and after. Then the ratio of 2 workers to 1
(target <= 0.6).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
TARGET_RATIO = 0.6
WARMUP_USER = "warmup-no-such-user"


def signals_job() -> Any:
    """Reconstructed by name in every run worker and Celery worker (YARNNN_EXECUTOR=celery)."""
    from resources.settings import load_settings
    from yarn_assets.definitions import build_definitions

    return build_definitions(load_settings()).resolve_job_def("signals_job")


def run_worker(key: str, warmup: bool = False) -> None:
    """One (hour, shard) run, as the run launcher's worker process executes it: steps go to Celery.
    ``warmup``: a manual run for a user that does not exist (no passes, nothing written)."""
    import dagster as dg

    hour, shard = key.split("|")
    tags = {"dagster/partition": key, "dagster/partition/hour": hour, "dagster/partition/shard": shard,
            "yarnnn/trigger": "manual" if warmup else "schedule"}
    config = {"ops": {"signal_passes": {"config": {"user_ids": [WARMUP_USER], "trigger": "manual"}}}} if warmup else {}
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(signals_job), instance=instance, tags=tags, run_config=config,
                                raise_on_error=False)
        print("RUN " + json.dumps({"run_id": result.run_id, "success": result.success}), flush=True)


def _pg_admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_DSN, connect_timeout=3)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _uptime() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _hour_keys(busy: dt.datetime, shards: int) -> list[str]:
    hour = busy.strftime("%Y-%m-%d-%H:00")
    return [f"{hour}|{s}" for s in range(shards)]


def _run_hour(keys: list[str], env: dict[str, str], pool: Any, warmup: bool = False) -> list[dict[str, Any]]:
    """One run worker process per key, all at once; their run ids once every one has finished."""
    cmd = [sys.executable, "-m", "benchmarks.celery_scale", *(["--warmup"] if warmup else []), "--run-worker"]
    procs = [subprocess.Popen([*cmd, key], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for key in keys]
    outs = [p.communicate() for p in procs]
    runs = []
    for (out, err), p in zip(outs, procs, strict=True):
        line = next((x for x in out.splitlines() if x.startswith("RUN ")), None)
        if p.returncode != 0 or line is None or not json.loads(line[4:])["success"]:
            tails = "\n".join(pool.log_tail(n) for n in pool.names)
            raise RuntimeError(f"run worker failed:\n{out[-2000:]}\n{err[-4000:]}\n--- celery workers:\n{tails}")
        runs.append(json.loads(line[4:]))
    return runs


def _step_stats(run_ids: list[str]) -> dict[str, Any]:
    """Step span and worker of each shard, from the instance's event log."""
    import dagster as dg

    from tests.dist.snapshot import celery_hosts

    starts, ends, hosts, step_seconds = [], [], {}, []
    with dg.DagsterInstance.get() as instance:
        for run_id in run_ids:
            run = instance.get_run_by_id(run_id)
            shard = run.tags.get("dagster/partition/shard") if run else "?"
            s = [r.timestamp for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)]
            e = [r.timestamp for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)]
            starts += s
            ends += e
            if s and e:
                step_seconds.append(round(max(e) - min(s), 1))
            hosts[shard] = sorted({h.split("@")[0] for h in celery_hosts(instance, run_id).values()})
    span = max(ends) - min(starts) if starts and ends else float("nan")
    return {"step_span": span, "first_step": min(starts, default=float("nan")),
            "last_step": max(ends, default=float("nan")), "shard_workers": hosts, "step_seconds": step_seconds}


def _passes(home: Path, busy: dt.datetime) -> dict[str, int]:
    import polars as pl

    from io_managers.delta_store import DeltaStore
    from resources.settings import YarnSettings

    lf = DeltaStore(YarnSettings(home=home).resolved_warehouse_root).scan("gold/signal_summaries")
    if lf is None:
        return {}
    df = lf.filter(pl.col("partition_hour") == pl.lit(busy)).collect()
    return {"passes": df.height, "evaluated": df.filter(pl.col("status") == "evaluated").height,
            "failed": df.filter(pl.col("status") == "failed").height}


def measure(source: Path, workdir: Path, workers: int, args: argparse.Namespace, server: Any,
            busy: dt.datetime) -> dict[str, Any]:
    """One hour on a fresh copy of ``source`` with ``workers`` Celery workers."""
    import redis

    from benchmarks.users_scale import _env
    from tests.dist.engines import CeleryWorkers

    home = workdir / f"home_w{workers}"
    shutil.copytree(source, home)
    dagster_home = workdir / f"dagster_w{workers}"
    dagster_home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.postgres.yaml", dagster_home / "dagster.yaml")
    db = f"yarnnn_bench_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{db}"')
    broker = args.broker
    redis.Redis.from_url(broker).flushdb()
    env = {**_env(home), "DAGSTER_HOME": str(dagster_home), "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432",
           "DAGSTER_PG_DB": db, "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "",
           "YARNNN_EXECUTOR": "celery", "YARNNN_CELERY_BROKER_URL": broker, "YARNNN_USER_SHARDS": str(args.shards),
           "YARNNN_LLM_MODE": "api", "ANTHROPIC_API_KEY": "bench-key", "YARNNN_ANTHROPIC_BASE_URL": server.base_url,
           "YARNNN_LLM_MAX_CONCURRENCY": str(args.concurrency), "PYTHONPATH": str(REPO)}
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        names = [f"w{i + 1}" for i in range(workers)]
        with CeleryWorkers(REPO, env, names, log_dir=workdir / f"logs_w{workers}") as pool:
            warm = _run_hour(_hour_keys(busy - dt.timedelta(days=7), workers), env, pool, warmup=True)
            warmed = sorted({w for ws in _step_stats([r["run_id"] for r in warm])["shard_workers"].values()
                             for w in ws})  # each worker has run a step: its pool process has loaded the code
            calls_before = len(server.requests)
            load_before = _uptime()
            t0, started = time.perf_counter(), time.time()
            runs = _run_hour(_hour_keys(busy, args.shards), env, pool)
            wall, ended = time.perf_counter() - t0, time.time()
            load_after = _uptime()
            calls = len(server.requests) - calls_before
        stats = _step_stats([r["run_id"] for r in runs])
        # run workers starting (definitions load, executor, publish) before the first step; finishing after the last
        stats["launch"], stats["finish"] = stats.pop("first_step") - started, ended - stats.pop("last_step")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return {"workers": workers, "wall": wall, **stats, "warmed": warmed, "api_calls": calls, **_passes(home, busy),
            "load_before": load_before, "load_after": load_after}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--shards", type=int, default=4, help="user_shards: runs (and Celery steps) per hour")
    parser.add_argument("--workers", default="1,2", help="comma-separated Celery worker counts")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per model call")
    parser.add_argument("--concurrency", type=int, default=32, help="LLM calls in flight per worker process")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13", help="Redis database of its own (flushed)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--run-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_worker:
        run_worker(args.run_worker, args.warmup)
        return 0
    from benchmarks.users_scale import _api_server, _run_child, anchors

    workdir = Path(tempfile.mkdtemp(prefix=f"yarnnn-celery-{args.users}-"))
    source = workdir / "setup_home"
    source.mkdir()
    info = _run_child(source, "setup", args.users, False)
    print(f"{args.users:,} users: setup {info['process_seconds']:.0f} s, {info['silver_rows']:,} silver rows "
          f"({workdir}); {args.shards} shards, latency {args.latency} s, {args.concurrency} calls per worker",
          flush=True)
    saved = dict(os.environ)
    server = _api_server(args.latency)
    os.environ.clear()
    os.environ.update(saved)
    busy = anchors()["busy"]
    results = []
    try:
        for w in [int(x) for x in args.workers.split(",") if x]:
            r = measure(source, workdir, w, args, server, busy)
            results.append(r)
            (workdir.parent / f"{workdir.name}-w{w}.json").write_text(json.dumps(r, default=str))
            print(f"  {w} worker(s): hour {r['wall']:.1f} s wall = {r['launch']:.1f} s run workers starting + "
                  f"{r['step_span']:.1f} s steps + {r['finish']:.1f} s runs finishing; "
                  f"step seconds per run {r['step_seconds']}, shards on {r['shard_workers']}, "
                  f"{r['api_calls']} API calls, "
                  f"{r.get('evaluated')} of {r.get('passes')} passes evaluated, {r.get('failed')} failed; "
                  f"workers warmed: {r['warmed']}; "
                  f"load {r['load_before']} -> {r['load_after']}", flush=True)
    finally:
        server.__exit__(None, None, None)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    by = {r["workers"]: r for r in results}
    if 1 in by and 2 in by:
        wall, span = by[2]["wall"] / by[1]["wall"], by[2]["step_span"] / by[1]["step_span"]
        for name, ratio in (("wall time of the hour", wall), ("step span (the part the workers share)", span)):
            mark = "met" if ratio <= TARGET_RATIO else "MISSED"
            print(f"[{mark}] 2 workers / 1 worker, {name}: {ratio:.2f} (target <= {TARGET_RATIO})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
