"""The warehouse root may be an object-store URI: the same import -> bronze -> silver path on S3.

The S3 endpoint is a real S3-protocol server (moto's) on loopback; credentials come from the
standard AWS variables, non-secret options from YARNNN_WAREHOUSE_STORAGE_OPTIONS.
"""

import datetime as dt
import json

import boto3
import dagster as dg
import polars as pl
import pytest
from moto.server import ThreadedMotoServer

from control_plane import db
from control_plane.models import User
from io_managers.delta_store import DeltaStore
from resources.registry import build_resources
from resources.settings import load_settings
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.ingest import import_jobs
from yarn_assets.ingest.assets import bronze_imported_items, silver_platform_content


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="yarnnn-warehouse")
    yield endpoint
    server.stop()


def test_ingest_on_s3_warehouse(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, corpus) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YARNNN_WAREHOUSE_ROOT", "s3://yarnnn-warehouse/prod")
    monkeypatch.setenv("YARNNN_WAREHOUSE_STORAGE_OPTIONS", json.dumps(
        {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ALLOW_HTTP": "true", "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}))
    settings = load_settings()
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    with db.session_scope(url) as s:
        s.add(User(id="alice", email="alice@example.com"))
        s.flush()
        import_jobs.register_import(s, user_id="alice", path=corpus / "mbox_eml" / "cpython__mailbox_01.mbox",
                                    archive_root=settings.resolved_home / "imports")
    key = f"{dt.date.today().isoformat()}|gmail"
    resources = build_resources(settings)
    assert dg.materialize([bronze_imported_items, silver_platform_content], partition_key=key,
                          resources=resources).success
    store = DeltaStore(settings.resolved_warehouse_root, settings.warehouse_storage_options)
    rows = store.read(PLATFORM_CONTENT)
    assert rows.height >= 1 and set(rows["user_id"]) == {"alice"}
    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket="yarnnn-warehouse", Prefix="prod/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert any(k.startswith("prod/silver/platform_content/_delta_log/") for k in keys)
    assert any("platform=gmail" in k for k in keys)
    assert isinstance(rows, pl.DataFrame)
