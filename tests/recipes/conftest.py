"""Fixtures shared with the deliverables tests (users alice/bob, loopback HTTP)."""

from tests.deliverables.conftest import http, workspace  # noqa: F401
