"""A real uvicorn server mounting the connect router, the three loopback OAuth servers, one user."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.fakes.oauth_servers import CLIENT_ID, CLIENT_SECRET, FakeGoogleOAuth, FakeNotionOAuth, FakeSlackOAuth

SIGNING_KEY = "k" * 40


class UvicornThread:
    """uvicorn on 127.0.0.1 (ephemeral port) in a daemon thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="uvicorn-test")

    def __enter__(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class World:
    api: str
    slack: FakeSlackOAuth
    google: FakeGoogleOAuth
    notion: FakeNotionOAuth
    env: Any
    settings: Any

    def headers(self, user_id: str = "ada") -> dict[str, str]:
        from yarn_assets.core import auth

        return {"Authorization": f"Bearer {auth.issue(SIGNING_KEY, user_id)}"}

    def start(self, provider: str, user_id: str = "ada", **body: Any) -> dict[str, Any]:
        r = requests.post(f"{self.api}/connect/{provider}/start", headers=self.headers(user_id), json=body or None,
                          timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def consent(self, authorize_url: str) -> str:
        """The browser at the provider: returns the callback URL the provider redirects to."""
        r = requests.get(authorize_url, allow_redirects=False, timeout=10)
        assert r.status_code == 302, r.text
        return r.headers["Location"]

    def connect(self, provider: str, user_id: str = "ada", **body: Any) -> requests.Response:
        callback = self.consent(self.start(provider, user_id, **body)["authorize_url"])
        return requests.get(callback, timeout=10)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from _world(monkeypatch)


@pytest.fixture
def world_pg(monkeypatch: pytest.MonkeyPatch, pg_url: str) -> Iterator[World]:
    """The same, with the control plane (states, connections) on PostgreSQL."""
    monkeypatch.setenv("YARNNN_CONTROL_PLANE_URL", pg_url)
    yield from _world(monkeypatch)


def _world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    from cryptography.fernet import Fernet
    from fastapi import FastAPI

    from control_plane.models import User
    from resources.settings import load_settings
    from yarn_assets.connect.config import ConnectConfig, ConnectEnv
    from yarn_assets.connect.routes import build_router
    from yarn_assets.core.auth import bearer_user

    monkeypatch.setenv("YARNNN_ENCRYPTION_KEY", Fernet.generate_key().decode())
    with FakeSlackOAuth() as slack, FakeGoogleOAuth() as google, FakeNotionOAuth() as notion:
        holder: dict[str, ConnectEnv] = {}
        app = FastAPI()
        app.include_router(build_router(lambda: holder["env"], bearer_user(lambda: SIGNING_KEY)))
        with UvicornThread(app) as server:
            settings = load_settings(
                oauth_redirect_base_url=server.url, slack_client_id=CLIENT_ID, slack_client_secret=CLIENT_SECRET,
                slack_authorize_url=slack.authorize_url, slack_base_url=slack.api_url,
                google_client_id=CLIENT_ID, google_client_secret=CLIENT_SECRET,
                google_authorize_url=google.authorize_url, google_token_uri=google.token_url,
                google_revoke_url=google.revoke_url, notion_client_id=CLIENT_ID, notion_client_secret=CLIENT_SECRET,
                notion_base_url=notion.base_url, platform_timeout_seconds=5.0,
            )
            env = ConnectEnv.from_settings(settings)
            assert isinstance(env.config, ConnectConfig)
            holder["env"] = env
            with env.sessions() as s:
                s.add(User(id="ada", email="ada@example.com"))
                s.add(User(id="bob", email="bob@example.com"))
            yield World(server.url, slack, google, notion, env, settings)
