"""Concurrent Anthropic calls with backpressure, against the loopback Messages API.

Asserted by counting and ordering (requests in flight at the server, waits in the limiter, which
request arrived after which), never by how long anything took.
"""

import datetime as dt
import threading
import time

import pytest
from pydantic import BaseModel

from control_plane.models import User
from resources.control_plane import ControlPlane
from resources.llm import LLM, LLMScope
from resources.llm_limits import Limiter, retry_after_seconds
from tests.fakes.anthropic_server import FakeAnthropic, rate_limited, tool_use


class Verdict(BaseModel):
    label: str


@pytest.fixture
def control_plane(settings) -> ControlPlane:  # type: ignore[no-untyped-def]
    cp = ControlPlane(url=settings.resolved_control_plane_url)
    with cp.session() as s:
        s.add(User(id="pro_user", email="p@example.com", tier="pro"))
    return cp


def _online(cp: ControlPlane, api: FakeAnthropic, **kw) -> LLM:  # type: ignore[no-untyped-def]
    return LLM(control_plane=cp, offline=False, api_key="sk-test-not-a-secret", base_url=api.base_url,
               timeout_seconds=10.0, max_retries=2, **kw)


def _ask(llm: LLM) -> Verdict:
    return llm.structured(task="signals", user_id="pro_user", system="Classify.", prompt="urgent?", output=Verdict,
                          offline=lambda: Verdict(label="offline"), scope=LLMScope(run_id="r"), max_tokens=50).value


class InFlight:
    """A responder that counts concurrent requests at the server, holding each one for a while."""

    def __init__(self, hold: float) -> None:
        self.hold, self.now, self.peak, self.lock = hold, 0, 0, threading.Lock()

    def __call__(self, req):  # type: ignore[no-untyped-def]
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.hold)
        with self.lock:
            self.now -= 1
        return tool_use({"label": "ok"})(req)


def _threads(n: int, target) -> list[threading.Thread]:  # type: ignore[no-untyped-def]
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def test_calls_run_concurrently_up_to_the_bound_and_never_beyond(control_plane) -> None:  # type: ignore[no-untyped-def]
    server = InFlight(hold=0.3)
    with FakeAnthropic(default=server) as api:
        llm = _online(control_plane, api, max_concurrency=3)
        answers: list[str] = []
        for t in _threads(12, lambda: answers.append(_ask(llm).label)):
            t.join()
    assert answers == ["ok"] * 12 and len(api.requests) == 12
    assert server.peak == 3  # parallel (more than one at a time), and bounded
    assert llm.limiter().stats["max_in_flight"] == 3


def test_a_429_pauses_every_caller_for_its_retry_after(control_plane) -> None:  # type: ignore[no-untyped-def]
    with FakeAnthropic(default=InFlight(hold=0.0)) as api:
        api.enqueue(rate_limited(retry_after="2"))
        llm = _online(control_plane, api, max_concurrency=4)
        limiter = llm.limiter()
        first = _threads(1, lambda: _ask(llm))
        while limiter.stats["paused_by_headers"] == 0:  # the 429 has been seen by the limiter
            time.sleep(0.01)
        others = _threads(3, lambda: _ask(llm))
        for t in first + others:
            t.join()
    requests = list(api.requests)
    assert len(requests) == 5  # the 429, its SDK retry, three others: nobody gave up
    limited_at = requests[0].received_at
    # every request after the 429 (the SDK's retry and the three other callers) waited for retry-after
    assert all(r.received_at >= limited_at + 2.0 - 0.05 for r in requests[1:])
    assert limiter.stats["waits"] >= 3


def test_rate_limit_headers_pause_before_the_limit_is_hit() -> None:
    limiter = Limiter(max_concurrency=2)
    reset = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).isoformat()
    assert limiter.observe(200, {"anthropic-ratelimit-requests-remaining": "5"}, now=100.0) == 0
    pause = limiter.observe(200, {"anthropic-ratelimit-tokens-remaining": "0",
                                  "anthropic-ratelimit-tokens-reset": reset}, now=100.0)
    assert 25 < pause <= 30 and limiter.paused_until == 100.0 + pause
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5 and retry_after_seconds({"retry-after": "7"}) == 7
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert limiter.observe(529, {}, now=200.0) == 1.0  # overloaded without a hint: a short pause


def test_per_minute_buckets_count_requests_and_tokens() -> None:
    limiter = Limiter(max_concurrency=4, requests_per_minute=2, tokens_per_minute=1000)
    limiter.admit(100)
    limiter.admit(100)
    assert limiter.stats["waits"] == 0
    assert limiter._requests is not None and limiter._requests.wait_for(1, time.monotonic()) > 0  # third must wait
