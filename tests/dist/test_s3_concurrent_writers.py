"""The warehouse on object storage with several workers writing one table at once.

Two processes (what two Celery workers are) write activity events through the product's write
path (``write_events``: a Delta merge on the event's day partition) into one table of an S3
warehouse, served by a real S3-protocol server (moto's) on loopback. Delta commits on S3 are
safe only if creating ``_delta_log/<version>.json`` is atomic: deltalake 1.x uses S3 conditional
writes (``PUT`` with ``If-None-Match: *``, storage option ``conditional_put=etag``), so the loser
of a race gets a conflict, re-reads the log and retries, instead of overwriting the winner's
commit. Afterwards every event of both writers is there exactly once and the log has no gap.
"""

import datetime as dt
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from deltalake import DeltaTable

from io_managers.delta_store import DeltaStore
from tests.fakes.dagster_dev import free_port
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.core.tables import ACTIVITY_LOG

BUCKET = "yarnnn-warehouse"
ROOT = f"s3://{BUCKET}/prod"
BATCHES = 4
PER_BATCH = 5
AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}


def storage_options(endpoint: str) -> dict[str, str]:
    """What docs/OPERATIONS.md prescribes for S3 (endpoint and plain HTTP only for the loopback server)."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "conditional_put": "etag"}


def _writer(endpoint: str, worker: str, day: str) -> int:
    """One worker's batches; the last event of every batch is also written by the other worker."""
    os.environ.update(AWS_ENV)
    store = DeltaStore(ROOT, storage_options(endpoint))
    inserted = 0
    for b in range(BATCHES):
        events = [ActivityEvent(user_id=f"u-{worker}", event_type="signal_processed", event_ref=f"{worker}-{b}-{i}",
                                summary="pass", idempotency_key=f"{worker}-{b}-{i}",
                                event_date=dt.date.fromisoformat(day)) for i in range(PER_BATCH)]
        shared = ActivityEvent(user_id="u-shared", event_type="signal_processed", event_ref=f"shared-{b}",
                               summary="pass", idempotency_key=f"shared-{b}", event_date=dt.date.fromisoformat(day))
        inserted += write_events(store, [*events, shared], run_id=f"run-{worker}")
    return inserted


@pytest.fixture
def s3(tmp_path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """moto's S3 server in a process of its own (in this process its thread would wait on the GIL
    that a blocking deltalake call holds)."""
    port = free_port()
    log = (tmp_path / "moto.log").open("wb")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
                break
            except (EndpointConnectionError, ClientError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        yield endpoint
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_the_s3_server_refuses_to_overwrite_on_conditional_put(s3: str) -> None:
    """The safety of concurrent commits rests on this: a server that ignored If-None-Match would
    let two writers both 'create' the same log version, and one commit would be lost silently."""
    client = boto3.client("s3", endpoint_url=s3)
    client.put_object(Bucket=BUCKET, Key="probe/_delta_log/00000000000000000000.json", Body=b"{}", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=BUCKET, Key="probe/_delta_log/00000000000000000000.json", Body=b"{}",
                          IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"


def test_two_processes_merge_into_one_s3_table_without_losing_a_commit(s3: str) -> None:
    day = dt.date(2026, 1, 15).isoformat()  # an event date, not a clock: the partition both write
    DeltaStore(ROOT, storage_options(s3)).ensure(ACTIVITY_LOG)
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_writer, s3, worker, day) for worker in ("a", "b")]
        inserted = [f.result(timeout=300) for f in futures]

    store = DeltaStore(ROOT, storage_options(s3))
    events = store.read(ACTIVITY_LOG)
    expected = 2 * BATCHES * PER_BATCH + BATCHES
    assert events.height == expected and events["event_id"].n_unique() == expected  # nothing lost, nothing twice
    assert sum(inserted) == expected  # each shared event inserted by exactly one of the two
    assert set(events.filter(events["user_id"] == "u-shared")["event_ref"]) == {f"shared-{b}" for b in range(BATCHES)}
    table = DeltaTable(store.uri(ACTIVITY_LOG), storage_options=storage_options(s3))
    versions = sorted(h["version"] for h in table.history())
    assert versions == list(range(versions[-1] + 1))  # one log entry per commit, no version written twice
    listed = boto3.client("s3", endpoint_url=s3).list_objects_v2(
        Bucket=BUCKET, Prefix="prod/silver/activity_log/_delta_log/")
    commits = [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith(".json")]
    assert len(commits) == versions[-1] + 1
