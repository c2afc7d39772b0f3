"""Slack Web API messages (``conversations.history`` / ``.replies`` objects) -> message items.

Author names follow the original: display_name, else real_name, else the user id (from the
batch's ``slack_users`` objects, which the sync fills from its users.info cache). Text has
Slack's mrkdwn markup resolved: ``<@U1>`` -> ``@name``, ``<#C1|general>`` -> ``#general``,
``<https://x|label>`` -> ``label (https://x)``, HTML entities unescaped.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Iterator
from typing import Any

from yarn_assets.ingest.normalizers import BatchContext
from yarn_assets.ingest.objects import BronzeObject, ContentItem, Reject

_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_SUBTEAM = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


def user_name(user: dict[str, Any] | None, fallback: str) -> str:
    if not user:
        return fallback
    profile = user.get("profile") or {}
    return str(profile.get("display_name") or profile.get("real_name") or user.get("real_name")
               or user.get("name") or fallback)


def _link(m: re.Match[str]) -> str:
    url, label = m.group(1), m.group(2)
    bare = url.removeprefix("mailto:")
    return f"{label} ({url})" if label and label not in (url, bare) else bare


def clean_mrkdwn(text: str, users: dict[str, dict[str, Any]]) -> str:
    text = _USER.sub(lambda m: "@" + (m.group(2) or user_name(users.get(m.group(1)), m.group(1))), text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _SPECIAL.sub(lambda m: "@" + m.group(1), text)
    text = _SUBTEAM.sub(lambda m: m.group(1) or "@group", text)
    text = _LINK.sub(_link, text)
    return html.unescape(text)


def _ts(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def message_text(msg: dict[str, Any], users: dict[str, dict[str, Any]]) -> str:
    parts = [clean_mrkdwn(str(msg.get("text") or ""), users).strip()]
    for att in msg.get("attachments") or []:
        if isinstance(att, dict):
            extra = att.get("text") or att.get("fallback") or ""
            if extra and extra not in parts[0]:
                parts.append(clean_mrkdwn(str(extra), users).strip())
    for f in msg.get("files") or []:
        if isinstance(f, dict) and (f.get("name") or f.get("title")):
            parts.append(f"[file: {f.get('title') or f.get('name')}]")
    return "\n".join(p for p in parts if p)


def normalize_api_message(obj: BronzeObject, ctx: BatchContext) -> Iterator[ContentItem | Reject]:
    if obj.is_tombstone:
        yield ContentItem(resource_id=obj.resource_id, resource_name=obj.resource_name, external_id=obj.external_id,
                          content_type="message", content="", is_deleted=True,
                          occurred_at=_ts(obj.external_id), source_created_at=_ts(obj.external_id))
        return
    msg = json.loads(obj.raw)
    if not isinstance(msg, dict) or not msg.get("ts"):
        yield Reject(reason="slack message without ts", raw=obj.raw, object_type=obj.object_type,
                     external_id=obj.external_id)
        return
    users = ctx.slack_users
    uid = str(msg.get("user") or msg.get("bot_id") or "")
    when = _ts(msg["ts"])
    is_reply = bool(obj.context.get("is_reply"))
    thread_ts = msg.get("thread_ts") or obj.context.get("thread_ts")
    edited = (msg.get("edited") or {}).get("ts")
    text = message_text(msg, users)
    yield ContentItem(
        resource_id=obj.resource_id,
        resource_name=obj.resource_name,
        external_id=str(msg["ts"]),
        content_type="thread_reply" if is_reply else "message",
        content=text,
        author=user_name(users.get(uid), uid) if uid else (msg.get("username") or None),
        author_id=uid or None,
        participants=[uid] if uid else [],
        thread_id=str(thread_ts) if thread_ts else None,
        occurred_at=when,
        source_created_at=when,
        source_updated_at=_ts(edited) if edited else None,
        metadata={
            "user": uid or None, "ts": msg["ts"], "reactions": msg.get("reactions") or [],
            "reply_count": msg.get("reply_count") or 0, "thread_ts": thread_ts, "subtype": msg.get("subtype"),
            "edited": edited, "channel": obj.context.get("channel_name"),
        },
    )


NORMALIZERS = {"slack_api_message": normalize_api_message}
