"""The Message Batches API on top of the loopback Anthropic server (``tests.fakes.anthropic_server``).

Usage::

    with FakeAnthropic() as api, FakeBatches(api, answer=tool_answer(lambda cid, params: {...})) as batches:
        ...  # the official client: client.messages.batches.create/retrieve/results/cancel
        batches.created        # the create bodies, as sent
        batches.polls          # retrieve calls per batch id

Endpoints: ``POST /v1/messages/batches`` (create), ``GET /v1/messages/batches/{id}`` (retrieve;
``in_progress`` for the first ``polls_before_end`` polls, then ``ended``), ``POST
/v1/messages/batches/{id}/cancel``, and the results JSONL at the batch's absolute
``results_url``, served by a second loopback server (the SDK follows ``results_url`` as given).

``answer(custom_id, params)`` returns the ``result`` object of one request:
``succeeded(...)``/``tool_answer(...)`` for a message, ``errored(...)``, ``expired()``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.anthropic_server import FakeAnthropic, RecordedRequest, Reply

Answer = Callable[[str, dict[str, Any]], dict[str, Any]]


def _usage(params: dict[str, Any], output: Any) -> dict[str, int]:
    return {
        "input_tokens": max(1, len(json.dumps(params.get("messages", []))) // 4),
        "output_tokens": max(1, len(json.dumps(output)) // 4),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": len(json.dumps(params.get("system", []))) // 4,
    }


def succeeded(params: dict[str, Any], content: list[dict[str, Any]], stop_reason: str = "tool_use") -> dict[str, Any]:
    return {"type": "succeeded", "message": {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
        "model": params.get("model", "unknown"), "content": content, "stop_reason": stop_reason,
        "stop_sequence": None, "usage": _usage(params, content),
    }}


def tool_answer(fn: Callable[[str, dict[str, Any]], dict[str, Any]]) -> Answer:
    """Answer every request with a call of its forced tool whose input is ``fn(custom_id, params)``."""

    def answer(custom_id: str, params: dict[str, Any]) -> dict[str, Any]:
        name = (params.get("tool_choice") or {}).get("name") or "tool"
        block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", "name": name,
                 "input": fn(custom_id, params)}
        return succeeded(params, [block])

    return answer


def text_answer(custom_id: str, params: dict[str, Any], value: str) -> dict[str, Any]:
    return succeeded(params, [{"type": "text", "text": value}], "end_turn")


def errored(message: str = "Overloaded", error_type: str = "overloaded_error") -> dict[str, Any]:
    return {"type": "errored", "error": {"type": "error", "error": {"type": error_type, "message": message}}}


def expired() -> dict[str, Any]:
    return {"type": "expired"}


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class FakeBatches:
    """Installs the batch routes on ``api``; a context manager (it owns the results server)."""

    def __init__(self, api: FakeAnthropic, answer: Answer, polls_before_end: int = 2) -> None:
        self.api = api
        self.answer = answer
        self.polls_before_end = polls_before_end
        self.created: list[dict[str, Any]] = []
        self.polls: dict[str, int] = {}
        self.results_fetched: dict[str, int] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        self._lines: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._results_handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-batch-results", daemon=True)
        api.route("POST", "/v1/messages/batches", self._create)

    def __enter__(self) -> FakeBatches:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def results_base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ------------------------------------------------------------------ API
    def _body(self, batch_id: str) -> dict[str, Any]:
        b = self._batches[batch_id]
        n = len(b["requests"])
        ended = b["status"] == "ended"
        counts = {"processing": 0 if ended else n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if ended:
            for kind in b["outcomes"].values():
                counts[kind] += 1
        return {
            "id": batch_id, "type": "message_batch", "processing_status": b["status"], "request_counts": counts,
            "created_at": _iso(b["created_at"]), "expires_at": _iso(b["created_at"] + dt.timedelta(hours=24)),
            "ended_at": _iso(b["ended_at"]) if b.get("ended_at") else None, "archived_at": None,
            "cancel_initiated_at": _iso(b["cancel_at"]) if b.get("cancel_at") else None,
            "results_url": f"{self.results_base}/v1/messages/batches/{batch_id}/results" if ended else None,
        }

    def _create(self, req: RecordedRequest) -> Reply:
        requests = req.body.get("requests") or []
        ids = [r.get("custom_id") for r in requests]
        if not requests or len(set(ids)) != len(ids):
            return Reply(status=400, body={"type": "error", "error": {
                "type": "invalid_request_error", "message": "requests must be non-empty with unique custom_id"}})
        batch_id = f"msgbatch_{uuid.uuid4().hex[:24]}"
        with self._lock:
            self.created.append(req.body)
            self._batches[batch_id] = {"requests": requests, "status": "in_progress",
                                       "created_at": dt.datetime.now(dt.UTC), "outcomes": {}}
            self.polls[batch_id] = 0
        self.api.route("GET", f"/v1/messages/batches/{batch_id}", self._retrieve)
        self.api.route("POST", f"/v1/messages/batches/{batch_id}/cancel", self._cancel)
        return Reply(body=self._body(batch_id))

    def _retrieve(self, req: RecordedRequest) -> Reply:
        batch_id = req.path.rsplit("/", 1)[-1]
        with self._lock:
            self.polls[batch_id] += 1
            b = self._batches[batch_id]
            if b["status"] == "in_progress" and self.polls[batch_id] > self.polls_before_end:
                self._end(batch_id)
            return Reply(body=self._body(batch_id))

    def _cancel(self, req: RecordedRequest) -> Reply:
        batch_id = req.path.split("/")[-2]
        with self._lock:
            b = self._batches[batch_id]
            b["cancel_at"] = dt.datetime.now(dt.UTC)
            if b["status"] == "in_progress":
                b["canceled"] = True
                self._end(batch_id)
            return Reply(body=self._body(batch_id))

    def _end(self, batch_id: str) -> None:
        b = self._batches[batch_id]
        lines = []
        for r in b["requests"]:
            result = {"type": "canceled"} if b.get("canceled") else self.answer(r["custom_id"], r["params"])
            b["outcomes"][r["custom_id"]] = result["type"]
            lines.append(json.dumps({"custom_id": r["custom_id"], "result": result}))
        lines.reverse()  # results are not guaranteed in request order; make sure callers don't rely on it
        self._lines[batch_id] = ("\n".join(lines) + "\n").encode()
        b["status"] = "ended"
        b["ended_at"] = dt.datetime.now(dt.UTC)

    def _results_handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                batch_id = parts[-2] if len(parts) >= 2 else ""
                with fake._lock:
                    payload = fake._lines.get(batch_id)
                    if payload is not None:
                        fake.results_fetched[batch_id] = fake.results_fetched.get(batch_id, 0) + 1
                status = 200 if payload is not None else 404
                body = payload if payload is not None else b'{"type":"error","error":{"type":"not_found_error"}}'
                self.send_response(status)
                self.send_header("content-type", "application/binary" if status == 200 else "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
