"""Notion API pages (a page or data-source row with its block tree) -> page / database_row items.

Extracted block text as in the original: paragraph, heading_1–3, bulleted and numbered list
items, to_do, toggle, quote, callout, code and table_row (cells joined by " | "); bookmarks,
embeds and dividers become markers; child pages and databases become "[page: title]" lines.
Rich text is read from ``rich_text`` (current API) or ``text`` (older API versions).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from yarn_assets.ingest.objects import BronzeObject, ContentItem, Reject, parse_utc

TEXT_BLOCKS = ("paragraph", "heading_1", "heading_2", "heading_3", "bulleted_list_item", "numbered_list_item",
               "to_do", "toggle", "quote", "callout", "code")
PREFIX = {"heading_1": "# ", "heading_2": "## ", "heading_3": "### ", "bulleted_list_item": "- ",
          "numbered_list_item": "1. ", "quote": "> "}


def rich(items: Any) -> str:
    if not isinstance(items, list):
        return ""
    out = []
    for t in items:
        if isinstance(t, dict):
            out.append(str(t.get("plain_text") or (t.get("text") or {}).get("content") or ""))
    return "".join(out)


def block_text(block: dict[str, Any]) -> str | None:
    kind = str(block.get("type") or "")
    body = block.get(kind) or {}
    if kind in TEXT_BLOCKS:
        text = rich(body.get("rich_text", body.get("text")))
        if kind == "to_do":
            return f"[{'x' if body.get('checked') else ' '}] {text}"
        if kind == "code":
            return f"```{body.get('language') or ''}\n{text}\n```"
        return PREFIX.get(kind, "") + text
    if kind == "table_row":
        return " | ".join(rich(cell) for cell in body.get("cells") or [])
    if kind in ("bookmark", "embed", "link_preview"):
        return f"[{kind}: {body.get('url') or ''}]"
    if kind == "divider":
        return "---"
    if kind in ("child_page", "child_database"):
        return f"[{kind.replace('child_', '')}: {body.get('title') or ''}]"
    if kind in ("image", "file", "pdf", "video"):
        caption = rich(body.get("caption"))
        return f"[{kind}{': ' + caption if caption else ''}]"
    return None


def walk(blocks: list[dict[str, Any]], depth: int = 0) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        text = block_text(block)
        if text:
            lines.append("  " * depth + text)
        lines.extend(walk(block.get("children") or [], depth + 1))
    return lines


def property_text(prop: dict[str, Any]) -> str:
    kind = prop.get("type")
    value = prop.get(kind) if kind else None
    if kind in ("title", "rich_text"):
        return rich(value)
    if kind in ("select", "status"):
        return str((value or {}).get("name") or "")
    if kind == "multi_select":
        return ", ".join(str(v.get("name")) for v in value or [] if isinstance(v, dict))
    if kind == "people":
        return ", ".join(str(p.get("name") or p.get("id")) for p in value or [] if isinstance(p, dict))
    if kind == "date":
        return " — ".join(x for x in ((value or {}).get("start"), (value or {}).get("end")) if x)
    if kind in ("number", "checkbox", "url", "email", "phone_number", "created_time", "last_edited_time"):
        return "" if value is None else str(value)
    if kind == "formula":
        inner = value or {}
        return str(inner.get(inner.get("type")) or "")
    if kind == "files":
        return ", ".join(str(f.get("name")) for f in value or [] if isinstance(f, dict))
    if kind == "relation":
        return ", ".join(str(r.get("id")) for r in value or [] if isinstance(r, dict))
    if kind == "rollup":
        inner = value or {}
        arr = inner.get("array")
        if isinstance(arr, list):
            return ", ".join(property_text(x) if "type" in x else str(x) for x in arr if isinstance(x, dict))
        return str(inner.get(inner.get("type")) or "")
    return ""


def title_of(page: dict[str, Any]) -> str:
    for prop in (page.get("properties") or {}).values():
        if isinstance(prop, dict) and prop.get("type") == "title":
            return rich(prop.get("title")).strip()
    return ""


def normalize_page(obj: BronzeObject, ctx: object) -> Iterator[ContentItem | Reject]:
    doc = json.loads(obj.raw)
    page = doc.get("page") if isinstance(doc, dict) else None
    if not isinstance(page, dict) or not page.get("id"):
        yield Reject(reason="notion object without a page", raw=obj.raw, object_type=obj.object_type,
                     external_id=obj.external_id)
        return
    created = parse_utc(page.get("created_time"))
    edited = parse_utc(page.get("last_edited_time"))
    content_type = str(doc.get("content_type") or ("database_row" if obj.context.get("source_type") == "data_source"
                                                   else "page"))
    if obj.is_tombstone or doc.get("deleted"):
        yield ContentItem(resource_id=obj.resource_id, resource_name=obj.resource_name, external_id=str(page["id"]),
                          content_type=content_type, content="", is_deleted=True, source_created_at=created)
        return
    title = title_of(page)
    lines: list[str] = []
    if content_type == "database_row":
        for name, prop in (page.get("properties") or {}).items():
            if isinstance(prop, dict) and prop.get("type") != "title":
                text = property_text(prop)
                if text:
                    lines.append(f"{name}: {text}")
    lines.extend(walk(doc.get("blocks") or []))
    editor = (page.get("last_edited_by") or {}).get("id")
    yield ContentItem(
        resource_id=obj.resource_id,
        resource_name=obj.resource_name,
        external_id=str(page["id"]),
        content_type=content_type,
        content="\n".join([title, *lines]).strip() if title else "\n".join(lines).strip(),
        title=title or None,
        author_id=(page.get("created_by") or {}).get("id"),
        participants=[p for p in {(page.get("created_by") or {}).get("id"), editor} if p],
        occurred_at=edited,
        source_created_at=created,
        source_updated_at=edited,
        metadata={"url": page.get("url"), "parent": page.get("parent"),
                  "last_edited_time": page.get("last_edited_time"),
                  "last_edited_by": editor, "truncated": bool(doc.get("truncated")),
                  "source": doc.get("source")},
    )


NORMALIZERS = {"notion_api_page": normalize_page}
