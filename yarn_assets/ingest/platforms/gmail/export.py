"""mbox (incl. Gmail Takeout) and .eml readers: one raw RFC 5322 message per object, bytes untouched.

Gmail Takeout writes one mbox whose messages carry ``X-Gmail-Labels`` and ``X-GM-THRID``. The
labels decide the resource (``label:INBOX``, ``label:SENT``, ``label:<user label>``) with system
labels spelled as the Gmail API spells their ids, so a message imported from Takeout and the same
message fetched by the API land on the same silver key. Without labels the mbox file is the label.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from resources.input_limits import DEFAULT_LIMITS, InputLimits
from yarn_assets.ingest.archive import LINE_PIECE, open_regular, sample_bytes
from yarn_assets.ingest.mime import decode_header_value, gmail_thread_id, split_labels
from yarn_assets.ingest.objects import RawObject, Reject

#: Takeout label name (lower case) -> Gmail API label id; None = a state, not a place.
SYSTEM_LABELS: dict[str, str | None] = {
    "inbox": "INBOX", "sent": "SENT", "starred": "STARRED", "important": "IMPORTANT", "drafts": "DRAFT",
    "draft": "DRAFT", "spam": "SPAM", "trash": "TRASH", "unread": "UNREAD", "chat": "CHAT",
    "category updates": "CATEGORY_UPDATES", "category promotions": "CATEGORY_PROMOTIONS",
    "category social": "CATEGORY_SOCIAL", "category forums": "CATEGORY_FORUMS",
    "category personal": "CATEGORY_PERSONAL", "opened": None, "archived": None,
}
#: Which label is "the" resource of a message that has several (the original's selection order).
_PRIMARY = ("INBOX", "SENT")
_SECONDARY = ("IMPORTANT", "STARRED")
_NOT_RESOURCES = {"UNREAD", "SPAM", "TRASH", "DRAFT", "CHAT"}
_ENVELOPE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\w{3}) +(\d{1,2}) (\d{1,2}):(\d{2}):(\d{2}) (?:([+-]\d{4}) )?(\d{4})"
)
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}  # noqa: SIM905


def message_external_id(raw: bytes) -> str:
    """Message-ID when present (stable across mbox, .eml and the Gmail API), else a content hash."""
    try:
        msg = message_from_bytes(raw, policy=policy.compat32)
        mid = decode_header_value(msg.get("Message-ID") or msg.get("Message-Id"))
    except Exception:
        mid = None
    if mid:
        mid = mid.strip().strip("<>").strip()
    return mid or "sha256:" + hashlib.sha256(raw).hexdigest()


def envelope_date(from_line: str) -> dt.datetime | None:
    """mbox ``From sender Sun Aug  7 11:40:37 2022`` (Takeout adds ``+0000``) -> UTC datetime."""
    match = _ENVELOPE.search(from_line)
    if not match or match.group(1) not in _MONTHS:
        return None
    month, day, hh, mm, ss, offset, year = match.groups()
    try:
        value = dt.datetime(int(year), _MONTHS[month], int(day), int(hh), int(mm), int(ss), tzinfo=dt.UTC)
    except ValueError:
        return None
    if offset:
        sign = 1 if offset[0] == "+" else -1
        value -= sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    return value


def label_resource(labels: list[str]) -> tuple[str, str, list[str]] | None:
    """Takeout labels -> (resource id, resource name, all label ids), or None without labels."""
    if not labels:
        return None
    ids: list[str] = []
    names: dict[str, str] = {}
    for label in labels:
        key = label.lower()
        label_id = SYSTEM_LABELS.get(key, label)
        if label_id is not None and label_id not in names:
            ids.append(label_id)
            names[label_id] = label
    system_ids = {v for v in SYSTEM_LABELS.values() if v}
    order = [
        *(i for i in _PRIMARY if i in names),
        *(i for i in ids if i not in system_ids),  # user labels
        *(i for i in _SECONDARY if i in names),
        *(i for i in ids if i not in _NOT_RESOURCES),  # categories
    ]
    if order:
        return f"label:{order[0]}", names[order[0]], ids
    return "label:ARCHIVED", "Archived", ids


def _takeout_facts(raw: bytes) -> dict[str, Any]:
    """Labels, thread and message ids from the header block only (cheap)."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
    facts: dict[str, Any] = {}
    labels = split_labels(decode_header_value(headers.get("X-Gmail-Labels")))
    if labels:
        facts["labels"] = labels
    if headers.get("X-GM-THRID"):
        facts["thread_id"] = gmail_thread_id(headers.get("X-GM-THRID"))
    return facts


def _message_object(raw: bytes, *, default_resource: tuple[str, str], context: dict[str, Any]) -> RawObject:
    facts = _takeout_facts(raw)
    resource_id, resource_name = default_resource
    placed = label_resource(facts.get("labels", []))
    if placed is not None:
        resource_id, resource_name, facts["label_ids"] = placed
    return RawObject(
        object_type="email_message",
        external_id=message_external_id(raw),
        raw=raw,
        resource_id=resource_id,
        resource_name=resource_name,
        context={**context, **facts},
    )


def _too_big(path: Path, size: int, limit_name: str, limits: InputLimits, what: str) -> Reject:
    return Reject(reason=f"{what} of {size} bytes exceeds {limits.named(limit_name)}; not read",
                  raw=sample_bytes(path, limits.import_reject_sample_bytes), location=path.name,
                  object_type="email_message")


def read_eml(path: Path, limits: InputLimits | None = None) -> Iterator[RawObject | Reject]:
    limits = limits or DEFAULT_LIMITS
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limits.import_max_message_bytes:
            yield _too_big(path, size, "import_max_message_bytes", limits, "message file")
            return
        raw = fh.read(limits.import_max_message_bytes + 1)
    if len(raw) > limits.import_max_message_bytes:  # grew while we looked
        yield _too_big(path, len(raw), "import_max_message_bytes", limits, "message file")
        return
    if not raw.strip():
        yield Reject(reason="empty message file", raw=raw, location=path.name, object_type="email_message")
        return
    yield _message_object(raw, default_resource=(f"file:{path.name}", path.name), context={"file": path.name})


def is_envelope_line(line: bytes) -> bool:
    """A real mbox separator carries an asctime date ("From time to time" in a body does not)."""
    return line.startswith(b"From ") and envelope_date(line[:1024].decode("ascii", errors="replace")) is not None


def iter_mbox(path: Path, limits: InputLimits | None = None) -> Iterator[tuple[bytes, bytes, int]]:
    """(From_ line, message bytes, message size) per message; streams, in bounded pieces.

    Unlike ``mailbox.mbox`` it splits only on ``From `` lines that carry an envelope date and
    follow a blank line, so an unescaped "From time to time" in a body stays in the body
    (the mboxo ambiguity). Message bytes are kept as written (``>From`` unquoting is silver's job).
    A message over ``import_max_message_bytes`` comes back as its first
    ``import_reject_sample_bytes`` only, with its real size, and is never held whole.
    """
    limits = limits or DEFAULT_LIMITS
    cap, sample = limits.import_max_message_bytes, limits.import_reject_sample_bytes
    from_line: bytes | None = None
    lines: list[bytes] = []
    size = 0
    head = b""
    previous_blank = True
    line_start = True
    with open_regular(path) as fh:
        while piece := fh.readline(LINE_PIECE):
            if line_start and previous_blank and is_envelope_line(piece):
                if from_line is not None:
                    yield from_line, (_strip_separator_blank(lines) if size <= cap else head), size
                from_line, lines, size, head = piece.rstrip(b"\r\n")[:4096], [], 0, b""
            else:
                size += len(piece)
                if size <= cap:
                    lines.append(piece)
                elif lines:  # over the cap: keep a sample, drop the rest as it streams by
                    head = b"".join(lines)[:sample]
                    lines = []
            previous_blank = line_start and piece.strip() == b""
            line_start = piece.endswith(b"\n")
    if from_line is not None:
        yield from_line, (_strip_separator_blank(lines) if size <= cap else head), size


def _strip_separator_blank(lines: list[bytes]) -> bytes:
    """The blank line before the next From_ belongs to the mbox format, not to the message."""
    if lines and lines[-1].strip() == b"":
        lines = lines[:-1]
    return b"".join(lines)


def read_mbox(path: Path, limits: InputLimits | None = None) -> Iterator[RawObject | Reject]:
    limits = limits or DEFAULT_LIMITS
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        first = fh.readline(LINE_PIECE)
    if size > limits.import_max_total_bytes:
        yield _too_big(path, size, "import_max_total_bytes", limits, "mbox file")
        return
    if not is_envelope_line(first):
        yield Reject(reason="not an mbox file: the first line is not a 'From <sender> <date>' separator",
                     raw=sample_bytes(path, limits.import_reject_sample_bytes), location=path.name,
                     object_type="email_message")
        return
    label = path.stem
    landed = 0
    for index, (from_line, raw, msg_size) in enumerate(iter_mbox(path, limits)):
        location = f"{path.name}#{index}"
        if msg_size > limits.import_max_message_bytes:
            yield Reject(reason=f"message of {msg_size} bytes exceeds {limits.named('import_max_message_bytes')}",
                         raw=from_line + b"\n" + raw, location=location, object_type="email_message")
            continue
        if not raw.strip():
            yield Reject(reason="empty mbox entry", raw=from_line, location=location, object_type="email_message")
            continue
        if landed >= limits.import_max_objects:
            yield Reject(reason=f"import stops at {limits.named('import_max_objects')} messages: message #{index} "
                                "and the messages after it were not landed", location=location,
                         object_type="email_message")
            return
        context: dict[str, Any] = {"file": path.name, "index": index}
        envelope = envelope_date(from_line.decode("ascii", errors="replace"))
        if envelope is not None:
            context["envelope_date"] = envelope.isoformat()
        takeout_id = re.match(rb"From (\d+)@xxx ", from_line)
        if takeout_id:  # Takeout: "From <X-GM-MSGID>@xxx ..." -> the API's hex message id
            context["gmail_id"] = format(int(takeout_id.group(1)), "x")
        landed += 1
        yield _message_object(raw, default_resource=(f"label:{label}", label), context=context)
