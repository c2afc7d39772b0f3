"""MIME parsing shared by the mbox/.eml importer and the Gmail API sync (``format=raw``).

Text extraction prefers ``text/plain`` and falls back to HTML rendered to text. Charsets: the
declared one is used when it decodes; ``us-ascii``/``iso-8859-1`` labels are read as Windows-1252
(what every mail client does: those bytes 0x80–0x9F are "…", "€", curly quotes) unless the bytes
are valid UTF-8 (the most common mis-declaration); an unknown, missing or wrong label falls back
to UTF-8 with each undecodable byte read as Windows-1252, so one stray byte never turns a whole
line into mojibake. Headers: RFC 2047 encoded-words, and raw 8-bit header bytes with the same
fallback. Broken structure is recovered: a multipart whose opening boundary does not match its
header is split on its delimiter lines; a missing final boundary is tolerated. Attachments
(including forwarded ``message/rfc822`` parts with a name) are listed, never inlined.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import email.errors
import email.utils
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from email import message_from_bytes, message_from_string, policy
from email.header import decode_header
from email.message import Message

from bs4 import BeautifulSoup

BODY_MAX_CHARS = 10_000
_LATIN1_LABELS = {"ascii", "latin_1", "iso8859_1", "cp1252"}


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: undecodable bytes are read as Windows-1252 (Latin-1 for its 5 holes)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    chunk = exc.object[exc.start:exc.end]
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in chunk), exc.end


codecs.register_error("yarnnn.cp1252", _cp1252_fallback)


def _codec_name(label: str | None) -> str | None:
    if not label:
        return None
    try:
        return codecs.lookup(label.strip().strip('"').lower()).name.replace("-", "_")
    except LookupError:
        return None


def decode_bytes(data: bytes, declared: str | None) -> str:
    """Bytes -> text: the declared charset when it is right, else the best reading (see module doc)."""
    codec = _codec_name(declared)
    if codec in _LATIN1_LABELS:
        if any(b > 0x7F for b in data):
            try:
                return data.decode("utf-8")  # labelled Latin-1/ASCII but really UTF-8
            except UnicodeDecodeError:
                return data.decode("cp1252", errors="yarnnn.cp1252")
        return data.decode("ascii")
    if codec is not None:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    return data.decode("utf-8", errors="yarnnn.cp1252")


def decode_header_value(value: object) -> str | None:
    """A header (str, or compat32's Header for raw 8-bit bytes) -> text, encoded-words decoded."""
    if value is None:
        return None
    if isinstance(value, str):
        value = _recover_surrogates(value)
    try:
        parts = decode_header(value)  # type: ignore[arg-type]
    except (email.errors.HeaderParseError, ValueError, LookupError):
        parts = [(str(value), None)]
    # Unencoded chunks keep their surrounding whitespace; whitespace between two encoded-words is
    # dropped by decode_header, as RFC 2047 requires, so the chunks join with "".
    text = "".join(decode_bytes(c, cs) if isinstance(c, bytes) else c for c, cs in parts)
    return re.sub(r"\s+", " ", text).strip()


def _recover_surrogates(text: str) -> str:
    """Parsers keep undecodable header bytes as surrogates; turn them back into text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return decode_bytes(text.encode("utf-8", errors="surrogateescape"), None)


_BLOCK_TAGS = [
    "address", "article", "aside", "blockquote", "dd", "details", "div", "dl", "dt", "figcaption", "figure",
    "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
    "section", "summary", "table", "td", "th", "tr", "ul",
]


def html_to_text(html: str) -> str:
    """HTML -> text with line breaks where the browser would break lines (blocks, <br>), not at
    every inline tag; source whitespace collapses as in a browser (except inside <pre>)."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "head", "title", "template"]):
        tag.decompose()
    for text in soup.find_all(string=True):
        if text.find_parent("pre") is None:
            text.replace_with(re.sub(r"\s+", " ", str(text)))
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    text = unicodedata.normalize("NFC", soup.get_text(""))  # composed accents, as other sources send them
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


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
    received_date: dt.datetime | None = None  # topmost Received: when the Date header is missing/bad
    message_id: str | None = None
    in_reply_to: str | None = None
    thread_id: str | None = None
    labels: list[str] = field(default_factory=list)  # Gmail Takeout X-Gmail-Labels
    body_text: str = ""
    body_source: str = "none"  # text/plain | text/html | mixed (both, in a multipart/mixed) | none
    attachments: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    @property
    def participants(self) -> list[str]:
        seen: dict[str, None] = {}
        for addr in [self.from_address, *self.to, *self.cc]:
            if addr:
                seen.setdefault(addr.lower(), None)
        return list(seen)


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        inner = part.get_payload()
        return inner if isinstance(inner, str) else ""
    assert isinstance(payload, bytes)
    cte = (part.get("Content-Transfer-Encoding") or "").strip().lower()
    if cte == "base64" and any(isinstance(d, email.errors.InvalidBase64CharactersDefect | email.errors.
                                          InvalidBase64LengthDefect | email.errors.InvalidBase64PaddingDefect)
                               for d in part.defects):
        raw = part.get_payload()
        if isinstance(raw, str) and not re.fullmatch(r"[A-Za-z0-9+/=\s]*", raw.strip()):
            payload = raw.encode("utf-8", errors="surrogateescape")  # declared base64, really plain text
    return decode_bytes(payload, part.get_content_charset())


def _is_attachment(part: Message) -> bool:
    disposition = str(part.get("Content-Disposition") or "").lower()
    if disposition.startswith("attachment"):
        return True
    ctype = part.get_content_type()
    return bool(part.get_filename()) and (not ctype.startswith("text/") or ctype == "message/rfc822")


def _recovered_parts(part: Message) -> list[Message]:
    """A multipart whose boundary did not match: split its text on delimiter-looking lines."""
    text = part.get_payload()
    if not isinstance(text, str):
        return []
    out = []
    for chunk in re.split(r"(?m)^--\S*[ \t]*\r?$", text):
        chunk = chunk.lstrip("\r\n")
        if not chunk.strip():
            continue
        sub = message_from_string(chunk, policy=policy.compat32)
        if not sub.keys():  # no header block: plain text between delimiters
            sub = message_from_string("Content-Type: text/plain\n\n" + chunk, policy=policy.compat32)
        out.append(sub)
    return out


def _children(msg: Message) -> list[Message]:
    if msg.is_multipart():
        payload = msg.get_payload()
        return [p for p in (payload if isinstance(payload, list) else []) if isinstance(p, Message)]
    if msg.get_content_maintype() == "multipart":
        return _recovered_parts(msg)
    return []


def _body_parts(msg: Message, attachments: list[str]) -> list[tuple[str, str]]:
    """(text, source) blocks in reading order; alternatives resolved to text/plain when offered."""
    ctype = msg.get_content_type()
    if _is_attachment(msg):
        attachments.append(decode_header_value(msg.get_filename()) or ctype)
        return []
    if msg.get_content_maintype() == "multipart" or ctype == "message/rfc822":
        children = [_body_parts(child, attachments) for child in _children(msg)]
        children = [c for c in children if any(text.strip() for text, _ in c)]
        if ctype == "multipart/alternative" and children:
            plain = [c for c in children if all(source == "text/plain" for _, source in c)]
            return (plain or children)[0]
        return [block for child in children for block in child]
    if ctype == "text/plain":
        return [(_part_text(msg), "text/plain")]
    if ctype == "text/html":
        return [(html_to_text(_part_text(msg)), "text/html")]
    return []  # inline images, calendars, unknown text/* subtypes


def _addresses(values: list[object]) -> list[str]:
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


def gmail_thread_id(thrid: object) -> str | None:
    """Takeout's decimal X-GM-THRID -> the hex thread id the Gmail API uses for the same thread."""
    text = str(thrid or "").strip()
    if text.isdigit():
        return format(int(text), "x")
    return text or None


def split_labels(value: str | None) -> list[str]:
    """``X-Gmail-Labels: Inbox,Important,"Work, 2024"`` -> labels (quoted labels may hold commas)."""
    if not value:
        return []
    row = next(csv.reader([value], skipinitialspace=True), [])
    return [label.strip() for label in row if label.strip()]


def parse_message(raw: bytes) -> ParsedEmail:
    msg = message_from_bytes(raw, policy=policy.compat32)
    has_headers = bool(msg.keys())
    if not has_headers:
        return ParsedEmail(has_headers=False)

    attachments: list[str] = []
    blocks = [(text.strip(), source) for text, source in _body_parts(msg, attachments) if text.strip()]
    body = "\n\n".join(text for text, _ in blocks).replace("\r\n", "\n").replace("\r", "\n").strip()
    sources = {source for _, source in blocks}
    source = "none" if not sources else sources.pop() if len(sources) == 1 else "mixed"

    from_header = decode_header_value(msg.get("From"))
    from_pairs = email.utils.getaddresses([from_header or ""])
    from_display, from_address = (from_pairs[0] if from_pairs else ("", ""))
    message_id = (decode_header_value(msg.get("Message-ID") or msg.get("Message-Id")) or "").strip("<> ") or None
    refs = (decode_header_value(msg.get("References")) or "").split()
    in_reply_to = (decode_header_value(msg.get("In-Reply-To")) or "").strip() or None
    thread_root = refs[0] if refs else (in_reply_to or message_id or "")
    thread_id = gmail_thread_id(msg.get("X-GM-THRID")) or (
        "sha1:" + hashlib.sha1(thread_root.strip("<>").encode()).hexdigest()[:16] if thread_root else None
    )
    date_header = decode_header_value(msg.get("Date"))
    received = msg.get_all("Received") or []
    received_date = parse_date(str(received[0]).rsplit(";", 1)[-1].strip()) if received else None
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
        received_date=received_date,
        message_id=message_id,
        in_reply_to=in_reply_to and in_reply_to.strip("<>"),
        thread_id=thread_id,
        labels=split_labels(decode_header_value(msg.get("X-Gmail-Labels"))),
        body_text=body[: BODY_MAX_CHARS * 4],
        body_source=source,
        attachments=attachments,
        defects=sorted({type(d).__name__ for p in msg.walk() for d in getattr(p, "defects", [])}),
    )

