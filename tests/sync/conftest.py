"""Fixtures for the live-sync tests: loopback fakes of each API, a user, encrypted connections,
and helpers to run the sync asset (bronze, then silver) for one platform partition."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import polars as pl
import pytest
from cryptography.fernet import Fernet

from tests.fakes.google_api import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, FakeGoogle
from tests.fakes.notion_api import NOTION_TOKEN, FakeNotion
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack

SECRETS = (BOT_TOKEN, CLIENT_SECRET, REFRESH_TOKEN, NOTION_TOKEN)


@pytest.fixture
def fernet_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("YARNNN_ENCRYPTION_KEY", key)
    return key


@pytest.fixture
def slack_api() -> Iterator[FakeSlack]:
    with FakeSlack() as srv:
        yield srv


@pytest.fixture
def google_api() -> Iterator[FakeGoogle]:
    with FakeGoogle() as srv:
        yield srv


@pytest.fixture
def notion_api() -> Iterator[FakeNotion]:
    with FakeNotion() as srv:
        yield srv


@pytest.fixture
def api_env(monkeypatch: pytest.MonkeyPatch, fernet_key: str, slack_api: FakeSlack, google_api: FakeGoogle,
            notion_api: FakeNotion) -> None:
    """Point the settings at the fakes; fast back-off; budgets high enough not to slow tests."""
    monkeypatch.setenv("YARNNN_SLACK_BASE_URL", slack_api.base_url)
    monkeypatch.setenv("YARNNN_GOOGLE_API_BASE_URL", google_api.url)
    monkeypatch.setenv("YARNNN_GOOGLE_TOKEN_URI", google_api.token_uri)
    monkeypatch.setenv("YARNNN_NOTION_BASE_URL", notion_api.url)
    monkeypatch.setenv("YARNNN_PLATFORM_BACKOFF_SECONDS", "0.01")
    monkeypatch.setenv("YARNNN_PLATFORM_TIMEOUT_SECONDS", "10")
    monkeypatch.setenv("YARNNN_PLATFORM_RATE_LIMITS",
                       '{"slack": 60000, "gmail": 60000, "calendar": 60000, "notion": 60000}')


@dataclass
class World:
    settings: Any
    store: Any
    slack: FakeSlack
    google: FakeGoogle
    notion: FakeNotion
    connections: dict[str, str] = field(default_factory=dict)  # platform -> connection id
    stack: ExitStack = field(default_factory=ExitStack)
    _instance: dg.DagsterInstance | None = None

    @property
    def instance(self) -> dg.DagsterInstance:
        """A throwaway Dagster instance, created on first use (direct runner tests never need one)."""
        if self._instance is None:
            self._instance = self.stack.enter_context(dg.instance_for_test())
        return self._instance

    def session(self) -> Any:
        from control_plane import db

        url = self.settings.resolved_control_plane_url
        db.ensure_schema(url, True)
        return db.session_scope(url)

    def resources(self) -> dict[str, Any]:
        from resources.registry import build_resources

        return build_resources(self.settings)

    def sync(self, platform: str, *, connection_ids: list[str] | None = None, force: bool = False,
             raise_on_error: bool = True, day: str | None = None, full_resync: bool = False,
             tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
        from yarn_assets.core.partitions import ingest_key
        from yarn_assets.ingest.assets import silver_platform_content
        from yarn_assets.ingest.sync.asset import bronze_synced_items

        ids = connection_ids if connection_ids is not None else ([] if tags else [self.connections[platform]])
        day = day or dt.datetime.now(dt.UTC).date().isoformat()
        return dg.materialize(
            [bronze_synced_items, silver_platform_content],
            partition_key=ingest_key(day, platform),
            run_config={"ops": {"bronze__platform_items__syncs": {"config": {
                "connection_ids": ids, "force": force, "full_resync": full_resync}}}},
            resources=self.resources(),
            instance=self.instance,
            raise_on_error=raise_on_error,
            tags=tags,
        )

    def env(self, run_id: str = "direct-run", **overrides: Any) -> Any:
        """A SyncEnv for calling the runner directly (no Dagster run): faster unit-level checks."""
        from contextlib import contextmanager

        from control_plane import db
        from control_plane.crypto import TokenCipher
        from yarn_assets.ingest.api_calls import RetrySettings
        from yarn_assets.ingest.api_clients import ClientConfig
        from yarn_assets.ingest.sync.runner import SyncEnv

        st = self.settings
        url = st.resolved_control_plane_url

        @contextmanager
        def session() -> Any:
            with self.session() as s:
                yield s

        key = st.encryption_key.get_secret_value() if st.encryption_key else None
        kwargs: dict[str, Any] = dict(
            store=self.store, session=session, engine=db.get_engine(url), cipher=lambda: TokenCipher(key),
            client_config=ClientConfig(slack_base_url=st.slack_base_url, google_api_base_url=st.google_api_base_url,
                                       google_token_uri=st.google_token_uri, notion_base_url=st.notion_base_url,
                                       timeout_seconds=5),
            retry=RetrySettings(max_attempts=4, backoff_seconds=0.01, max_retry_after_seconds=5),
            rate_overrides=dict(st.platform_rate_limits), run_id=run_id,
            ingest_date=dt.datetime.now(dt.UTC).date(),
        )
        kwargs.update(overrides)
        return SyncEnv(**kwargs)

    def silver(self, platform: str) -> pl.DataFrame:
        from io_managers.predicates import Eq
        from yarn_assets.core.tables import PLATFORM_CONTENT

        return self.store.read(PLATFORM_CONTENT, Eq("platform", platform))

    def bronze(self, platform: str) -> pl.DataFrame:
        from io_managers.predicates import Eq
        from yarn_assets.core.tables import BRONZE_ITEMS

        return self.store.read(BRONZE_ITEMS, Eq("platform", platform))

    def registry(self, platform: str) -> dict[str, Any]:
        from sqlalchemy import select

        from control_plane.models import SyncRegistry

        with self.session() as s:
            rows = s.scalars(select(SyncRegistry).where(SyncRegistry.platform == platform))
            return {r.resource_id: {"cursor": r.platform_cursor, "error": r.last_error, "items": r.item_count,
                                    "state": r.state, "synced": r.last_synced_at} for r in rows}

    def connection(self, platform: str) -> Any:
        from control_plane.models import PlatformConnection

        with self.session() as s:
            conn = s.get(PlatformConnection, self.connections[platform])
            s.expunge(conn)
            return conn


@pytest.fixture
def world(api_env: None, slack_api: FakeSlack, google_api: FakeGoogle, notion_api: FakeNotion) -> Iterator[World]:
    yield from _world(slack_api, google_api, notion_api)


@pytest.fixture
def world_pg(api_env: None, slack_api: FakeSlack, google_api: FakeGoogle, notion_api: FakeNotion, pg_url: str,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The same world with the control plane on PostgreSQL."""
    monkeypatch.setenv("YARNNN_CONTROL_PLANE_URL", pg_url)
    yield from _world(slack_api, google_api, notion_api)


def _world(slack_api: FakeSlack, google_api: FakeGoogle, notion_api: FakeNotion) -> Iterator[World]:
    from control_plane.crypto import TokenCipher
    from control_plane.models import User
    from io_managers.delta_store import DeltaStore
    from resources.settings import load_settings
    from yarn_assets.ingest.sync import connections as svc

    settings = load_settings()
    w = World(settings, DeltaStore(settings.resolved_warehouse_root), slack_api, google_api, notion_api)
    cipher = TokenCipher(settings.encryption_key.get_secret_value())
    with w.session() as s:
        s.add(User(id="ana", email="ana@example.com", tier="pro", timezone="Europe/Berlin"))
        s.flush()
        for platform, creds in (
            ("slack", {"bot_token": BOT_TOKEN}),
            ("gmail", {"refresh_token": REFRESH_TOKEN, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
            ("calendar", {"refresh_token": REFRESH_TOKEN, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
            ("notion", {"token": NOTION_TOKEN}),
        ):
            conn, _ = svc.add(s, cipher, user_id="ana", platform=platform, credentials=creds)
            w.connections[platform] = conn.id
    with w.stack:
        yield w


def metadata(result: dg.ExecuteInProcessResult, node: str = "bronze__platform_items__syncs") -> dict[str, Any]:
    mats = result.asset_materializations_for_node(node)
    assert mats, f"no materialization for {node}"
    return {k: getattr(v, "value", v) for k, v in mats[-1].metadata.items()}
