"""A real uvicorn server on 127.0.0.1 (free port, in a thread) serving ``create_app(settings)``, with two
users (alice, bob), a deliverable and a generated version each, memory facts and connections."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import time_machine
import uvicorn

from control_plane import db
from control_plane.crypto import TokenCipher
from tests.deliverables.helpers import NOW, add_user, create, run_resources, sample_content, seed_silver
from yarn_assets.api import auth

SIGNING_KEY = "k" * 48


@pytest.fixture(autouse=True)
def _clock_at_now() -> Iterator[time_machine.Coordinates]:
    """One clock per test (ticking from ``NOW``): the server thread, the tokens and the seeded content share it."""
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiServer:
    """``create_app(settings, instance=...)`` under uvicorn in a thread; ``client(user)`` is an httpx client."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def client(self, user: str | None = None, token: str | None = None) -> httpx.Client:
        headers = {}
        if user is not None or token is not None:
            headers["Authorization"] = f"Bearer {token or token_for(user or '')}"
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


def app_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves (included routers flattened), HEAD left out."""
    def flat(routes: Any) -> Iterator[Any]:
        for r in routes:
            if hasattr(r, "original_router"):
                yield from flat(r.original_router.routes)
            else:
                yield r

    return sorted({(m, r.path) for r in flat(app.routes) for m in (getattr(r, "methods", None) or ()) if m != "HEAD"})


def token_for(user_id: str, *, ttl: dt.timedelta = dt.timedelta(hours=1), now: dt.datetime | None = None,
              key: str = SIGNING_KEY, audience: str = "api") -> str:
    return auth.issue(key, user_id, ttl=ttl, now=now, audience=audience)


@dataclass
class World:
    url: str
    store: Any
    instance: dg.DagsterInstance
    deliverables: dict[str, str] = field(default_factory=dict)  # user -> deliverable id
    versions: dict[str, str] = field(default_factory=dict)  # user -> version id
    connections: dict[str, str] = field(default_factory=dict)  # user -> connection id


@pytest.fixture
def api_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("YARNNN_AUTH_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("YARNNN_ENCRYPTION_KEY", TokenCipher.generate_key())
    monkeypatch.setenv("YARNNN_API_MAX_BODY_BYTES", "65536")
    for provider in ("SLACK", "GOOGLE", "NOTION"):  # the OAuth routes are mounted: configured, never called here
        monkeypatch.setenv(f"YARNNN_{provider}_CLIENT_ID", f"{provider.lower()}-client")
        monkeypatch.setenv(f"YARNNN_{provider}_CLIENT_SECRET", f"{provider.lower()}-secret")


@pytest.fixture
def world(api_env: None, tmp_path: Path) -> Iterator[World]:
    """Two users with a delivered version each (offline LLM, file outbox), memory, and one connection each."""
    import os

    from resources.settings import load_settings
    from yarn_assets.core.instance import ensure_instance_dir
    from yarn_assets.deliverables.run import run_deliverable
    from yarn_assets.ingest.sync import connections
    from yarn_assets.memory import user_context

    settings = load_settings()
    url = settings.resolved_control_plane_url
    from io_managers.delta_store import DeltaStore

    store = DeltaStore(settings.resolved_warehouse_root)
    add_user(url, "alice", email="alice@northwind.example", tz="Europe/Paris", name="Alice Moreau")
    add_user(url, "bob", email="bob@contoso.example", tz="America/New_York", name="Bob Okafor")
    seed_silver(store, sample_content("alice") + sample_content("bob"))
    home = ensure_instance_dir(tmp_path / "dagster_home")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        w = World(url=url, store=store, instance=instance)
        cipher = TokenCipher(os.environ["YARNNN_ENCRYPTION_KEY"])
        for user, platform in (("alice", "slack"), ("bob", "gmail")):
            w.deliverables[user] = create(url, user, "status_report", title=f"{user}'s weekly status")
            out = run_deliverable(run_resources(), deliverable_id=w.deliverables[user], run_id=f"seed-{user}", now=NOW)
            assert out.status == "delivered", out.reason
            assert out.version_id is not None
            w.versions[user] = out.version_id
            creds = ({"bot_token": f"xoxb-{user}"} if platform == "slack"
                     else {"refresh_token": "r", "client_id": "c", "client_secret": "s"})
            with db.session_scope(url) as s:
                conn, _ = connections.add(s, cipher, user_id=user, platform=platform, credentials=creds)
                w.connections[user] = conn.id
                user_context.upsert(s, user_context.Assertion(
                    user_id=user, key="fact:team", value=f"{user} works on the {user} team", source="conversation",
                    confidence=0.8, observed_at=NOW - dt.timedelta(days=1)))
        yield w


@pytest.fixture
def server(world: World) -> Iterator[ApiServer]:
    from resources.settings import load_settings
    from yarn_assets.api.app import create_app

    with ApiServer(create_app(load_settings(), instance=world.instance)) as srv:
        yield srv
