"""A loopback Anthropic Messages API for tests: a real HTTP server the official client talks to.

Usage::

    from tests.fakes.anthropic_server import FakeAnthropic, tool_use, text, rate_limited, overloaded, slow

    with FakeAnthropic() as api:                     # serves http://127.0.0.1:<port>
        api.enqueue(text("not json"), tool_use({"facts": []}))   # scripted replies, in order
        llm = LLM(control_plane=cp, offline=False, api_key="test-key", base_url=api.base_url)
        ...
        api.requests[0].body["messages"]             # every request body, as sent (parsed JSON)
        api.requests[0].api_key                      # the key the client sent
        api.requests[0].system_text                  # the system blocks joined
        api.requests[0].prompt_text                  # everything the model was shown (system + messages + tools)

Replies (each is a *responder*: ``RecordedRequest -> Reply``, resolved when the request arrives):

* ``tool_use(input, name=None)``: a ``tool_use`` block calling the requested tool (``tool_choice.name``);
* ``text(str)``: a text block (e.g. JSON, fenced JSON, or garbage for malformed-output tests);
* ``rate_limited(retry_after="1")``: HTTP 429 ``rate_limit_error`` with ``retry-after``;
* ``overloaded(retry_after_ms=None)``: HTTP 529 ``overloaded_error``;
* ``error(status, type, message)``: any API error;
* ``slow(seconds, then)``: waits before answering with ``then`` (for client timeouts);
* ``respond(fn)``: any callable ``RecordedRequest -> dict`` (a message body).

When the queue is empty the ``default`` responder answers (constructor argument; by default an
HTTP 500 saying no reply was scripted, so an unexpected call fails the test loudly).

Usage numbers are simulated: ``input_tokens`` ≈ characters / 4 of the messages; a system prefix
carrying ``cache_control`` is a cache write the first time it is seen and a cache read afterwards.

Other endpoints (e.g. the Message Batches API) can be served with
``api.route("POST", "/v1/messages/batches", handler)`` where ``handler(RecordedRequest) -> Reply``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float = field(default_factory=time.monotonic)

    @property
    def api_key(self) -> str | None:
        """The key the client sent (``x-api-key`` or ``authorization: Bearer``, depending on the SDK version)."""
        if self.headers.get("x-api-key"):
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None

    @property
    def system_text(self) -> str:
        system = self.body.get("system")
        if isinstance(system, str):
            return system
        return "\n".join(b.get("text", "") for b in system or [] if isinstance(b, dict))

    @property
    def messages_text(self) -> str:
        parts: list[str] = []
        for msg in self.body.get("messages", []):
            content = msg.get("content")
            if isinstance(content, str):
                parts.append(content)
                continue
            for block in content or []:
                parts.append(json.dumps(block, ensure_ascii=False) if block.get("type") != "text" else block["text"])
        return "\n".join(parts)

    @property
    def prompt_text(self) -> str:
        return "\n".join([self.system_text, self.messages_text, json.dumps(self.body.get("tools", []))])

    @property
    def tool_name(self) -> str | None:
        choice = self.body.get("tool_choice") or {}
        if choice.get("name"):
            return str(choice["name"])
        tools = self.body.get("tools") or []
        return str(tools[0]["name"]) if tools else None


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Responder = Callable[[RecordedRequest], Reply]


def _usage(req: RecordedRequest, output: Any, seen_prefixes: set[str]) -> dict[str, int]:
    cached = [b for b in req.body.get("system") or [] if isinstance(b, dict) and b.get("cache_control")]
    prefix = json.dumps(req.body.get("tools", [])) + "".join(b.get("text", "") for b in cached)
    cache_write = cache_read = 0
    if cached:
        digest = hashlib.sha256(prefix.encode()).hexdigest()
        if digest in seen_prefixes:
            cache_read = len(prefix) // 4
        else:
            cache_write = len(prefix) // 4
            seen_prefixes.add(digest)
    system_blocks = [b for b in req.body.get("system") or [] if isinstance(b, dict)]
    uncached = len(req.messages_text) + sum(len(b.get("text", "")) for b in system_blocks if not b.get("cache_control"))
    return {
        "input_tokens": max(1, uncached // 4),
        "output_tokens": max(1, len(json.dumps(output)) // 4),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
    }


def _message(req: RecordedRequest, content: list[dict[str, Any]], stop_reason: str) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": req.body.get("model", "unknown"),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {},  # filled in by the server (needs its cache state)
    }


def tool_use(payload: dict[str, Any], name: str | None = None) -> Responder:
    def responder(req: RecordedRequest) -> Reply:
        block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", "name": name or req.tool_name or "tool",
                 "input": payload}
        return Reply(body=_message(req, [block], "tool_use"))

    return responder


def text(value: str, stop_reason: str = "end_turn") -> Responder:
    def responder(req: RecordedRequest) -> Reply:
        return Reply(body=_message(req, [{"type": "text", "text": value}], stop_reason))

    return responder


def respond(fn: Callable[[RecordedRequest], dict[str, Any]]) -> Responder:
    """A tool_use reply whose input is computed from the request (e.g. echoing refs it was given)."""

    def responder(req: RecordedRequest) -> Reply:
        return tool_use(fn(req))(req)

    return responder


def error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> Responder:
    def responder(req: RecordedRequest) -> Reply:
        return Reply(status=status, body={"type": "error", "error": {"type": error_type, "message": message}},
                     headers=dict(headers or {}))

    return responder


def rate_limited(retry_after: str = "1") -> Responder:
    return error(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit.",
                 {"retry-after": retry_after})


def overloaded(retry_after_ms: int | None = None) -> Responder:
    headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
    return error(529, "overloaded_error", "Overloaded", headers)


def slow(seconds: float, then: Responder) -> Responder:
    def responder(req: RecordedRequest) -> Reply:
        reply = then(req)
        reply.delay = seconds
        return reply

    return responder


def _unscripted(req: RecordedRequest) -> Reply:
    return error(500, "api_error", f"fake Anthropic: no reply scripted for {req.method} {req.path}")(req)


class FakeAnthropic:
    """The server; a context manager. Thread-safe queue, request log and routes."""

    def __init__(self, default: Responder | None = None) -> None:
        self.default: Responder = default or _unscripted
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Responder] = deque()
        self._lock = threading.Lock()
        self._seen_prefixes: set[str] = set()
        self._routes: dict[tuple[str, str], Responder] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-anthropic", daemon=True)

    # -------------------------------------------------------------- lifecycle
    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -------------------------------------------------------------- scripting
    def enqueue(self, *responders: Responder) -> None:
        with self._lock:
            self._queue.extend(responders)

    def route(self, method: str, path: str, handler: Responder) -> None:
        self._routes[(method.upper(), path)] = handler

    @property
    def pending(self) -> int:
        return len(self._queue)

    def requests_to(self, path: str = "/v1/messages") -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    # -------------------------------------------------------------- serving
    def _serve(self, req: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(req)
            route = self._routes.get((req.method, req.path))
            if route is None and req.path == "/v1/messages" and req.method == "POST":
                route = self._queue.popleft() if self._queue else self.default
        if route is None:
            return error(404, "not_found_error", f"fake Anthropic does not serve {req.method} {req.path}")(req)
        reply = route(req)
        if reply.status == 200 and reply.body and reply.body.get("type") == "message" and not reply.body.get("usage"):
            with self._lock:
                reply.body["usage"] = _usage(req, reply.body.get("content"), self._seen_prefixes)
        return reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except json.JSONDecodeError:
                    body = {"_unparsed": raw.decode("utf-8", "replace")}
                path = self.path.split("?", 1)[0]
                req = RecordedRequest(method, path, {k.lower(): v for k, v in self.headers.items()}, body)
                reply = fake._serve(req)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = json.dumps(reply.body or {}).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.send_header("request-id", f"req_{uuid.uuid4().hex[:16]}")
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def do_POST(self) -> None:
                self._handle("POST")

            def do_GET(self) -> None:
                self._handle("GET")

        return Handler
