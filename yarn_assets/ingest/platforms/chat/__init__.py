"""Chat: JSONL transcripts of the assistant's chat sessions.

Export readers only for now: the memory domain lands them in ``bronze/chat_items`` and normalizes
them into ``silver/chat_sessions`` / ``silver/chat_messages`` (its own tables, not platform_content).
"""

from __future__ import annotations

from yarn_assets.ingest.platforms import Platform
from yarn_assets.ingest.platforms.chat import export


def _detect(name: str, members: list[str] | None, is_dir: bool) -> str | None:
    return "chat_jsonl" if name.endswith(".jsonl") else None


PLATFORM = Platform(
    name="chat",
    label="Chat",
    readers={"chat_jsonl": export.read_chat_jsonl},
    detect=_detect,
    bronze_table="bronze/chat_items",
    silver_tables=("silver/chat_sessions", "silver/chat_messages"),
)
