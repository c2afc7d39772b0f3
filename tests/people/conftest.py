"""Fixtures of the people tests (helpers live in ``tests/people/helpers.py``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.people.helpers import PeopleHarness


@pytest.fixture
def people(resources: dict[str, Any], tmp_path: Path) -> Iterator[PeopleHarness]:
    yield PeopleHarness(resources=resources, archive=tmp_path / "archive",
                        today=dt.datetime.now(dt.UTC).date().isoformat())
