"""Fixtures of the distributed-engine tests: a PostgreSQL Dagster instance, brokers, sample users."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.conftest import pg_dagster_db  # noqa: F401  (a PostgreSQL database for the Dagster instance)

REPO = Path(__file__).resolve().parents[2]
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_URL = "redis://127.0.0.1:6379/{db}"


def _reachable(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def require_service(name: str, port: int) -> None:
    """Skip on a laptop without the service; CI runs on the machine that has it."""
    import os

    if _reachable("127.0.0.1", port):
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{name} is required in CI but 127.0.0.1:{port} is unreachable")
    pytest.skip(f"{name} not reachable on 127.0.0.1:{port}")


@pytest.fixture
def pg_instance_home(tmp_path: Path, pg_dagster_db, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:  # noqa: F811
    """DAGSTER_HOME holding deploy/dagster.postgres.yaml, its DAGSTER_PG_* set in this process."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
    for name, value in pg_dagster_db.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    yield home
