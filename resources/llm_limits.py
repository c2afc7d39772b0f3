"""Backpressure for concurrent Anthropic calls: a concurrency bound, request/token-per-minute
buckets, and a shared pause that honours ``retry-after`` and the ``anthropic-ratelimit-*`` headers.

One :class:`Limiter` is shared by every thread of a process that talks to the same API endpoint
with the same key (:func:`limiter_for`). The SDK's own retries still happen (they honour
``retry-after`` in the thread that got the 429); the limiter makes the *other* threads wait too:
an httpx ``request`` hook blocks every attempt (first tries and SDK retries) until the pause has
passed and the per-minute buckets allow it, and a ``response`` hook reads the headers of every
response. The offline engine never touches any of this.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime


@dataclass
class _Bucket:
    """A per-minute allowance refilled continuously (capacity = the per-minute limit)."""

    per_minute: float
    level: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.level = self.per_minute if self.level < 0 else self.level

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` is available (0: take it now)."""
        self.level = min(self.per_minute, self.level + (now - self.stamp) * self.per_minute / 60.0)
        self.stamp = now
        amount = min(amount, self.per_minute)  # a request larger than a minute's allowance waits for a full bucket
        if self.level >= amount:
            self.level -= amount
            return 0.0
        return (amount - self.level) * 60.0 / self.per_minute


class Limiter:
    """Concurrency bound + RPM/TPM buckets + a pause shared by all callers."""

    def __init__(self, max_concurrency: int = 8, requests_per_minute: int | None = None,
                 tokens_per_minute: int | None = None) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._lock = threading.Lock()
        self._requests = _Bucket(float(requests_per_minute)) if requests_per_minute else None
        self._tokens = _Bucket(float(tokens_per_minute)) if tokens_per_minute else None
        self.paused_until = 0.0  # time.monotonic()
        self.stats = {"calls": 0, "in_flight": 0, "max_in_flight": 0, "paused_by_headers": 0, "waits": 0,
                      "waited_seconds": 0.0}

    @contextmanager
    def call(self, estimated_tokens: int = 0) -> Iterator[None]:
        """Hold one of the concurrency slots for a whole call (with the SDK's retries inside it)."""
        self._slots.acquire()
        with self._lock:
            self.stats["calls"] += 1
            self.stats["in_flight"] += 1
            self.stats["max_in_flight"] = max(self.stats["max_in_flight"], self.stats["in_flight"])
        try:
            self.admit(estimated_tokens)
            yield
        finally:
            with self._lock:
                self.stats["in_flight"] -= 1
            self._slots.release()

    def admit(self, tokens: int = 0) -> None:
        """Block until the shared pause has passed and the buckets allow one request of ``tokens``."""
        while True:
            with self._lock:
                now = time.monotonic()
                wait = max(0.0, self.paused_until - now)
                if wait == 0.0 and self._requests is not None:
                    wait = self._requests.wait_for(1, now)
                if wait == 0.0 and self._tokens is not None and tokens:
                    wait = self._tokens.wait_for(tokens, now)
                    if wait > 0 and self._requests is not None:
                        self._requests.level += 1  # give the request slot back while waiting for tokens
                if wait == 0.0:
                    return
                self.stats["waits"] += 1
                self.stats["waited_seconds"] += wait
            time.sleep(min(wait, 5.0))

    def observe(self, status: int, headers: Mapping[str, str], now: float | None = None) -> float:
        """Read a response's headers; returns the pause (seconds) it imposed on everyone (0: none)."""
        now = time.monotonic() if now is None else now
        pause = 0.0
        if status == 429 or status == 529 or status == 503:
            pause = retry_after_seconds(headers) or 1.0
        else:
            for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
                remaining = headers.get(f"anthropic-ratelimit-{kind}-remaining")
                if remaining is not None and remaining.strip().isdigit() and int(remaining) == 0:
                    pause = max(pause, reset_seconds(headers.get(f"anthropic-ratelimit-{kind}-reset")) or 1.0)
        if pause > 0:
            with self._lock:
                if now + pause > self.paused_until:
                    self.paused_until = now + pause
                    self.stats["paused_by_headers"] += 1
        return pause


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), capped at 10 minutes."""
    raw_ms = headers.get("retry-after-ms")
    try:
        if raw_ms is not None:
            return min(600.0, max(0.0, float(raw_ms) / 1000.0))
    except ValueError:
        pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return min(600.0, max(0.0, float(raw)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return min(600.0, max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds()))


def reset_seconds(raw: str | None) -> float | None:
    """An ``anthropic-ratelimit-*-reset`` RFC 3339 time as seconds from now."""
    if not raw:
        return None
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(600.0, max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds()))


_LIMITERS: dict[tuple[str, str, int, int | None, int | None], Limiter] = {}
_REGISTRY_LOCK = threading.Lock()


def limiter_for(base_url: str | None, api_key: str | None, max_concurrency: int,
                requests_per_minute: int | None, tokens_per_minute: int | None) -> Limiter:
    """The process-wide limiter of one endpoint and key (the key only as a hash)."""
    key_hash = hashlib.sha256((api_key or "").encode()).hexdigest()[:16]
    key = (base_url or "anthropic", key_hash, max_concurrency, requests_per_minute, tokens_per_minute)
    with _REGISTRY_LOCK:
        if key not in _LIMITERS:
            _LIMITERS[key] = Limiter(max_concurrency, requests_per_minute, tokens_per_minute)
        return _LIMITERS[key]
