"""A loopback HTTP server speaking the Slack Web API's ``chat.postMessage`` (what slack_sdk sends).

Point ``slack_sdk.WebClient(base_url=server.base_url)`` at it. It checks the bearer token, keeps
every posted message, and can answer with Slack errors or a 429 (``fail_next``).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class PostedMessage:
    channel: str
    text: str
    token: str
    payload: dict[str, Any] = field(default_factory=dict)


class SlackWebApi:
    def __init__(self, token: str = "xoxb-test-token", *other_tokens: str) -> None:
        self.token = token
        self.tokens = {token, *other_tokens}  # every workspace token it accepts (operator bot, users' connections)
        self.messages: list[PostedMessage] = []
        self.fail_next: list[tuple[int, dict[str, Any], dict[str, str]]] = []  # (status, body, headers)
        self.calls = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.calls += 1
        if self.fail_next:
            return self.fail_next.pop(0)
        if path.rstrip("/") != "/api/chat.postMessage":
            return 404, {"ok": False, "error": "unknown_method"}, {}
        auth = headers.get("authorization", "")
        if auth not in {f"Bearer {t}" for t in self.tokens}:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        ctype = headers.get("content-type", "")
        if "json" in ctype:
            payload = json.loads(body or b"{}")
        else:
            payload = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        channel = str(payload.get("channel") or "")
        if not channel:
            return 200, {"ok": False, "error": "channel_not_found"}, {}
        ts = f"{time.time():.6f}"
        self.messages.append(PostedMessage(channel=channel, text=str(payload.get("text") or ""), token=auth,
                                           payload=payload))
        return 200, {"ok": True, "channel": channel, "ts": ts, "message": {"text": payload.get("text"), "ts": ts}}, {}

    def __enter__(self) -> SlackWebApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                status, data, extra = api._handle(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(raw)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
