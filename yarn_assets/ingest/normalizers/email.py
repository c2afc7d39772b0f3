"""RFC 5322 / MIME messages (mbox, .eml, Gmail API ``format=raw``) -> email items."""

from __future__ import annotations

from collections.abc import Iterator

from yarn_assets.ingest.mime import parse_message
from yarn_assets.ingest.objects import BronzeObject, ContentItem, Reject


def normalize_email(obj: BronzeObject, ctx: object) -> Iterator[ContentItem | Reject]:
    parsed = parse_message(obj.raw)
    if not parsed.has_headers:
        yield Reject(reason="not an RFC 5322 message: no header block", raw=obj.raw,
                     object_type=obj.object_type, external_id=obj.external_id)
        return
    yield ContentItem(
        resource_id=obj.resource_id,
        resource_name=obj.resource_name,
        external_id=obj.external_id,
        content_type="email",
        content=parsed.body_text or parsed.subject or "",
        title=parsed.subject,
        author=parsed.from_display,
        author_id=parsed.from_address,
        participants=parsed.participants,
        thread_id=parsed.thread_id,
        occurred_at=parsed.date,
        source_created_at=parsed.date,
        metadata={
            "message_id": parsed.message_id,
            "subject": parsed.subject,
            "from": parsed.from_header,
            "to": parsed.to,
            "cc": parsed.cc,
            "date_header": parsed.date_header,
            "attachments": parsed.attachments,
            "body_source": parsed.body_source,
            **{k: v for k, v in obj.context.items() if k in ("label_ids", "labels", "gmail_id", "thread_id")},
        },
    )


NORMALIZERS = {"email_message": normalize_email}
