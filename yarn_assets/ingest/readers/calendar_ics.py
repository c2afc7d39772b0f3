"""Reader for calendar_ics files (being written in the import-readers work item)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from yarn_assets.ingest.objects import RawObject, Reject


def read_ics(path: Path) -> Iterator[RawObject | Reject]:
    yield Reject(reason="reader for calendar_ics is not available in this build", location=path.name)
