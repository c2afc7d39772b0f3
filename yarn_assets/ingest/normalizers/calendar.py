"""Normalizers for calendar objects (being written in the import-readers work item)."""

from __future__ import annotations

NORMALIZERS: dict = {}
