"""Notion export reader (zip of zips, folder, HTML) and the page / database-row normalizers."""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from pathlib import Path

import polars as pl

from tests.ingest.helpers import meta, read_and_normalize
from yarn_assets.ingest.objects import RawObject
from yarn_assets.ingest.platforms.notion.export import read_notion_export, split_name
from yarn_assets.ingest.platforms.notion.normalize import markdown_to_text

HABITS = "152bb52e-e2b5-804d-a922-efa8c3194444"


def test_split_name() -> None:
    assert split_name("Habit Tracker 152bb52ee2b5804da922efa8c3194444_all") == ("Habit Tracker", HABITS, True)
    assert split_name("@December 1, 2024 152bb52ee2b5811d92b1e629b25d0c0a")[0] == "@December 1, 2024"
    assert split_name("index") == ("index", None, False)


def test_markdown_export_zip_of_zips(corpus: Path) -> None:
    zipped = corpus / "notion_export" / "obsidianimporter__Notion.Test.Export.zip"
    objects = [o for o in read_notion_export(zipped) if isinstance(o, RawObject)]
    kinds = Counter(o.object_type for o in objects)
    assert kinds == {"notion_page_md": 278, "notion_database_csv": 1, "notion_export_meta": 1}
    database = next(o for o in objects if o.object_type == "notion_database_csv")
    assert database.external_id == HABITS and database.context["variant"] == "all"  # the superset is kept
    assert database.context["also_exported_as"].endswith("Habit Tracker 152bb52ee2b5804da922efa8c3194444.csv")

    items, read_rejects, rejects, filtered = read_and_normalize(zipped, "notion_export")
    assert not read_rejects and not rejects
    rows = items.filter(pl.col("content_type") == "database_row")
    assert rows.height == 269 and rows["external_id"].n_unique() == 269  # one per CSV row, never doubled
    first = rows.filter(pl.col("external_id") == f"{HABITS}:@December 1, 2024").row(0, named=True)
    assert first["resource_id"] == HABITS and first["resource_name"] == "Habit Tracker"
    assert first["title"] == "@December 1, 2024"
    assert first["content"] == ("Date: @December 1, 2024\nRan today: No\nMeditated: No\nPracticed guitar: No\n"
                                "Full date: December 4, 2024 8:45 AM")
    assert meta(first)["properties"]["Full date"] == "December 4, 2024 8:45 AM"
    # row pages that only repeat their CSV row are counted, not duplicated
    assert filtered == {"notion:database_row_page_without_text": 259}

    pages = {r["title"]: r for r in items.filter(pl.col("content_type") == "page").iter_rows(named=True)}
    mobile = pages["Getting Started on Mobile"]
    assert mobile["external_id"] == mobile["resource_id"] == "152bb52e-e2b5-8017-9846-fd78b2b60ea9"
    assert "Example sub page" in mobile["content"] and "%20" not in mobile["content"]  # link text, not syntax
    assert not mobile["content"].startswith("# ")  # the title is not repeated
    sub = pages["Example sub page"]
    assert sub["thread_id"] == mobile["external_id"]  # parent by folder
    todo = pages["Weekly To-do List"]
    assert "- [x] Call Mom" in todo["content"] and "- [ ]" not in todo["content"]  # empty to-dos dropped
    assert pages["Project Planner"]["content"].startswith("📝 Publish my first book")  # **bold** unwrapped


def test_extracted_folder_reads_like_the_zip(corpus: Path) -> None:
    folder = corpus / "notion_export" / "extracted_from_Notion.Test.Export"
    items, _, rejects, _ = read_and_normalize(folder, "notion_export")
    assert not rejects
    journal = items.filter(pl.col("title") == "Journal").row(0, named=True)
    zipped_items = read_and_normalize(corpus / "notion_export" / "obsidianimporter__Notion.Test.Export.zip",
                                      "notion_export")[0]
    assert journal["content"] == zipped_items.filter(pl.col("title") == "Journal")["content"][0]
    assert journal["content"].startswith("October 4, 2024 — A Peaceful Forest Walk\n\nI decided")


def test_html_export(corpus: Path) -> None:
    items, _, rejects, _ = read_and_normalize(corpus / "notion_export" / "obsidianimporter__notion-testspace.zip",
                                              "notion_export")
    assert not rejects and items.height == 4
    pages = {r["title"]: r for r in items.iter_rows(named=True)}
    root = pages["Notion-Testspace"]
    assert root["external_id"] == "1590080a-a5a3-8024-88c2-e857dea7aa7d"
    assert root["content"].startswith("Notion-Testspace is a Notion workspace created by @felciabatta to test the "
                                      "Obsidian Importer plugin.")
    attachments = pages["Attachment Tests"]
    assert "kočky-jsou-nejlepší.jpg" in attachments["content"]
    assert sorted(meta(attachments)["attachments"]) == sorted(
        ["felis-catus.jpg", "----.jpg", "kocky-jsou-nejlepsi.jpg", "name-with-percents-006300610074.jpg",
         "%D0%BA%D0%BE%D1%88%D0%BA%D0%B8-%D1%81%D0%B0%D0%BC%D1%8B%D0%B5-%D0%BB%D1%83%D1%87%D1%88%D0%B8%D0%B5.jpg"])
    assert pages["Block Reference"]["thread_id"] == root["external_id"]


def test_markdown_to_text() -> None:
    md = ("## 🎯 **Goal**\n\n---\n\n- [ ]  \n- [x]  Done *well*\n"
          "See [Risks](Plan%20abc/Risks%20def.md), [site](https://x.example) and ![chart](img/c.png)\n"
          "```\ncode_line()\n```\n<aside>Note</aside>\nA\\*literal\\* star")
    assert markdown_to_text(md) == ("🎯 Goal\n\n- [x] Done well\nSee Risks, site (https://x.example) and "
                                    "[image: chart]\ncode_line()\nNote\nA*literal* star")


def test_duplicate_row_titles_get_distinct_ids(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("Export-x/Tasks 0123456789abcdef0123456789abcdef.csv",
                    "\ufeffName,Status\r\nSame,Open\r\nSame,Done\r\n,Orphan\r\n\r\n")
        zf.writestr("Export-x/Tasks 0123456789abcdef0123456789abcdef/Same fedcba9876543210fedcba9876543210.md",
                    "# Same\n\nStatus: Open\n\nExtra notes that only the page has.")
    outer = tmp_path / "export.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("Export-x-Part-1.zip", inner.getvalue())
    items, _, rejects, filtered = read_and_normalize(outer, "notion_export")
    db = "01234567-89ab-cdef-0123-456789abcdef"
    assert not rejects and not filtered
    assert sorted(items["external_id"].to_list()) == sorted(
        [f"{db}:Same", f"{db}:Same#2", f"{db}:row-3", "fedcba98-7654-3210-fedc-ba9876543210"])
    page = items.filter(pl.col("content_type") == "page").row(0, named=True)
    assert page["content"] == "Extra notes that only the page has."
    assert meta(page)["properties"] == {"Status": "Open"} and meta(page)["database_id"] == db
