"""Notion export objects -> page and database_row items.

* Markdown pages become plain text: headings, emphasis and fences lose their markup, links keep
  their text (external ones add the URL), empty to-dos and dividers disappear; the title is the
  first ``# heading`` (else the file name) and is not repeated in the content.
* A database CSV yields one ``database_row`` per row: ``resource_id`` = the database,
  ``external_id`` = ``<database id>:<row title>`` (``#n`` for repeated titles), content =
  ``Property: value`` lines. Its row pages (``<db folder>/<title> <id>.md``) repeat those
  properties; they become items only when they hold text beyond them (else counted as filtered).
* HTML exports: the page body rendered to text, tables as ``a | b`` rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from typing import Any

from bs4 import BeautifulSoup
from dateutil import parser as dateparser

from yarn_assets.ingest.mime import decode_bytes, html_to_text
from yarn_assets.ingest.objects import BronzeObject, ContentItem, Reject

_CREATED_COLUMNS = {"created", "created time", "created at", "date created"}
_UPDATED_COLUMNS = {"last edited time", "last edited", "updated", "last updated", "edited"}
_ESCAPED = 0xE000  # private-use plane: escaped punctuation while the markup rules run
_PROPERTY = re.compile(r"^([^:\n]{1,80}): (.*)$")


def _count_filtered(ctx: Any, reason: str) -> None:
    filtered = getattr(ctx, "filtered", None)
    if filtered is not None:
        filtered[f"notion:{reason}"] += 1


def _link(match: re.Match[str]) -> str:
    text, target = match.group(1).strip(), match.group(2).strip()
    if re.match(r"^(https?|mailto):", target, re.IGNORECASE) and text and text != target:
        return f"{text} ({target})"
    return text or target


def markdown_to_text(markdown: str) -> str:
    """Notion-flavoured Markdown -> readable plain text (see module docstring)."""
    lines = []
    for line in markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        stripped = line.strip()
        if re.fullmatch(r"(-{3,}|\*{3,}|_{3,})", stripped) or stripped.startswith("```"):
            continue  # dividers, code fences (the code itself stays)
        if re.fullmatch(r"[-*+] \[[ xX]\]", stripped):
            continue  # empty to-do
        # escaped punctuation is literal: hide it from the markup rules, restore it at the end
        line = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|>~])", lambda m: chr(_ESCAPED + ord(m.group(1))), line)
        line = re.sub(r"!\[([^\]]*)\]\(([^)]*)\)", lambda m: f"[image: {m.group(1).strip()}]"
                      if m.group(1).strip() else "[image]", line)
        line = re.sub(r"\[([^\]]*)\]\(([^)]*)\)", _link, line)
        line = re.sub(r"<(https?://[^>\s]+)>", r"\1", line)
        line = re.sub(r"</?(aside|details|summary|span|div|u|br)\b[^>]*>", "", line)
        line = re.sub(r"^(\s*)#{1,6}\s+", r"\1", line)
        line = re.sub(r"(\*\*|__|~~)(.+?)\1", r"\2", line)
        line = re.sub(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])", r"\1", line)
        line = re.sub(r"`([^`\n]+)`", r"\1", line)
        line = re.sub(r"^(\s*[-*+] \[[ xX]\])\s+", r"\1 ", line)
        line = re.sub(f"[{chr(_ESCAPED)}-{chr(_ESCAPED + 127)}]", lambda m: chr(ord(m.group(0)) - _ESCAPED), line)
        lines.append(line.rstrip())
    text = unicodedata.normalize("NFC", "\n".join(lines))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _title_and_body(markdown: str, fallback: str) -> tuple[str, str]:
    lines = markdown.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        match = re.match(r"^#\s+(.+?)\s*$", line)
        if match:
            return match.group(1), "\n".join(lines[i + 1:])
        break
    return fallback, markdown


def _parse_time(value: str) -> dt.datetime | None:
    value = value.strip()
    if not value or value.startswith("@"):
        return None
    try:
        parsed = dateparser.parse(value)
    except (ValueError, OverflowError):
        return None
    if parsed is None:
        return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _page_item(obj: BronzeObject, title: str, content: str, properties: dict[str, str], fmt: str,
               **extra: Any) -> ContentItem:
    """An exported page (Markdown or HTML) as a ``page`` item: the title stands in for an empty body."""
    return ContentItem(
        resource_id=obj.resource_id,
        resource_name=title,
        external_id=obj.external_id,
        content_type="page",
        content=content or title,
        title=title,
        thread_id=obj.context.get("parent_id"),
        metadata={
            "path": obj.context.get("path"),
            "parent_id": obj.context.get("parent_id"),
            **extra,
            "attachments": obj.context.get("attachments", []),
            **({"properties": properties} if properties else {}),
            "format": fmt,
        },
    )


def normalize_page_md(obj: BronzeObject, ctx: Any) -> Iterator[ContentItem | Reject]:
    text = decode_bytes(obj.raw, "utf-8").lstrip("\ufeff")
    title, body = _title_and_body(text, obj.context.get("title") or obj.resource_name)
    properties: dict[str, str] = {}
    if obj.context.get("database_id"):  # a row page: leading "Key: Value" lines are the row's properties
        rest = body.lstrip("\n").split("\n")
        while rest and (m := _PROPERTY.match(rest[0])):
            properties[m.group(1)] = m.group(2).strip()
            rest = rest[1:]
        body = "\n".join(rest)
        if obj.context.get("row_in_csv") and not markdown_to_text(body):
            _count_filtered(ctx, "database_row_page_without_text")  # its CSV row says it all
            return
    yield _page_item(obj, title, markdown_to_text(body), properties, "markdown",
                     database_id=obj.context.get("database_id"))


def normalize_page_html(obj: BronzeObject, ctx: Any) -> Iterator[ContentItem | Reject]:
    soup = BeautifulSoup(decode_bytes(obj.raw, "utf-8"), "html.parser")
    heading = soup.select_one("h1.page-title") or soup.find("h1") or soup.find("title")
    title = heading.get_text(" ", strip=True) if heading else ""
    title = title or obj.context.get("title") or obj.resource_name
    body = soup.select_one("div.page-body") or soup.find("article") or soup.body or soup
    properties: dict[str, str] = {}
    props = soup.select_one("table.properties")
    if props is not None:
        for row in props.find_all("tr"):
            key, value = row.find("th"), row.find("td")
            if key and value:
                properties[key.get_text(" ", strip=True)] = value.get_text(" ", strip=True)
    for row in body.find_all("tr"):  # tables (inline databases) as "a | b" rows
        cells = [c.get_text(" ", strip=True) for c in row.find_all(["td", "th"])]
        row.replace_with(soup.new_string(" | ".join(cells) + "\n"))
    yield _page_item(obj, title, html_to_text(str(body)), properties, "html")


def normalize_database_csv(obj: BronzeObject, ctx: Any) -> Iterator[ContentItem | Reject]:
    text = decode_bytes(obj.raw, "utf-8").lstrip("\ufeff")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        yield Reject(reason=f"database CSV unreadable: {exc}", raw=obj.raw, object_type=obj.object_type,
                     external_id=obj.external_id)
        return
    if not rows or not any(cell.strip() for cell in rows[0]):
        yield Reject(reason="database CSV has no header row", raw=obj.raw, object_type=obj.object_type,
                     external_id=obj.external_id)
        return
    header = [h.strip() or f"Column {i + 1}" for i, h in enumerate(rows[0])]
    seen: Counter[str] = Counter()
    db_title = obj.context.get("title") or obj.resource_name
    for index, row in enumerate(rows[1:], start=1):
        if not any(cell.strip() for cell in row):
            continue
        cells = row + [""] * (len(header) - len(row))
        names = header + [f"Column {i + 1}" for i in range(len(header), len(cells))]
        values = {name: cell.strip() for name, cell in zip(names, cells, strict=True)}
        title = cells[0].strip()
        key = title or f"row-{index}"
        seen[key] += 1
        identity = key if seen[key] == 1 else f"{key}#{seen[key]}"
        lowered = {k.lower(): v for k, v in values.items()}
        created = next((_parse_time(lowered[c]) for c in _CREATED_COLUMNS if lowered.get(c)), None)
        updated = next((_parse_time(lowered[c]) for c in _UPDATED_COLUMNS if lowered.get(c)), None)
        yield ContentItem(
            resource_id=obj.resource_id,
            resource_name=db_title,
            external_id=f"{obj.external_id}:{identity}",
            content_type="database_row",
            content="\n".join(f"{k}: {v}" for k, v in values.items() if v),
            title=title or None,
            source_created_at=created,
            source_updated_at=updated,
            metadata={"database_id": obj.external_id, "database": db_title, "row": index, "properties": values},
        )


NORMALIZERS = {
    "notion_page_md": normalize_page_md,
    "notion_page_html": normalize_page_html,
    "notion_database_csv": normalize_database_csv,
}
