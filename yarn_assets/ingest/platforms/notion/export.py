"""Notion export (the zip as downloaded: a zip holding ``Export-<uuid>-Part-N.zip``; or a folder).

Markdown & CSV exports name every page ``<Title> <32-hex id>.md`` and every database
``<Title> <id>.csv`` (plus ``<Title> <id>_all.csv`` with the hidden columns); a page's children
and a database's row pages live in a folder ``<Title> <id>/`` beside it. HTML exports use
``.html`` pages. Objects:

* ``notion_page_md`` / ``notion_page_html``: one per page (raw = the file), external and resource
  id = the page id (canonical dashed UUID, as the Notion API spells it);
* ``notion_database_csv``: one per database, the ``_all.csv`` variant when both exist (it is a
  superset), so rows are never doubled; the other variant is named in the context;
* ``notion_export_meta``: the manifest (every member with its role), so attachments and
  ``index.html`` are accounted for without storing binaries. Attachments are also listed on the
  page that holds them.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from resources.input_limits import DEFAULT_LIMITS, InputLimits
from yarn_assets.ingest.archive import MEMBER_ERRORS, ExportArchive, Member
from yarn_assets.ingest.objects import RawObject, Reject

_ID = re.compile(r"^(?P<title>.*?)\s*(?P<id>[0-9a-f]{32})(?P<all>_all)?$", re.IGNORECASE)
PAGE_TYPES = {".md": "notion_page_md", ".html": "notion_page_html"}


def canonical_id(hex32: str) -> str:
    return str(uuid.UUID(hex32.lower()))


def split_name(stem: str) -> tuple[str, str | None, bool]:
    """``"Habit Tracker 152b…444_all"`` -> ("Habit Tracker", "152b…-…-444", True)."""
    match = _ID.match(stem)
    if not match:
        return stem.strip(), None, False
    return match.group("title").strip(), canonical_id(match.group("id")), bool(match.group("all"))


def _folder_owner(parent: str) -> str | None:
    """Folder ``…/Title <id>`` -> the id of the page or database that owns the folder."""
    if parent in ("", "."):
        return None
    return split_name(PurePosixPath(parent).name)[1]


def _first_column(raw: bytes) -> set[str]:
    """Row titles of a database CSV (to tell a row's own page from an orphan page)."""
    try:
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig", errors="replace"), newline="")))
    except csv.Error:
        return set()
    return {row[0].strip() for row in rows[1:] if row and row[0].strip()}


def read_notion_export(path: Path, limits: InputLimits | None = None) -> Iterator[RawObject | Reject]:
    limits = limits or DEFAULT_LIMITS
    with ExportArchive(path, limits, expand_zips=True) as archive:
        yield from _read(path, archive, limits)


def _read(path: Path, archive: ExportArchive, limits: InputLimits) -> Iterator[RawObject | Reject]:
    members = archive.members
    sample = limits.import_reject_sample_bytes
    landed = 0
    for location, reason in archive.bad:
        yield Reject(reason=reason, location=location)

    manifest: list[dict[str, Any]] = []
    databases: dict[str, dict[str, Member]] = {}  # db id -> {"plain": m, "all": m}
    pages: list[tuple[Member, str, str | None]] = []  # member, title, id
    attachments: dict[str | None, list[str]] = {}
    for member in members:
        suffix = PurePosixPath(member.name).suffix.lower()
        title, object_id, is_all = split_name(PurePosixPath(member.name).stem)
        role = "attachment"
        if suffix == ".csv" and object_id:
            databases.setdefault(object_id, {})["all" if is_all else "plain"] = member
            role = "database"
        elif suffix in PAGE_TYPES and member.name.lower() != "index.html":
            pages.append((member, title, object_id))
            role = "page"
        elif member.name.lower() == "index.html":
            role = "index"
        else:
            attachments.setdefault(_folder_owner(member.parent), []).append(member.path)
        manifest.append({"path": member.path, "size": member.size, "role": role})
    by_path = {entry["path"]: entry for entry in manifest}

    database_ids = set(databases)
    database_titles: dict[str, str] = {}
    row_titles: dict[str, set[str]] = {}
    for db_id, variants in sorted(databases.items()):
        chosen = variants.get("all") or variants["plain"]
        other = variants.get("plain") if "all" in variants else None
        title = split_name(PurePosixPath(chosen.name).stem)[0]
        database_titles[db_id] = title
        if other is not None:
            by_path[other.path]["role"] = "database_variant"
        try:
            raw = chosen.read()
        except MEMBER_ERRORS as exc:
            yield Reject(reason=f"database {exc}", raw=chosen.head(sample), location=chosen.path,
                         object_type="notion_database_csv", external_id=db_id)
            continue
        row_titles[db_id] = _first_column(raw)
        yield RawObject(
            object_type="notion_database_csv",
            external_id=db_id,
            raw=raw,
            resource_id=db_id,
            resource_name=title,
            context={"path": chosen.path, "title": title, "variant": "all" if "all" in variants else "plain",
                     **({"also_exported_as": other.path} if other is not None else {})},
        )

    for member, title, page_id in pages:
        parent_id = _folder_owner(member.parent)
        external_id = page_id or "path:" + member.path
        object_type = PAGE_TYPES[PurePosixPath(member.name).suffix.lower()]
        if landed >= limits.import_max_objects:
            yield Reject(reason=f"import stops at {limits.named('import_max_objects')} pages: {member.path} and "
                                "the pages after it were not landed", location=member.path, object_type=object_type)
            break
        try:
            raw = member.read()
        except MEMBER_ERRORS as exc:
            yield Reject(reason=f"page {exc}", raw=member.head(sample), location=member.path,
                         object_type=object_type, external_id=external_id)
            continue
        landed += 1
        context: dict[str, Any] = {"path": member.path, "title": title, "parent_id": parent_id}
        if parent_id in database_ids:  # a database row's own page
            context["database_id"] = parent_id
            context["database_title"] = database_titles[parent_id]
            context["row_in_csv"] = title in row_titles.get(parent_id, set())
        if page_id and attachments.get(page_id):
            context["attachments"] = [PurePosixPath(p).name for p in attachments[page_id]]
        yield RawObject(
            object_type=object_type,
            external_id=external_id,
            raw=raw,
            resource_id=external_id,
            resource_name=title,
            context=context,
        )

    if not pages and not databases:
        yield Reject(reason="no Notion pages (.md/.html) or databases (.csv) in the export",
                     location=path.name, object_type="notion_export_meta")
    yield RawObject(
        object_type="notion_export_meta",
        external_id="manifest",
        raw=json.dumps({"members": manifest}, ensure_ascii=False, sort_keys=True).encode("utf-8"),
        context={"file": path.name, "members": len(manifest)},
    )
