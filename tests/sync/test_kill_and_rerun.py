"""A sync process killed mid-run, then rerun, leaves the same silver as a clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from control_plane.crypto import TokenCipher
from control_plane.models import User
from tests.fakes.slack_api import BOT_TOKEN
from yarn_assets.ingest.sync import connections as svc
from yarn_assets.ingest.sync.manual import run_sync

COLUMNS = ["resource_id", "resource_name", "external_id", "content_type", "thread_id", "author", "author_id",
           "content", "content_hash", "occurred_at", "metadata"]


def _cli(*args: str) -> subprocess.Popen[bytes]:
    cli = Path(sys.executable).with_name("yarnnn")
    return subprocess.Popen([str(cli), *args], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_kill_mid_sync_then_rerun_equals_clean_run(world):
    s = world.slack
    for i in range(6):
        cid = f"C{i}"
        s.add_channel(cid, f"chan-{i}", 20 - i)
        parents = s.fill(cid, 250)
        for p in parents[-3:]:
            s.post(cid, "answer one", thread_ts=p)
            s.post(cid, "answer two", thread_ts=p)
    with world.session() as sess:
        sess.add(User(id="clean", email="clean@example.com", tier="pro"))
        sess.flush()
        clean, _ = svc.add(sess, TokenCipher(world.settings.encryption_key.get_secret_value()), user_id="clean",
                           platform="slack", credentials={"bot_token": BOT_TOKEN})
        clean_id = clean.id
    ana = world.connections["slack"]

    s.delay = 0.1  # every response takes 100 ms: the kill lands mid-sync
    proc = _cli("connections", "sync", ana)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        reg = {k: v for k, v in world.registry("slack").items() if not k.startswith("__") and v["cursor"]}
        if len(reg) >= 2:
            break
        assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    committed = {k for k, v in world.registry("slack").items() if not k.startswith("__") and v["cursor"]}
    assert 2 <= len(committed) < 6, "killed after some channels committed, before all"
    partial_batches = world.bronze("slack")["batch_id"].unique().to_list()
    assert len(partial_batches) == 1

    s.delay = 0.0
    # the rerun (and the clean run) in-process: `yarnnn connections sync` calls exactly this
    rerun = run_sync(world.settings, ana, instance=world.instance)
    assert rerun.success, rerun.error  # the dead run's lease is recognised as stale
    clean_run = run_sync(world.settings, clean_id, instance=world.instance)
    assert clean_run.success, clean_run.error

    silver = world.silver("slack")
    killed = silver.filter(pl.col("user_id") == "ana").select(COLUMNS).sort("resource_id", "external_id")
    fresh = silver.filter(pl.col("user_id") == "clean").select(COLUMNS).sort("resource_id", "external_id")
    assert killed.height == 6 * (250 + 6)
    assert killed.equals(fresh)
    # the rerun re-fetched only what the killed run had not committed
    ana_batches = world.bronze("slack").filter(pl.col("user_id") == "ana")
    assert ana_batches["batch_id"].n_unique() == 2
    reread = ana_batches.filter(pl.col("batch_id") != partial_batches[0])
    assert not set(reread.filter(pl.col("object_type") == "slack_api_message")["resource_id"]) & committed
