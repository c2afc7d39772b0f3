"""Slack messages (export day files and API history/replies) -> message and thread_reply items.

Rules (yarnnn-original.md §2, plus what the original got wrong):

* system subtypes are filtered (:data:`FILTERED_SUBTYPES`, exactly the original's list); they are
  counted in the batch stats, not rejected;
* authors resolve through the batch's users.json: ``profile.display_name``, else ``real_name``,
  else ``name``, else the id (unresolved ids stay ids; bots fall back to ``username``);
* a message with ``thread_ts`` different from its ``ts`` is a ``thread_reply``; parent and replies
  share ``thread_id = thread_ts``;
* edits: ``edited.ts`` becomes ``source_updated_at``; a ``message_changed`` event is a new version
  of the target ``ts``; ``message_deleted`` is a tombstone of ``deleted_ts``;
* mrkdwn becomes plain text (mentions resolved, links as ``label (url)``, entities decoded); a
  message with empty text takes its text from attachments, then files (forwards, bot posts);
* ``occurred_at`` and ``source_created_at`` are ``ts`` in UTC (microsecond exact, no float).

Two implementations of the same rules: :func:`normalize_slack_message` (per object, the reference
and the path for rare edit/delete events) and :func:`~.normalize_frame.normalize_slack_frame`
(vectorized polars, the path every large export and sync takes). A test asserts they agree on the
corpus.

A message from the Web API (``conversations.history`` / ``.replies``) and the same message from a
workspace export are the same silver row (same key), so they normalize through the same
:func:`message_item` (subtype filter, author names from the batch's ``slack_users`` — which the
sync fills from its users.info cache —, mrkdwn, attachments and files); otherwise a user who
imports an export and also syncs would see every message flip between two texts. The API adds
only tombstones for vanished messages, and the thread of a reply fetched through
``conversations.replies`` when the reply itself omits ``thread_ts`` (:func:`normalize_api_message`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

from yarn_assets.ingest.objects import BronzeObject, ContentItem, Reject

#: yarnnn-original.md §2 "Filtered subtypes", verbatim.
FILTERED_SUBTYPES = frozenset({
    "bot_message", "channel_join", "channel_leave", "channel_purpose", "channel_topic", "channel_rename",
    "channel_archive", "channel_unarchive", "group_join", "group_leave", "group_purpose", "group_topic",
})
#: Events that change another message; rare, so they take the per-object path.
EDIT_SUBTYPES = frozenset({"message_changed", "message_deleted"})

_TS = re.compile(r"^\s*(\d{1,12})(?:\.(\d{1,6})\d*)?\s*$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# mrkdwn -> text, applied in this order by both implementations (Rust regex syntax = Python's here).
_USER_LABELLED = (r"<@([^|>]+)\|([^>]+)>", "@{2}")
_USER_BARE = r"<@([^|>]+)\|?>"
_CHANNEL_LABELLED = (r"<#([^|>]+)\|([^>]+)>", "#{2}")
_CHANNEL_BARE = r"<#([^|>]+)\|?>"
_SPECIALS = [
    (r"<!(channel|here|everyone)(?:\|[^>]*)?>", "@{1}"),
    (r"<!subteam\^[^|>]+\|([^>]+)>", "{1}"),
    (r"<![^|>]+\|([^>]+)>", "{1}"),  # <!date^…|fallback>
    (r"<!([^|>]+)>", "@{1}"),
    (r"<(?:mailto|tel|sms):[^|>]*\|([^>]*)>", "{1}"),
    (r"<([^|>]+)\|([^>]+)>", "{2} ({1})"),
    (r"<([^|>]+)>", "{1}"),
]
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}


def _py_repl(template: str) -> str:
    return re.sub(r"\{(\d)\}", r"\\g<\1>", template)


def _pl_repl(template: str) -> str:
    return re.sub(r"\{(\d)\}", r"${\1}", template)


# --------------------------------------------------------------------------- batch lookups


def user_display_name(user: dict[str, Any]) -> str | None:
    """display_name, else real_name, else name (empty strings do not count)."""
    profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
    for value in (profile.get("display_name"), user.get("real_name"), profile.get("real_name"), user.get("name")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _listed(ctx: Any, object_type: str, key: str) -> Iterator[dict[str, Any]]:
    """The objects listed in the batch's ``object_type`` context objects: ``{key: [...]}`` or a bare list."""
    for obj in ctx.of_type(object_type):
        try:
            data = json.loads(obj.raw)
        except ValueError:
            continue
        listed = data.get(key, data) if isinstance(data, dict) else data
        yield from (x for x in (listed if isinstance(listed, list) else []) if isinstance(x, dict))


def slack_users(ctx: Any) -> dict[str, dict[str, Any]]:
    """user id -> user object, from every users.json-like object of the batch (cached on the context)."""
    def build() -> dict[str, dict[str, Any]]:
        return {str(u["id"]): u for u in _listed(ctx, "slack_users", "members") if u.get("id")}

    return ctx.cached("slack_users", build)  # type: ignore[no-any-return]


def user_names(ctx: Any) -> dict[str, str]:
    """user id -> display name for the batch (cached on the context)."""
    def build() -> dict[str, str]:
        return {uid: name for uid, user in slack_users(ctx).items() if (name := user_display_name(user))}

    return ctx.cached("slack_user_names", build)  # type: ignore[no-any-return]


def channel_names(ctx: Any) -> dict[str, str]:
    """conversation id -> name, from channels.json/groups.json/mpims.json objects of the batch."""
    def build() -> dict[str, str]:
        return {str(c["id"]): str(c["name"]) for c in _listed(ctx, "slack_channels", "channels")
                if c.get("id") and c.get("name")}

    return ctx.cached("slack_channel_names", build)  # type: ignore[no-any-return]


_COUNT_LOCK = threading.Lock()  # chunks of one batch are normalized on several threads (row-wise)


def _count_filtered(ctx: Any, subtype: str, n: int = 1) -> None:
    filtered = getattr(ctx, "filtered", None)
    if filtered is not None:
        with _COUNT_LOCK:
            filtered[f"slack:{subtype}"] += n


# --------------------------------------------------------------------------- per-object reference


def ts_to_datetime(ts: Any) -> dt.datetime | None:
    """Slack ``ts`` ("1458972985.000010") -> exact UTC datetime; None when it is not a ts."""
    if ts is None or isinstance(ts, bool):
        return None
    match = _TS.match(str(ts))
    if not match:
        return None
    micros = int(match.group(1)) * 1_000_000 + int((match.group(2) or "0").ljust(6, "0"))
    return _EPOCH + dt.timedelta(microseconds=micros)


def clean_mrkdwn(text: str, users: dict[str, str], channels: dict[str, str]) -> str:
    text = re.sub(_USER_LABELLED[0], _py_repl(_USER_LABELLED[1]), text)
    text = re.sub(_USER_BARE, lambda m: "@" + users.get(m.group(1), m.group(1)), text)
    text = re.sub(_CHANNEL_LABELLED[0], _py_repl(_CHANNEL_LABELLED[1]), text)
    text = re.sub(_CHANNEL_BARE, lambda m: "#" + channels.get(m.group(1), m.group(1)), text)
    for pattern, template in _SPECIALS:
        text = re.sub(pattern, _py_repl(template), text)
    return re.sub("&lt;|&gt;|&amp;", lambda m: _ENTITIES[m.group(0)], text)


def _nonblank(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def attachments_text(attachments: Any) -> str:
    """pretext/title/text of each attachment (fallback when none), one block per attachment."""
    blocks = []
    for att in attachments if isinstance(attachments, list) else []:
        if not isinstance(att, dict):
            continue
        parts = [p for p in (_nonblank(att.get(k)) for k in ("pretext", "title", "text")) if p]
        block = "\n".join(parts) or (_nonblank(att.get("fallback")) or "")
        if block:
            blocks.append(block)
    return "\n".join(blocks)


def files_text(message: dict[str, Any]) -> str:
    files = message.get("files") if isinstance(message.get("files"), list) else []
    if isinstance(message.get("file"), dict):
        files = [*files, message["file"]]
    names = []
    for f in files:
        if isinstance(f, dict):
            name = _nonblank(f.get("title")) or _nonblank(f.get("name"))
            if name:
                names.append(f"[file] {name}")
    return "\n".join(names)


def message_raw_text(message: dict[str, Any]) -> str:
    return _nonblank(message.get("text")) or attachments_text(message.get("attachments")) or files_text(message)


def _reactions(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        return None
    out = []
    for r in value:
        if isinstance(r, dict):
            count = r.get("count")
            out.append({"name": r.get("name"), "count": count if isinstance(count, int) else None})
    return out


def _str_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def message_item(message: dict[str, Any], obj: BronzeObject, ctx: Any,
                 updated_at: dt.datetime | None = None) -> ContentItem | Reject | None:
    """One message dict -> item (None when its subtype is filtered)."""
    subtype = _str_or_none(message.get("subtype"))
    if subtype in FILTERED_SUBTYPES:
        _count_filtered(ctx, subtype)
        return None
    ts = _str_or_none(message.get("ts"))
    occurred = ts_to_datetime(ts)
    if ts is None or occurred is None:
        return Reject(reason=f"slack message without a valid ts ({message.get('ts')!r})", raw=obj.raw,
                      object_type=obj.object_type, external_id=obj.external_id)
    users = user_names(ctx)
    user = _str_or_none(message.get("user"))
    bot_id = _str_or_none(message.get("bot_id"))
    author_id = user or bot_id
    author = (users.get(user) if user else None) or _nonblank(message.get("username")) or author_id
    thread_ts = _str_or_none(message.get("thread_ts"))
    edited = message.get("edited") if isinstance(message.get("edited"), dict) else {}
    text = clean_mrkdwn(message_raw_text(message), users, channel_names(ctx))
    return ContentItem(
        resource_id=obj.resource_id,
        resource_name=obj.resource_name,
        external_id=ts,
        content_type="thread_reply" if thread_ts is not None and thread_ts != ts else "message",
        content=text,
        author=author,
        author_id=author_id,
        participants=[author_id] if author_id else [],
        thread_id=thread_ts,
        occurred_at=occurred,
        source_created_at=occurred,
        source_updated_at=updated_at or ts_to_datetime(edited.get("ts")),
        metadata={
            "user": user,
            "bot_id": bot_id,
            "ts": ts,
            "thread_ts": thread_ts,
            "reply_count": _int_or_none(message.get("reply_count")),
            "reactions": _reactions(message.get("reactions")),
            "subtype": subtype,
        },
    )


def normalize_slack_message(obj: BronzeObject, ctx: Any) -> Iterator[ContentItem | Reject]:
    try:
        message = json.loads(obj.raw)
    except ValueError as exc:
        yield Reject(reason=f"slack message is not valid JSON: {exc}", raw=obj.raw,
                     object_type=obj.object_type, external_id=obj.external_id)
        return
    if not isinstance(message, dict):
        yield Reject(reason=f"slack message is a JSON {type(message).__name__}, expected an object",
                     raw=obj.raw, object_type=obj.object_type, external_id=obj.external_id)
        return
    subtype = message.get("subtype")
    if subtype == "message_deleted":
        deleted_ts = _str_or_none(message.get("deleted_ts"))
        created = ts_to_datetime(deleted_ts)
        if deleted_ts is None or created is None:
            yield Reject(reason="message_deleted without a valid deleted_ts", raw=obj.raw,
                         object_type=obj.object_type, external_id=obj.external_id)
            return
        yield ContentItem(resource_id=obj.resource_id, resource_name=obj.resource_name, external_id=deleted_ts,
                          content_type="message", content="", occurred_at=created, source_created_at=created,
                          source_updated_at=ts_to_datetime(message.get("ts")), is_deleted=True,
                          metadata={"ts": deleted_ts, "deleted_by_event_ts": _str_or_none(message.get("ts"))})
        return
    if subtype == "message_changed":
        inner = message.get("message")
        if not isinstance(inner, dict):
            yield Reject(reason="message_changed without the changed message", raw=obj.raw,
                         object_type=obj.object_type, external_id=obj.external_id)
            return
        edited = inner.get("edited") if isinstance(inner.get("edited"), dict) else {}
        updated = ts_to_datetime(edited.get("ts")) or ts_to_datetime(message.get("ts"))
        out = message_item(inner, obj, ctx, updated_at=updated)
    else:
        out = message_item(message, obj, ctx)
    if out is not None:
        yield out


def normalize_api_message(obj: BronzeObject, ctx: Any) -> Iterator[ContentItem | Reject]:
    if obj.is_tombstone:
        when = ts_to_datetime(obj.external_id)
        yield ContentItem(resource_id=obj.resource_id, resource_name=obj.resource_name, external_id=obj.external_id,
                          content_type="message", content="", is_deleted=True,
                          occurred_at=when, source_created_at=when)
        return
    try:
        msg: Any = json.loads(obj.raw)
    except ValueError as exc:
        yield Reject(reason=f"slack message is not valid JSON: {exc}", raw=obj.raw,
                     object_type=obj.object_type, external_id=obj.external_id)
        return
    if not isinstance(msg, dict) or not msg.get("ts"):
        yield Reject(reason="slack message without ts", raw=obj.raw, object_type=obj.object_type,
                     external_id=obj.external_id)
        return
    if not msg.get("thread_ts") and obj.context.get("thread_ts"):
        msg = {**msg, "thread_ts": obj.context["thread_ts"]}
    item = message_item(msg, obj, ctx)
    if isinstance(item, ContentItem):
        item.metadata.update({"edited": (msg.get("edited") or {}).get("ts"),
                              "channel": obj.context.get("channel_name")})
    if item is not None:
        yield item


NORMALIZERS = {"slack_message": normalize_slack_message, "slack_api_message": normalize_api_message}
