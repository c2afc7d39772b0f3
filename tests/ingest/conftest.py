"""Fixtures of the ingest tests (helpers live in ``tests/ingest/helpers.py``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ingest.helpers import IngestHarness


@pytest.fixture
def ingest(resources: dict[str, Any], tmp_path: Path) -> Iterator[IngestHarness]:
    yield IngestHarness(resources=resources, archive=tmp_path / "archive",
                        today=dt.datetime.now(dt.UTC).date().isoformat())
