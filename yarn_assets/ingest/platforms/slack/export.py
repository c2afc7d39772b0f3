"""Slack workspace export (the zip as downloaded, or its extracted folder) -> raw objects.

Layout (Slack "Export data"): ``users.json``, ``channels.json`` (plus ``groups.json``, ``dms.json``,
``mpims.json`` on paid plans), other workspace files (``integration_logs.json``, ``canvases.json``),
and one folder per conversation holding ``<YYYY-MM-DD>.json`` day files, each a JSON array of
messages. Every message becomes one ``slack_message`` object whose raw bytes are that message's
JSON exactly as it appears in the day file (sliced out by msgspec, never re-encoded); the
workspace files become context objects that the normalizer joins against.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from resources.input_limits import DEFAULT_LIMITS, InputLimits
from yarn_assets.ingest.archive import MEMBER_ERRORS, ExportArchive, Member
from yarn_assets.ingest.json_depth import json_deeper_than
from yarn_assets.ingest.objects import RawObject, Reject
from yarn_assets.ingest.platforms.slack.normalize import user_display_name

USER_FILES = {"users.json": "users", "org_users.json": "org_users"}
CHANNEL_FILES = {"channels.json": "channel", "groups.json": "group", "dms.json": "dm", "mpims.json": "mpim"}
DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")


def _export_roots(members: list[Member]) -> set[str]:
    """Folders holding the workspace files (exports are sometimes zipped inside a top folder)."""
    roots = {m.parent for m in members if m.name in USER_FILES or m.name in CHANNEL_FILES}
    if roots:
        return roots
    # No workspace files at all: the root is the folder above the conversation folders.
    return {str(Path(m.parent).parent.as_posix()) for m in members if DAY_FILE.match(m.name)} or {"."}


class _Head(msgspec.Struct):
    """The fields that give a message its identity (the rest of the JSON is skipped, not built)."""

    ts: str | int | float | None = None
    subtype: str | None = None
    deleted_ts: str | int | float | None = None
    message: msgspec.Raw | None = None


class _Target(msgspec.Struct):
    ts: str | int | float | None = None


_DAY_FILE = msgspec.json.Decoder(list[msgspec.Raw])
_HEAD = msgspec.json.Decoder(_Head)
_TARGET = msgspec.json.Decoder(_Target)


def _identity_fast(raw: bytes) -> tuple[str, bool] | None:
    """message_identity without building the message; None when the shape needs the full decode."""
    try:
        head = _HEAD.decode(raw)
    except msgspec.ValidationError:
        return None
    if head.subtype == "message_changed" and head.message is not None:
        try:
            target = _TARGET.decode(head.message).ts
        except msgspec.ValidationError:
            target = None
        if target not in (None, ""):
            return str(target), False
    if head.subtype == "message_deleted" and head.deleted_ts not in (None, ""):
        return str(head.deleted_ts), True
    if head.ts not in (None, ""):
        return str(head.ts), False
    return "sha256:" + hashlib.sha256(raw).hexdigest(), False


def message_identity(message: dict[str, Any], raw: bytes) -> tuple[str, bool]:
    """(external id, is tombstone): an edit or deletion event targets the message it changes."""
    subtype = message.get("subtype")
    if subtype == "message_changed" and isinstance(message.get("message"), dict) and message["message"].get("ts"):
        return str(message["message"]["ts"]), False
    if subtype == "message_deleted" and message.get("deleted_ts"):
        return str(message["deleted_ts"]), True
    ts = message.get("ts")
    if ts not in (None, ""):
        return str(ts), False
    return "sha256:" + hashlib.sha256(raw).hexdigest(), False


def _channel_index(objects: list[tuple[str, Any]], users: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Folder name -> conversation facts. Channels are exported under their name, DMs under their id
    (a DM has no name: it is called after its members)."""
    index: dict[str, dict[str, Any]] = {}
    for kind, data in objects:
        for conv in data if isinstance(data, list) else []:
            if not isinstance(conv, dict) or not conv.get("id"):
                continue
            name = conv.get("name")
            if not name and isinstance(conv.get("members"), list):
                members = list(dict.fromkeys(str(m) for m in conv["members"]))
                name = "dm: " + ", ".join(users.get(m, m) for m in members)
            facts = {
                "channel_id": str(conv["id"]),
                "channel_name": str(name or conv["id"]),
                "channel_kind": kind,
            }
            index.setdefault(str(conv["id"]), facts)
            if conv.get("name"):
                index.setdefault(str(conv["name"]), facts)
    return index


def _json(raw: bytes, limits: InputLimits) -> Any:
    """Parse a workspace file (users.json…) within the depth limit; ValueError says why not."""
    if json_deeper_than(raw, limits.import_max_json_depth):
        raise ValueError(f"nested deeper than {limits.named('import_max_json_depth')}")
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except RecursionError:
        raise ValueError("nested too deep for the JSON parser") from None


def read_slack_export(path: Path, limits: InputLimits | None = None) -> Iterator[RawObject | Reject]:
    limits = limits or DEFAULT_LIMITS
    with ExportArchive(path, limits) as archive:
        yield from _read(archive, limits)


def _read(archive: ExportArchive, limits: InputLimits) -> Iterator[RawObject | Reject]:
    sample = limits.import_reject_sample_bytes
    members = archive.members
    for location, reason in archive.bad:
        yield Reject(reason=reason, location=location)
    roots = _export_roots(members)
    channel_files: list[tuple[str, Any]] = []
    user_names: dict[str, str] = {}
    day_files: list[Member] = []
    not_slack = "not part of a Slack export (expected a JSON file)"

    for member in members:
        if member.parent not in roots and DAY_FILE.match(member.name):
            day_files.append(member)
            continue
        if not member.name.endswith(".json"):
            yield Reject(reason=not_slack, raw=member.head(sample), location=member.path)
            continue
        try:
            raw = member.read()
        except MEMBER_ERRORS as exc:
            yield Reject(reason=f"{member.name}: {exc}", raw=member.head(sample), location=member.path,
                         object_type="slack_export_meta")
            continue
        if member.parent not in roots:  # e.g. <channel>/canvas_in_the_conversation.json
            yield RawObject("slack_export_meta", member.path, raw, context={"file": member.path})
            continue
        try:
            data = _json(raw, limits)
        except (UnicodeDecodeError, ValueError) as exc:
            yield Reject(reason=f"{member.name} is not valid JSON: {exc}", raw=raw[:sample] if len(raw) > sample
                         else raw, location=member.path, object_type="slack_export_meta")
            continue
        if member.name in USER_FILES:
            for user in data if isinstance(data, list) else data.get("members", []) if isinstance(data, dict) else []:
                if isinstance(user, dict) and user.get("id") and (name := user_display_name(user)):
                    user_names[str(user["id"])] = name
            yield RawObject("slack_users", member.path, raw,
                            context={"file": member.path, "kind": USER_FILES[member.name]})
        elif member.name in CHANNEL_FILES:
            kind = CHANNEL_FILES[member.name]
            channel_files.append((kind, data))
            yield RawObject("slack_channels", member.path, raw, context={"file": member.path, "kind": kind})
        else:
            yield RawObject("slack_export_meta", member.path, raw, context={"file": member.path})

    channels = _channel_index(channel_files, user_names)
    landed = 0
    # Conversation folder, then day: the seq order is chronological per channel, so edits win.
    for member in sorted(day_files, key=lambda m: (m.parent, m.name)):
        folder = Path(member.parent).name
        facts = channels.get(folder) or {"channel_id": folder, "channel_name": folder, "channel_kind": "unknown"}
        try:
            raw = member.read()
        except MEMBER_ERRORS as exc:
            yield Reject(reason=f"day file {exc}", raw=member.head(sample), location=member.path,
                         object_type="slack_message")
            continue
        body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
        if json_deeper_than(body, limits.import_max_json_depth):
            yield Reject(reason=f"day file nests deeper than {limits.named('import_max_json_depth')}",
                         raw=raw[:sample], location=member.path, object_type="slack_message")
            continue
        try:
            parts = _DAY_FILE.decode(body)
        except msgspec.ValidationError:  # valid JSON, but not an array
            kind = type(msgspec.json.decode(body)).__name__
            yield Reject(reason=f"day file is a JSON {kind}, expected an array of messages",
                         raw=raw, location=member.path, object_type="slack_message")
            continue
        except msgspec.DecodeError as exc:
            yield Reject(reason=f"day file is not valid JSON: {exc}", raw=raw[:sample], location=member.path,
                         object_type="slack_message")
            continue
        except RecursionError:
            yield Reject(reason="day file nests too deep for the JSON parser", raw=raw[:sample],
                         location=member.path, object_type="slack_message")
            continue
        del raw, body  # the parts keep the buffer alive; the names need not
        context = {**facts, "file": member.path}
        for index, part in enumerate(parts):
            if landed >= limits.import_max_objects:
                yield Reject(reason=f"import stops at {limits.named('import_max_objects')} messages: "
                                    f"{member.path} from message #{index} on and the day files after it were "
                                    "not landed", location=member.path, object_type="slack_message")
                return
            msg_raw = bytes(part)
            identity = _identity_fast(msg_raw)
            if identity is None:
                message = json.loads(msg_raw)
                if not isinstance(message, dict):
                    yield Reject(reason=f"message #{index} is a JSON {type(message).__name__}, expected an object",
                                 raw=msg_raw, location=f"{member.path}#{index}", object_type="slack_message")
                    continue
                identity = message_identity(message, msg_raw)
            external_id, tombstone = identity
            landed += 1
            yield RawObject(
                object_type="slack_message",
                external_id=external_id,
                raw=msg_raw,
                resource_id=facts["channel_id"],
                resource_name=facts["channel_name"],
                context=context,
                is_tombstone=tombstone,
            )
