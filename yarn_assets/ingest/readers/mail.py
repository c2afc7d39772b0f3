"""mbox and .eml readers: one raw RFC 5322 message per object, bytes untouched."""

from __future__ import annotations

import hashlib
import mailbox
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

from yarn_assets.ingest.objects import RawObject, Reject


def message_external_id(raw: bytes) -> str:
    """Message-ID when present (stable across mbox, .eml and the Gmail API), else a content hash."""
    try:
        msg = message_from_bytes(raw, policy=policy.compat32)
        mid = msg.get("Message-ID") or msg.get("Message-Id")
    except Exception:
        mid = None
    if mid:
        mid = str(mid).strip().strip("<>").strip()
    return mid or "sha256:" + hashlib.sha256(raw).hexdigest()


def read_eml(path: Path) -> Iterator[RawObject | Reject]:
    raw = path.read_bytes()
    if not raw.strip():
        yield Reject(reason="empty message file", raw=raw, location=path.name, object_type="email_message")
        return
    yield RawObject(
        object_type="email_message",
        external_id=message_external_id(raw),
        raw=raw,
        resource_id=f"file:{path.name}",
        resource_name=path.name,
        context={"file": path.name},
    )


def read_mbox(path: Path) -> Iterator[RawObject | Reject]:
    box = mailbox.mbox(str(path), factory=None, create=False)
    label = path.stem
    try:
        for index, key in enumerate(box.iterkeys()):
            try:
                raw = box.get_bytes(key)
            except Exception as exc:
                yield Reject(reason=f"unreadable mbox entry: {exc}", location=f"{path.name}#{index}")
                continue
            yield RawObject(
                object_type="email_message",
                external_id=message_external_id(raw),
                raw=raw,
                resource_id=f"label:{label}",
                resource_name=label,
                context={"file": path.name, "index": index},
            )
    finally:
        box.close()
