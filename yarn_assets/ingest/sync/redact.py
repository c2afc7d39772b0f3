"""Keeps secrets out of every log record and stored error message during a sync.

The SDKs already avoid logging tokens, but a debug log of a request body or an exception
quoting a URL is one version bump away; so while a connection syncs, every log record created
in the process (any logger) has that connection's secret values replaced, and every error
message stored in the control plane or the event log goes through :func:`redact`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

MASK = "[redacted]"
_lock = threading.Lock()
_active: dict[int, frozenset[str]] = {}
_installed: Any = None


def secret_values(creds: dict[str, Any]) -> list[str]:
    """The values worth masking: every string credential longer than a few characters."""
    return [str(v) for v in creds.values() if isinstance(v, str) and len(v) >= 6]


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


def _all_secrets() -> frozenset[str]:
    out: set[str] = set()
    for values in _active.values():
        out |= values
    return frozenset(out)


def _factory(previous: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        secrets = _all_secrets()
        if secrets:
            try:
                message = record.getMessage()
            except Exception:  # a broken format string is not ours to fix
                return record
            cleaned = redact(message, secrets)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return record

    return make


@contextmanager
def redacting(secrets: Iterable[str]) -> Iterator[None]:
    """Mask ``secrets`` in every log record created while the block runs."""
    global _installed
    token = object()
    with _lock:
        _active[id(token)] = frozenset(s for s in secrets if s)
        if _installed is None:
            _installed = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_factory(_installed))
    try:
        yield
    finally:
        with _lock:
            _active.pop(id(token), None)
            if not _active and _installed is not None:
                logging.setLogRecordFactory(_installed)
                _installed = None
