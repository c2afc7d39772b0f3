"""A small reusable loopback HTTP server for fakes of external APIs.

``LoopbackServer`` is a real ``ThreadingHTTPServer`` on 127.0.0.1 (ephemeral port) in a daemon
thread. Fakes register routes (method + path regex -> handler), and tests can:

* inject one-shot faults: ``server.fail_next("POST", r"/api/conversations\\.history", [Response(429,
  headers={"Retry-After": "1"})])`` - the next matching requests get these responses, in order;
* count and inspect requests: ``server.count(path=r"history")``, ``server.requests``;
* slow every response down (``server.delay = 0.2``) to make a mid-run kill land mid-sync.

Usable for any HTTP API (Slack, Google, Notion, Anthropic...):

    with LoopbackServer("anthropic") as srv:
        srv.route("POST", r"/v1/messages", lambda req, m: Response.json({...}))
        client = anthropic.Anthropic(base_url=srv.url, api_key="test")
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        ctype = self.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" in ctype:
            return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {}

    def param(self, name: str, default: str | None = None) -> str | None:
        """A parameter from the query string, a form body or a JSON body (in that order)."""
        if name in self.query:
            return self.query[name][0]
        form = self.form()
        if name in form:
            return form[name][0]
        if "json" in self.headers.get("content-type", "") and self.body:
            data = self.json()
            if isinstance(data, dict) and name in data:
                value = data[name]
                return value if isinstance(value, str) else json.dumps(value)
        return default

    def params(self, name: str) -> list[str]:
        return self.query.get(name, []) or self.form().get(name, [])

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(status, obj, dict(headers or {}))

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode("utf-8"), "application/json; charset=utf-8"
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), "text/plain; charset=utf-8"
        return self.body, "application/octet-stream"


Handler = Callable[[Request, "re.Match[str]"], Response]


class LoopbackServer:
    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults: list[tuple[str, re.Pattern[str], list[Response]]] = []
        self.requests: list[Request] = []
        self.delay = 0.0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ setup
    def route(self, method: str, pattern: str, handler: Handler | None = None) -> Any:
        def register(fn: Handler) -> Handler:
            self.routes.append((method.upper(), re.compile(pattern), fn))
            return fn

        return register(handler) if handler is not None else register

    def fail_next(self, method: str, pattern: str, responses: list[Response]) -> None:
        with self._lock:
            self.faults.append((method.upper(), re.compile(pattern), list(responses)))

    # ------------------------------------------------------------ inspection
    def count(self, method: str | None = None, path: str | None = None) -> int:
        return len(self.matching(method, path))

    def matching(self, method: str | None = None, path: str | None = None) -> list[Request]:
        with self._lock:
            reqs = list(self.requests)
        return [r for r in reqs if (method is None or r.method == method.upper())
                and (path is None or re.search(path, r.path))]

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # ------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LoopbackServer:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def setup(self) -> None:
                super().setup()
                # headers and body go out as separate writes: without this, Nagle + delayed ACK
                # add ~40 ms to every request on a kept-alive connection (httpx)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = Request(self.command.upper(), parts.path, parse_qs(parts.query, keep_blank_values=True),
                              {k.lower(): v for k, v in self.headers.items()}, body)
                resp = server._dispatch(req)
                data, ctype = resp.encoded()
                if server.delay:
                    time.sleep(server.delay)
                self.send_response(resp.status)
                headers = {"Content-Type": ctype, **resp.headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"loopback-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------ dispatch
    def _dispatch(self, req: Request) -> Response:
        with self._lock:
            self.requests.append(req)
            for i, (method, pattern, queue) in enumerate(self.faults):
                if method == req.method and pattern.search(req.path) and queue:
                    resp = queue.pop(0)
                    if not queue:
                        self.faults.pop(i)
                    return resp
        for method, pattern, handler in self.routes:
            if method != req.method:
                continue
            match = pattern.fullmatch(req.path)
            if match:
                try:
                    return handler(req, match)
                except Exception as exc:  # a bug in a fake shows up as a 418 with the traceback
                    import traceback

                    return Response(418, traceback.format_exc(), {"X-Fake-Error": type(exc).__name__})
        return Response(404, {"error": f"{self.name}: no route for {req.method} {req.path}"})
