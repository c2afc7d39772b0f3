"""Fixtures of the ops tests: a second PostgreSQL database (Dagster's own), loopback mail/Slack."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest


@pytest.fixture
def pg_dagster_db(pg_url: str) -> Iterator[dict[str, str]]:
    """A fresh database for the Dagster instance beside the control plane's ``pg_url`` database
    (both keep an ``alembic_version`` table, so they never share one). Yields DAGSTER_PG_* values."""
    from tests.conftest import pg_admin

    parts = urlsplit(pg_url.replace("postgresql+psycopg2", "postgresql"))
    name = f"yarnnn_dagster_{uuid.uuid4().hex[:12]}"
    admin = f"host={parts.hostname} port={parts.port or 5432} user={parts.username} dbname=postgres"
    pg_admin(f'CREATE DATABASE "{name}"', admin)
    try:
        yield {"DAGSTER_PG_HOST": parts.hostname or "127.0.0.1", "DAGSTER_PG_PORT": str(parts.port or 5432),
               "DAGSTER_PG_DB": name, "DAGSTER_PG_USER": parts.username or "postgres",
               "DAGSTER_PG_PASSWORD": parts.password or ""}
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin)
