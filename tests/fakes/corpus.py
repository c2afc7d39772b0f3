"""Building blocks from the shared corpus (read-only) for the API fakes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import CORPUS


def load(rel: str) -> Any:
    return json.loads((CORPUS / rel).read_text(encoding="utf-8"))


def slack_message_templates() -> list[dict[str, Any]]:
    """Every message object in the corpus's Slack export day files and thread files."""
    out: list[dict[str, Any]] = []
    for path in sorted((CORPUS / "slack_export").rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if isinstance(data, list):
            out.extend(copy.deepcopy(m) for m in data if isinstance(m, dict) and "ts" in m and "type" in m)
    return out


def slack_users() -> list[dict[str, Any]]:
    users = load("slack_api/slackweb__ListRsp_with_bots.json")["members"]
    users.append(load("slack_api/zulip__slack_users_info_api_response.json")["user"])
    return users


def slack_channel_template() -> dict[str, Any]:
    return load("slack_api/pyslacksdk__web_response_conversations_list.json")["channels"][0]


def gcal_events() -> dict[str, dict[str, Any]]:
    return load("gcal_api/gdataprovider__gcalItems.json")


def mail_files() -> list[Path]:
    """RFC 5322 messages (a header block first); the reply-body fixtures without headers are left out."""
    import re

    files = sorted(p for p in (CORPUS / "mbox_eml").iterdir() if p.suffix in (".eml", ".txt"))
    return [p for p in files if re.match(rb"[A-Za-z][A-Za-z0-9-]*:", p.read_bytes().lstrip(b"\xef\xbb\xbf"))]


def notion_cassette(name: str) -> list[Any]:
    """Response bodies of a VCR cassette."""
    data = yaml.safe_load((CORPUS / "notion_api" / name).read_text(encoding="utf-8"))
    return [json.loads(i["response"]["body"]["string"]) for i in data.get("interactions", [])]


def notion_blocks() -> list[dict[str, Any]]:
    return load("notion_api/jomei__block_get_children.json")["results"]


def notion_page() -> dict[str, Any]:
    return load("notion_api/jomei__page_get.json")
