"""Fixtures for the deliverables tests: a real SMTP server, loopback HTTP servers, a seeded workspace."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import time_machine

from tests.deliverables.helpers import NOW, add_user
from tests.fakes.smtp import SmtpServer


@pytest.fixture(autouse=True)
def _clock_at_now() -> Iterator[None]:
    """One clock per test: it starts at ``helpers.NOW`` and ticks, for the test and the code it runs."""
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1; YARNNN_SMTP_HOST/PORT point at it."""
    with SmtpServer() as server:
        monkeypatch.setenv("YARNNN_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("YARNNN_SMTP_PORT", str(server.port))
        yield server


@dataclass
class HttpCall:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def form(self) -> dict[str, str]:
        if self.headers.get("content-type", "").startswith("application/json"):
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in self.json().items()}
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


Route = Callable[[HttpCall], tuple[int, str, bytes]]


class LoopbackHttp:
    """A real HTTP server on 127.0.0.1 with per-path handlers and a call log."""

    def __init__(self) -> None:
        self.calls: list[HttpCall] = []
        self.routes: dict[str, Route] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _do(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                call = HttpCall(method, url.path, parse_qs(url.query), {k.lower(): v for k, v in self.headers.items()},
                                raw)
                server.calls.append(call)
                route = server.routes.get(url.path)
                status, ctype, payload = route(call) if route else (404, "text/plain", b"not found")
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._do("GET")

            def do_POST(self) -> None:
                self._do("POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LoopbackHttp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def to(self, path: str) -> list[HttpCall]:
        return [c for c in self.calls if c.path == path]


@pytest.fixture
def http() -> Iterator[LoopbackHttp]:
    with LoopbackHttp() as server:
        yield server


def slack_api(server: LoopbackHttp) -> None:
    """chat.postMessage as Slack answers it."""

    def post(call: HttpCall) -> tuple[int, str, bytes]:
        if call.headers.get("authorization") != "Bearer xoxb-test-token":
            return 200, "application/json", json.dumps({"ok": False, "error": "invalid_auth"}).encode()
        form = call.form()
        body = {"ok": True, "channel": form.get("channel"), "ts": f"1700000000.{len(server.calls):06d}",
                "message": {"text": form.get("text")}}
        return 200, "application/json", json.dumps(body).encode()

    server.routes["/api/chat.postMessage"] = post


ARXIV_FEED = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"
      xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title type="html">ArXiv Query: search_query=all:ranking</title>
  <id>http://arxiv.org/api/cHxbiOdZaP56ODnBPIenZhzg5f8</id>
  <updated>2026-11-23T00:00:00-05:00</updated>
  <opensearch:totalResults>2</opensearch:totalResults>
  <entry>
    <id>http://arxiv.org/abs/2401.01234v1</id>
    <published>2024-01-03T18:00:00Z</published>
    <title>Neural Learning to Rank for
      Product Search</title>
    <summary>We study neural ranking models for e-commerce search. Our model improves NDCG by 4%.</summary>
    <author><name>Jane Smith</name></author>
    <author><name>Wei Zhang</name></author>
    <link href="http://arxiv.org/abs/2401.01234v1" rel="alternate" type="text/html"/>
  </entry>
  <entry>
    <id>http://arxiv.org/abs/2309.05678v2</id>
    <published>2023-09-11T12:00:00Z</published>
    <title>Click Models Revisited</title>
    <summary>A survey of click models for web search evaluation.</summary>
    <author><name>Ravi Kumar</name></author>
  </entry>
</feed>
"""


def arxiv_api(server: LoopbackHttp) -> None:
    server.routes["/api/query"] = lambda call: (200, "application/atom+xml; charset=utf-8", ARXIV_FEED.encode())


@pytest.fixture
def workspace(settings, resources):  # type: ignore[no-untyped-def]
    """Control plane URL with users alice (Paris) and bob (New York); the warehouse store."""
    url = settings.resolved_control_plane_url
    add_user(url, "alice", email="alice@northwind.example", tz="Europe/Paris", name="Alice Moreau")
    add_user(url, "bob", email="bob@contoso.example", tz="America/New_York", name="Bob Okafor")
    return url


@pytest.fixture
def activity_log_down(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """The activity log refuses writes while ``state["down"]``: the step after delivery fails, as a crash
    there would (patched where a single run and where a round write their events)."""
    from yarn_assets.deliverables import round_data
    from yarn_assets.deliverables import run as deliverable_run

    state = {"down": True}
    real = deliverable_run.write_events

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        if state["down"]:
            raise RuntimeError("activity log unavailable (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(deliverable_run, "write_events", flaky)
    monkeypatch.setattr(round_data, "write_events", flaky)
    return state
