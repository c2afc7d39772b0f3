"""Serving-layer latency on loopback: OAuth consent round trips and MCP tool calls.

``python -m benchmarks.serving_connect_mcp [--flows 30] [--items 2000] [--calls 50]``

* consent: start -> provider authorize (302) -> callback (state check, code exchange with the
  loopback provider, Fernet encryption, control-plane write, activity event), per provider; the
  reference is one authenticated ``GET /connect`` on the same server (the HTTP + auth floor);
* MCP: ``search_content`` and ``read_item`` through the SDK client against ``yarnnn serve mcp
  --transport http`` (a real process) over one user's ``--items`` items; the reference is the same
  read called in-process (no MCP, no HTTP). Peak RSS of the server process is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _pct(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"p50 {statistics.median(values) * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms"


def consent_bench(flows: int) -> None:
    import pytest

    from tests.connect.conftest import _world

    mp = pytest.MonkeyPatch()
    gen = _world(mp)
    world = next(gen)
    import requests

    try:
        floor = []
        for _ in range(flows):
            t = time.perf_counter()
            requests.get(f"{world.api}/connect", headers=world.headers(), timeout=10).raise_for_status()
            floor.append(time.perf_counter() - t)
        print(f"  reference GET /connect        {_pct(floor)}")
        for provider in ("slack", "google", "notion"):
            took = []
            for _ in range(flows):
                t = time.perf_counter()
                assert world.connect(provider).status_code == 200
                took.append(time.perf_counter() - t)
            print(f"  consent {provider:7s} (3 requests) {_pct(took)}  {flows / sum(took):6.1f} flows/s")
    finally:
        gen.close()
        mp.undo()


def _seed(home: Path, items: int) -> dict[str, Any]:
    import polars as pl

    from control_plane import db
    from control_plane.models import User
    from io_managers.delta_store import DeltaStore
    from resources.embeddings import WordLlamaEmbedder
    from resources.settings import load_settings
    from tests.mcp.conftest import _content
    from yarn_assets.core.tables import PLATFORM_CONTENT
    from yarn_assets.people import vectors

    settings = load_settings()
    store = DeltaStore(settings.resolved_warehouse_root)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    words = ["budget", "launch", "invoice", "hiring", "roadmap", "offsite", "vendor", "review", "pricing", "design"]
    rows = {f"m{i}": ("slack", f"C{i % 7}", None, f"{words[i % 10]} update {i}: {words[(i * 3) % 10]} and "
                      f"{words[(i * 7) % 10]} need a decision from the team this week") for i in range(items)}
    df = _content("ada", rows, now)
    store.append(PLATFORM_CONTENT, df)
    t = time.perf_counter()
    vectors.embed_partition(store, df, WordLlamaEmbedder(), 1000, 12)
    print(f"  seeded {items} items, embedded in {time.perf_counter() - t:.1f} s")
    url = settings.resolved_control_plane_url
    db.ensure_schema(url, True)
    with db.session_scope(url) as s:
        s.add(User(id="ada", email="ada@example.com"))
    return {"keys": list(df["item_key"]), "settings": settings, "frame": pl.DataFrame()}


def mcp_bench(items: int, calls: int) -> None:
    import anyio
    import httpx2
    import psutil
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from tests.mcp.conftest import SIGNING_KEY, free_port, server_env, token
    from yarn_assets.mcp.app import reads_from_settings

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["YARNNN_HOME"] = str(home)
        os.environ["YARNNN_AUTH_SIGNING_KEY"] = SIGNING_KEY
        seeded = _seed(home, items)
        reads = reads_from_settings(seeded["settings"])
        reads.search("ada", "warm up", 5)
        ref_search, ref_read = [], []
        for i in range(calls):
            t = time.perf_counter()
            reads.search("ada", f"decision about the {['budget', 'launch', 'vendor'][i % 3]}", 10)
            ref_search.append(time.perf_counter() - t)
            t = time.perf_counter()
            reads.read_item("ada", seeded["keys"][i % len(seeded["keys"])])
            ref_read.append(time.perf_counter() - t)
        port = free_port()
        yarnnn = str(Path(sys.executable).parent / "yarnnn")
        proc = subprocess.Popen([yarnnn, "serve", "mcp", "--transport", "http", "--port", str(port)], cwd=REPO,
                                env=server_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = 0
        try:
            import socket

            deadline = time.monotonic() + 90
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            server = psutil.Process(proc.pid)
            results: dict[str, list[float]] = {"search": [], "read": []}

            async def run() -> None:
                nonlocal peak
                headers = {"Authorization": f"Bearer {token('ada')}"}
                async with httpx2.AsyncClient(headers=headers, timeout=60) as http, \
                        Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client:
                    await client.call_tool("search_content", {"query": "warm up", "k": 5})
                    for i in range(calls):
                        t = time.perf_counter()
                        r = await client.call_tool("search_content", {
                            "query": f"decision about the {['budget', 'launch', 'vendor'][i % 3]}", "k": 10})
                        assert not r.is_error
                        results["search"].append(time.perf_counter() - t)
                        t = time.perf_counter()
                        r = await client.call_tool("read_item", {"item_key": seeded["keys"][i % len(seeded["keys"])]})
                        assert not r.is_error
                        results["read"].append(time.perf_counter() - t)
                        peak = max(peak, server.memory_info().rss)

            anyio.run(run)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        print(f"  search_content k=10   MCP/HTTP {_pct(results['search'])}   in-process {_pct(ref_search)}")
        print(f"  read_item             MCP/HTTP {_pct(results['read'])}   in-process {_pct(ref_read)}")
        print(f"  server peak RSS {peak / 2**20:.0f} MiB over {calls * 2} calls ({items} items)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=30)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    for noisy in ("httpx2", "httpx", "mcp", "yarnnn.connect"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["YARNNN_HOME"] = tmp
        print(f"consent flows ({args.flows} per provider, loopback providers, SQLite control plane)")
        consent_bench(args.flows)
    print(f"MCP tool calls ({args.calls} each)")
    mcp_bench(args.items, args.calls)


if __name__ == "__main__":
    main()
