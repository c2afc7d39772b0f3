"""Hostile export files, generated on the fly (nothing of this size is committed).

Each generator writes into a folder the test owns; sizes are the uncompressed sizes the file
claims or holds, the files on disk stay small (zip bombs) or sparse (long lines).
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

GiB = 1 << 30
MiB = 1 << 20

SLACK_USERS = b'[{"id": "U1", "name": "ann", "real_name": "Ann"}]'
SLACK_CHANNELS = b'[{"id": "C1", "name": "general"}]'
SLACK_DAY = b'[{"type": "message", "user": "U1", "text": "hello", "ts": "1767225600.000100"}]'
NOTION_PAGE = "Plans 0123456789abcdef0123456789abcdef.md"


def _spaces_json(fh: object, size: int) -> None:
    """A JSON array of ``size`` bytes: ``[`` + spaces + ``]`` (valid: it parses to ``[]``)."""
    write = fh.write  # type: ignore[attr-defined]
    write(b"[")
    left = size - 2
    chunk = b" " * MiB
    while left > 0:
        n = min(left, MiB)
        write(chunk[:n])
        left -= n
    write(b"]")


def slack_export(path: Path, *, bomb_bytes: int = GiB, name: str = "general/2026-01-02.json") -> Path:
    """A Slack export zip whose one day file holds ``bomb_bytes`` (1 GiB compresses to ~1 MB)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("users.json", SLACK_USERS)
        zf.writestr("channels.json", SLACK_CHANNELS)
        zf.writestr("general/2026-01-01.json", SLACK_DAY)
        with zf.open(name, "w") as fh:
            _spaces_json(fh, bomb_bytes)
    return path


def lie_about_size(path: Path, member: str, declared: int) -> Path:
    """Patch ``member``'s uncompressed size in the central directory and its local header."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        cd_offset = zf.start_dir  # type: ignore[attr-defined]
    struct.pack_into("<L", data, info.header_offset + 22, declared)  # local header: uncompressed size
    pos = cd_offset
    while data[pos:pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<3H", data, pos + 28)
        if data[pos + 46:pos + 46 + name_len].decode() == member:
            struct.pack_into("<L", data, pos + 24, declared)
        pos += 46 + name_len + extra_len + comment_len
    path.write_bytes(bytes(data))
    return path


def notion_zip_in_zip(path: Path, work: Path, *, bomb_bytes: int = GiB) -> Path:
    """Notion's zip of ``Export-…-Part-N.zip``: Part-1 holds a page of ``bomb_bytes`` (the whole file
    is ~2 KB: the inner zip's deflate stream is itself repetitive), Part-2 one ordinary page."""
    bomb = work / "Export-Part-1.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open(f"Export/Huge {'f' * 32}.md", "w") as fh:
        _spaces_json(fh, bomb_bytes)
    good = work / "Export-Part-2.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"Export/{NOTION_PAGE}", "# Plans\n\nShip the importer.\n")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.write(bomb, "Export-Part-1.zip")
        zf.write(good, "Export-Part-2.zip")
    return path


def nested_zips(path: Path, depth: int) -> Path:
    """A zip holding a zip holding a zip… ``depth`` levels, a page at the bottom, one page on top."""
    import io

    blob = b""
    for level in range(depth, 0, -1):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            if blob:
                zf.writestr(f"level-{level + 1}.zip", blob)
            else:
                zf.writestr(f"Deep {'d' * 32}.md", "# Deep\n")
            if level == 1:
                zf.writestr(NOTION_PAGE, "# Plans\n\nOn top.\n")
        blob = buf.getvalue()
    path.write_bytes(blob)
    return path


def many_members(path: Path, n: int) -> Path:
    """A Slack export with ``n`` tiny day files (stored, so the zip is ~100 bytes a member)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("users.json", SLACK_USERS)
        zf.writestr("channels.json", SLACK_CHANNELS)
        for i in range(n):
            zf.writestr(zipfile.ZipInfo(f"general/{i:06d}.json"), b"[]")
    return path


def lie_about_count(path: Path, declared: int) -> Path:
    """Patch the end-of-central-directory record's entry counts."""
    data = bytearray(path.read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, eocd + 8, declared, declared)
    path.write_bytes(bytes(data))
    return path


NEVER_ENDING_ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hostile//EN\r\n"
    "BEGIN:VEVENT\r\nUID:every-second\r\nDTSTART:20000101T000000Z\r\nDURATION:PT1S\r\n"
    "RRULE:FREQ=SECONDLY\r\nSUMMARY:every second since 2000\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:every-minute\r\nDTSTART:20000101T000000Z\r\nDURATION:PT1M\r\n"
    "RRULE:FREQ=MINUTELY\r\nSUMMARY:every minute since 2000\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:never-matches\r\nDTSTART:20000101T000000Z\r\n"
    "RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30\r\nSUMMARY:February 30th\r\nEND:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:huge-count\r\nDTSTART:20000101T000000Z\r\n"
    "RRULE:FREQ=SECONDLY;COUNT=2000000000\r\nSUMMARY:two billion\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def never_ending_ics(path: Path) -> Path:
    path.write_text(NEVER_ENDING_ICS)
    return path


def mbox_with_endless_line(path: Path, size: int) -> Path:
    """An mbox whose first message's body is one line of ``size`` bytes without a newline (sparse)."""
    with path.open("wb") as fh:
        fh.write(b"From ann@example.com Mon Jan  5 10:00:00 2026\n"
                 b"From: Ann <ann@example.com>\nSubject: endless\nMessage-ID: <endless@example.com>\n\n")
        fh.truncate(size)  # zeros to the end: one endless line
    return path
