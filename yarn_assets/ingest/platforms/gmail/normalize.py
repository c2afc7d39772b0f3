"""RFC 5322 / MIME messages (mbox, .eml, Gmail API ``format=raw``) -> email items.

Messages from an mbox have their ``>From `` quoting undone before parsing (bronze keeps the bytes
as written). ``occurred_at`` is the Date header in UTC; when it is missing or invalid (hour 27 happens), the
topmost Received header, then the mbox envelope (``From `` line) date, so a message is still
placed in time and its ``created_day`` stays stable across re-imports.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from yarn_assets.ingest.mime import parse_message
from yarn_assets.ingest.objects import BronzeObject, ContentItem, Reject

#: context keys the readers/sync may set that are worth keeping on the item
_CONTEXT_KEYS = ("label_ids", "labels", "gmail_id", "thread_id", "file", "index")


def _context_date(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


#: mboxrd quotes a body line ``From `` as ``>From `` and ``>From `` as ``>>From ``; mboxo quotes once
_FROM_QUOTED = re.compile(rb"^>(>*From )", re.MULTILINE)


def unquote_mbox_from(raw: bytes) -> bytes:
    """Undo mbox From-quoting: one ``>`` off every line that starts with ``>…>From `` (mboxrd; for
    mboxo, which only ever adds one, the same rule gives the text back)."""
    return _FROM_QUOTED.sub(rb"\1", raw) if b">From " in raw else raw


def normalize_email(obj: BronzeObject, ctx: object) -> Iterator[ContentItem | Reject]:
    # bronze keeps the bytes as written; the quoting is the mbox format's, not the author's text
    parsed = parse_message(unquote_mbox_from(obj.raw) if obj.provider == "mbox" else obj.raw)
    if not parsed.has_headers:
        yield Reject(reason="not an RFC 5322 message: no header block", raw=obj.raw,
                     object_type=obj.object_type, external_id=obj.external_id)
        return
    date_source = "date_header"
    occurred = parsed.date
    if occurred is None and parsed.received_date is not None:
        occurred, date_source = parsed.received_date, "received_header"
    if occurred is None and (envelope := _context_date(obj.context.get("envelope_date"))) is not None:
        occurred, date_source = envelope, "mbox_envelope"
    if occurred is None:
        date_source = "none"
    body, body_source = parsed.body_text, parsed.body_source
    if not body and isinstance(obj.context.get("snippet"), str):  # Gmail API: the snippet beats nothing
        body, body_source = obj.context["snippet"], "snippet"
    yield ContentItem(
        resource_id=obj.resource_id,
        resource_name=obj.resource_name,
        external_id=obj.external_id,
        content_type="email",
        content=body or parsed.subject or "",
        title=parsed.subject,
        author=parsed.from_display,
        author_id=parsed.from_address,
        participants=parsed.participants,
        thread_id=obj.context.get("thread_id") or parsed.thread_id,
        occurred_at=occurred,
        source_created_at=occurred,
        metadata={
            "message_id": parsed.message_id,
            "in_reply_to": parsed.in_reply_to,
            "subject": parsed.subject,
            "from": parsed.from_header,
            "to": parsed.to,
            "cc": parsed.cc,
            "date_header": parsed.date_header,
            "date_source": date_source,
            "attachments": parsed.attachments,
            "body_source": body_source,
            "defects": parsed.defects,
            **({"labels": parsed.labels} if parsed.labels else {}),
            **{k: v for k, v in obj.context.items() if k in _CONTEXT_KEYS},
        },
    )


NORMALIZERS = {"email_message": normalize_email}
