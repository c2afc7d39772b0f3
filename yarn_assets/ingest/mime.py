"""MIME parsing shared by the mbox/.eml importer and the Gmail API sync (``format=raw``).

Text extraction prefers ``text/plain``, falls back to HTML rendered to text, decodes the declared
charset and recovers from mis-declared or unknown ones (UTF-8, then Windows-1252, then Latin-1),
and decodes RFC 2047 encoded-word headers, including raw 8-bit header bytes.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import Message

from bs4 import BeautifulSoup

BODY_MAX_CHARS = 10_000
_FALLBACK_CHARSETS = ("utf-8", "windows-1252", "latin-1")


@dataclass
class ParsedEmail:
    has_headers: bool
    subject: str | None = None
    from_header: str | None = None
    from_display: str | None = None
    from_address: str | None = None
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    date_header: str | None = None
    date: dt.datetime | None = None
    message_id: str | None = None
    thread_id: str | None = None
    body_text: str = ""
    body_source: str = "none"  # text/plain | text/html | snippet | none
    attachments: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    @property
    def participants(self) -> list[str]:
        seen: dict[str, None] = {}
        for addr in [self.from_address, *self.to, *self.cc]:
            if addr:
                seen.setdefault(addr.lower(), None)
        return list(seen)


def decode_bytes(data: bytes, declared: str | None) -> str:
    """Decode with the declared charset when it works, else the first fallback that does."""
    candidates = [c for c in (declared, *_FALLBACK_CHARSETS) if c]
    for charset in candidates:
        try:
            text = data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
        if charset.lower() in ("us-ascii", "ascii") and any(b > 0x7F for b in data):
            continue
        return text
    return data.decode("utf-8", errors="replace")


def decode_header_value(value: object) -> str | None:
    """Decode encoded-words and stray 8-bit bytes in a header to text."""
    if value is None:
        return None
    text = str(value)
    try:
        parts = decode_header(text)
        out = []
        for chunk, charset in parts:
            if isinstance(chunk, bytes):
                out.append(decode_bytes(chunk, charset))
            else:
                out.append(chunk)
        decoded = "".join(out) if any(isinstance(c, bytes) for c, _ in parts) else str(make_header(parts))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        decoded = text
    decoded = _recover_surrogates(decoded)
    return re.sub(r"\s+", " ", decoded).strip()


def _recover_surrogates(text: str) -> str:
    """compat32 keeps undecodable header bytes as surrogates; turn them back into text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    raw = text.encode("utf-8", errors="surrogateescape")
    return decode_bytes(raw, None)


def html_to_text(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "head", "title"]):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    text = soup.get_text("\n")
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        inner = part.get_payload()
        return inner if isinstance(inner, str) else ""
    assert isinstance(payload, bytes)
    return decode_bytes(payload, part.get_content_charset())


def _walk_leaves(msg: Message) -> list[Message]:
    if msg.is_multipart():
        leaves: list[Message] = []
        payload = msg.get_payload()
        for sub in payload if isinstance(payload, list) else []:
            if isinstance(sub, Message):
                leaves.extend(_walk_leaves(sub))
        return leaves
    return [msg]


def _is_attachment(part: Message) -> bool:
    disposition = (part.get("Content-Disposition") or "").lower()
    return disposition.startswith("attachment") or (
        bool(part.get_filename()) and not part.get_content_type().startswith("text/")
    )


def _addresses(values: list[str]) -> list[str]:
    decoded = [decode_header_value(v) or "" for v in values]
    return [addr for _name, addr in email.utils.getaddresses(decoded) if addr]


def parse_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:  # RFC 5322 "-0000": time is UTC with unknown local zone
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def parse_message(raw: bytes) -> ParsedEmail:
    msg = message_from_bytes(raw, policy=policy.compat32)
    has_headers = bool(msg.keys())
    if not has_headers:
        return ParsedEmail(has_headers=False)

    plain: list[str] = []
    html: list[str] = []
    attachments: list[str] = []
    for part in _walk_leaves(msg):
        ctype = part.get_content_type()
        if _is_attachment(part):
            attachments.append(decode_header_value(part.get_filename()) or ctype)
            continue
        if ctype == "text/plain":
            plain.append(_part_text(part))
        elif ctype == "text/html":
            html.append(_part_text(part))
        elif (ctype == "message/rfc822" or part.get_content_maintype() != "text") and part.get_filename():
            attachments.append(decode_header_value(part.get_filename()) or ctype)

    if any(p.strip() for p in plain):
        body, source = "\n\n".join(p.strip() for p in plain if p.strip()), "text/plain"
    elif any(h.strip() for h in html):
        body, source = "\n\n".join(html_to_text(h) for h in html if h.strip()), "text/html"
    else:
        body, source = "", "none"
    body = body.replace("\r\n", "\n").replace("\r", "\n").strip()

    from_header = decode_header_value(msg.get("From"))
    from_pairs = email.utils.getaddresses([from_header or ""])
    from_display, from_address = (from_pairs[0] if from_pairs else ("", ""))
    message_id = (msg.get("Message-ID") or msg.get("Message-Id") or "").strip().strip("<>").strip() or None
    refs = (msg.get("References") or "").split()
    in_reply_to = (msg.get("In-Reply-To") or "").strip()
    thread_root = refs[0] if refs else (in_reply_to or message_id or "")
    thread_id = msg.get("X-GM-THRID") or (
        "sha1:" + hashlib.sha1(thread_root.strip("<>").encode()).hexdigest()[:16] if thread_root else None
    )
    date_header = decode_header_value(msg.get("Date"))
    return ParsedEmail(
        has_headers=True,
        subject=decode_header_value(msg.get("Subject")),
        from_header=from_header,
        from_display=from_display or from_address or None,
        from_address=(from_address or None) and from_address.lower(),
        to=[a.lower() for a in _addresses(msg.get_all("To") or [])],
        cc=[a.lower() for a in _addresses(msg.get_all("Cc") or [])],
        date_header=date_header,
        date=parse_date(date_header),
        message_id=message_id,
        thread_id=thread_id,
        body_text=body[:BODY_MAX_CHARS * 4],
        body_source=source,
        attachments=attachments,
        defects=[type(d).__name__ for d in getattr(msg, "defects", [])],
    )
