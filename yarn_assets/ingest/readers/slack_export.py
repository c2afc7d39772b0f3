"""Reader for slack_export files (being written in the import-readers work item)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from yarn_assets.ingest.objects import RawObject, Reject


def read_slack_export(path: Path) -> Iterator[RawObject | Reject]:
    yield Reject(reason="reader for slack_export is not available in this build", location=path.name)
