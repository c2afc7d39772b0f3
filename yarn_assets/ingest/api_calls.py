"""Every API call goes through :class:`ApiCaller`: budget, bounded retries, error translation.

One retry policy for every platform's SDK (their own retry loops are switched off, so attempts,
waits and the shared budget are accounted in one place): ``Retry-After`` is honoured on 429 (and
pushed into the shared budget so concurrent runs wait too), 5xx and network errors back off
exponentially with jitter, and everything stops after ``max_attempts``. Each platform's
``classify`` (``LiveApi.classify``) turns its SDK's errors into a :class:`Verdict`: authentication
errors become :class:`CredentialProblem`; 404/403 become :class:`NotFound`; anything else surfaces.
"""

from __future__ import annotations

import logging
import random
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity

from yarn_assets.ingest.api_errors import ApiUnavailable, CredentialProblem, CursorExpired, NotFound
from yarn_assets.ingest.budget import RateBudget

log = logging.getLogger(__name__)
T = TypeVar("T")

@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0


@dataclass(frozen=True)
class Verdict:
    kind: str  # rate_limited | server | network | auth | not_found | gone | other
    summary: str
    retry_after: float | None = None
    status: str = "error"  # for auth: revoked | expired | error

    @property
    def retryable(self) -> bool:
        return self.kind in ("rate_limited", "server", "network")


def retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    value = None
    try:
        for k in headers:
            if str(k).lower() == "retry-after":
                value = headers[k]
                break
    except TypeError:
        return None
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        import email.utils

        try:
            when = email.utils.parsedate_to_datetime(str(value))
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def network_error(exc: BaseException) -> bool:
    import http.client
    import urllib.error

    import httpx

    return isinstance(
        exc,
        socket.timeout | TimeoutError | ConnectionError | urllib.error.URLError | http.client.HTTPException
        | httpx.TransportError,
    ) or type(exc).__module__.startswith("httplib2")


class _Retry(Exception):
    def __init__(self, verdict: Verdict, wait: float) -> None:
        super().__init__(verdict.summary)
        self.verdict = verdict
        self.wait = wait


@dataclass
class CallStats:
    requests: Counter[str] = field(default_factory=Counter)  # attempts per method (each is one HTTP call)
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0

    def total(self) -> int:
        return sum(self.requests.values())


class ApiCaller:
    """Runs one SDK call with the connection's budget and the retry policy."""

    def __init__(
        self,
        platform: str,
        connection_label: str,
        budget: RateBudget | None = None,
        retry: RetrySettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from yarn_assets.ingest.platforms import api_of

        self.platform = platform
        self.connection_label = connection_label
        self.budget = budget
        self.retry = retry or RetrySettings()
        self.classify = api_of(platform).classify
        self.sleep = sleep
        self.stats = CallStats()

    def _backoff(self, attempt: int) -> float:
        base = self.retry.backoff_seconds * (2 ** (attempt - 1))
        return min(self.retry.max_backoff_seconds, base * (0.5 + random.random() / 2))

    def __call__(self, method: str, fn: Callable[[], T], *, allow_gone: bool = False) -> T:
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            if self.budget is not None:
                self.budget.acquire(method)
            self.stats.requests[method] += 1
            try:
                return fn()
            except Exception as exc:
                verdict = self.classify(exc)
                number = attempts
                if verdict.kind == "rate_limited":
                    self.stats.rate_limited += 1
                    wait = verdict.retry_after if verdict.retry_after is not None else self._backoff(number)
                    if wait > self.retry.max_retry_after_seconds:
                        raise ApiUnavailable(
                            f"{method}: rate limited for {wait:.0f}s (more than the "
                            f"{self.retry.max_retry_after_seconds:.0f}s this run will wait)"
                        ) from exc
                    if self.budget is not None:
                        self.budget.penalize(method, wait)  # every run on this budget waits
                        wait = 0.0  # ...including this one, inside the next acquire()
                    raise _Retry(verdict, wait) from exc
                if verdict.kind in ("server", "network"):
                    self.stats.server_errors += 1
                    raise _Retry(verdict, self._backoff(number)) from exc
                if verdict.kind == "auth":
                    raise CredentialProblem(
                        f"{self.connection_label}: {verdict.summary}; reconnect it (yarnnn connections add)",
                        status=verdict.status,
                    ) from exc
                if verdict.kind == "gone" and allow_gone:
                    raise CursorExpired(f"{method}: {verdict.summary}") from exc
                if verdict.kind in ("not_found", "gone"):
                    raise NotFound(f"{method}: {verdict.summary}") from exc
                raise

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return exc.wait if isinstance(exc, _Retry) else 0.0

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.info("%s %s: %s, retry %d", self.platform, method, exc, state.attempt_number)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.max_attempts),
            retry=tenacity.retry_if_exception_type(_Retry),
            wait=wait,
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retry as exc:
            raise ApiUnavailable(
                f"{method}: gave up after {self.retry.max_attempts} attempts ({exc.verdict.summary})"
            ) from exc.__cause__
