"""Export-file readers: a file in, raw objects (or rejects) out. One module per provider.

Every reader is ``read(path, limits=None)``: ``limits`` (the ``input_limits`` resource, built from
the ``import_*`` settings) bounds what it may read; over a limit, the object becomes a reject
that names the limit and the rest of the export still lands.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from resources.input_limits import InputLimits
from yarn_assets.ingest.objects import RawObject, Reject

Reader = Callable[[Path, InputLimits | None], Iterator[RawObject | Reject]]

#: provider -> platform whose partitions its objects land in
PROVIDER_PLATFORM = {
    "slack_export": "slack",
    "mbox": "gmail",
    "eml": "gmail",
    "ics": "calendar",
    "notion_export": "notion",
    "chat_jsonl": "chat",  # lands in bronze/chat_items via the memory domain, not in platform partitions
}


def reader_for(provider: str) -> Reader:
    from yarn_assets.ingest.readers import calendar_ics, chat_jsonl, mail, notion_export, slack_export

    readers: dict[str, Reader] = {
        "slack_export": slack_export.read_slack_export,
        "mbox": mail.read_mbox,
        "eml": mail.read_eml,
        "ics": calendar_ics.read_ics,
        "notion_export": notion_export.read_notion_export,
        "chat_jsonl": chat_jsonl.read_chat_jsonl,
    }
    try:
        return readers[provider]
    except KeyError:
        raise ValueError(f"unknown import provider {provider!r}; known: {sorted(readers)}") from None


def sample_bytes(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of a regular file (what a reject keeps of a file too big to read)."""
    from yarn_assets.ingest.readers.archive import MemberUnreadable, open_regular

    if n <= 0:
        return b""
    try:
        with open_regular(path) as fh:
            return fh.read(n)
    except (OSError, MemberUnreadable):
        return b""


def detect_provider(path: Path, limits: InputLimits | None = None) -> str:
    """Guess the provider from a file name (the CLI lets the user override it)."""
    name = path.name.lower()
    if name.endswith(".mbox") or name == "mbox":
        return "mbox"
    if name.endswith((".eml", ".txt")):
        return "eml"
    if name.endswith(".ics"):
        return "ics"
    if name.endswith(".jsonl"):
        return "chat_jsonl"
    if name.endswith(".zip") and not os.path.isdir(path):
        from yarn_assets.ingest.readers.archive import ExportArchive, UnreadableArchive

        try:  # the members are listed within the limits, never read
            with ExportArchive(path, limits) as archive:
                names = [m.path for m in archive.members]
        except UnreadableArchive as exc:
            raise ValueError(str(exc)) from None
        if any(n.endswith(("users.json", "channels.json")) for n in names):
            return "slack_export"
        if any(n.lower().endswith((".md", ".csv")) or n.lower().endswith(".zip") for n in names):
            return "notion_export"
    if path.is_dir():
        if (path / "channels.json").exists() or (path / "users.json").exists():
            return "slack_export"
        return "notion_export"
    raise ValueError(f"cannot tell the export type of {path.name}; pass --provider")
