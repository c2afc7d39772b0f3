"""Export-file readers: a file in, raw objects (or rejects) out. One module per provider."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from yarn_assets.ingest.objects import RawObject, Reject

Reader = Callable[[Path], Iterator[RawObject | Reject]]

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


def detect_provider(path: Path) -> str:
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
    if name.endswith(".zip"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{path.name}: not a readable zip file") from exc
        if any(n.endswith(("users.json", "channels.json")) for n in names):
            return "slack_export"
        if any(n.lower().endswith((".md", ".csv")) or n.lower().endswith(".zip") for n in names):
            return "notion_export"
    if path.is_dir():
        if (path / "channels.json").exists() or (path / "users.json").exists():
            return "slack_export"
        return "notion_export"
    raise ValueError(f"cannot tell the export type of {path.name}; pass --provider")
