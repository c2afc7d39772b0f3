"""Generated mail exports for tests and benchmarks (plain mbox, dated relative to a given now)."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime
from pathlib import Path


def write_mbox(path: Path, n: int, now: dt.datetime, tag: str = "m") -> Path:
    """``n`` small text/plain messages, one a minute back from ``now``; Message-IDs ``<tag-i@example.com>``."""
    with path.open("w") as f:
        for i in range(n):
            when = now - dt.timedelta(minutes=i)
            f.write(
                f"From sender{i % 50}@example.com {when.strftime('%a %b %d %H:%M:%S %Y')}\n"
                f"From: Sender {i % 50} <sender{i % 50}@example.com>\nTo: alice@example.com\n"
                f"Subject: Status update {tag}-{i}\nDate: {format_datetime(when)}\n"
                f"Message-ID: <{tag}-{i}@example.com>\nContent-Type: text/plain; charset=utf-8\n\n"
                f"Hello Alice, this is update number {i} about project {i % 97}.\nRegards\n\n"
            )
    return path
