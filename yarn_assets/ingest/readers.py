"""Export-file readers, found through the platform registry: a file in, raw objects (or rejects) out.

Each platform's readers live in ``platforms/<name>/export.py``. Every reader is
``read(path, limits=None)``: ``limits`` (the ``input_limits`` resource, built from the ``import_*``
settings) bounds what it may read; over a limit, the object becomes a reject that names the limit
and the rest of the export still lands.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from resources.input_limits import InputLimits
from yarn_assets.ingest import platforms
from yarn_assets.ingest.archive import sample_bytes
from yarn_assets.ingest.objects import RawObject, Reject

__all__ = ["PROVIDER_PLATFORM", "Reader", "detect_provider", "reader_for", "sample_bytes"]

Reader = Callable[[Path, InputLimits | None], Iterator[RawObject | Reject]]

#: export provider -> platform whose partitions its objects land in (``chat`` lands in bronze/chat_items)
PROVIDER_PLATFORM: dict[str, str] = platforms.provider_platform()


def reader_for(provider: str) -> Reader:
    return platforms.reader(provider)


def detect_provider(path: Path, limits: InputLimits | None = None) -> str:
    """Guess the provider from a file name and, for a zip or folder, its member names (never read);
    the first platform in registry order that claims it wins (the CLI lets the user override it)."""
    name = path.name.lower()
    is_dir = path.is_dir()
    members: list[str] | None = None
    if is_dir:
        members = sorted(os.listdir(path))
    elif name.endswith(".zip"):
        from yarn_assets.ingest.archive import ExportArchive, UnreadableArchive

        try:  # the members are listed within the limits, never read
            with ExportArchive(path, limits) as archive:
                members = [m.path for m in archive.members]
        except UnreadableArchive as exc:
            raise ValueError(str(exc)) from None
    for platform in platforms.all_platforms():
        found = platform.detect(name, members, is_dir) if platform.detect else None
        if found:
            return found
    raise ValueError(f"cannot tell the export type of {path.name}; pass --provider")
