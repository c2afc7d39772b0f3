"""Notion sync: search by last edit, blocks to depth 3 / 500, data source queries, a failing page."""

from __future__ import annotations

import json

import polars as pl

from tests.sync.conftest import metadata


def test_pages_rows_depth_caps_and_failing_page(world):
    n = world.notion
    n.max_page = 100
    deep = n.add_page("Deep page", blocks=3, nested=5)  # children nested 6 levels
    wide = n.add_page("Wide page", blocks=260, nested=1)  # 260 + 260 blocks > 500
    good = n.add_page("Good page", blocks=2)
    broken = n.add_page("Broken page", blocks=2)
    n.failing.add(broken["id"])
    ds = n.add_data_source("Tasks", rows=350)
    bad_row = n.rows[ds["id"]][-1]  # the most recently edited row
    n.failing.add(bad_row)

    md = metadata(world.sync("notion"))
    conn = world.connection("notion")
    assert set(conn.selected_sources) == {deep["id"], wide["id"], good["id"], broken["id"], ds["id"]}
    res = md["resources"][world.connections["notion"]]
    silver = world.silver("notion")

    # depth: blocks are walked at most 3 levels down
    deep_row = silver.filter(pl.col("external_id") == deep["id"]).row(0, named=True)
    depth_calls = [r for r in n.matching("GET", r"/children$")
                   if r.path.split("/")[3] in {b["id"] for b in _chain(n, deep["id"])}]
    assert len(depth_calls) == 3
    assert max(len(line) - len(line.lstrip(" ")) for line in deep_row["content"].splitlines()) // 2 == 2
    # at most 500 blocks per page, marked truncated
    wide_row = silver.filter(pl.col("external_id") == wide["id"]).row(0, named=True)
    assert json.loads(wide_row["metadata"])["truncated"] is True
    assert len(wide_row["content"].splitlines()) <= 501
    # data source: 100 rows per page, at most 3 pages
    queries = n.matching("POST", r"/data_sources/.*/query")
    assert len(queries) == 3 and all(json.loads(q.body)["page_size"] == 100 for q in queries)
    rows = silver.filter((pl.col("resource_id") == ds["id"]) & (pl.col("content_type") == "database_row"))
    assert rows.height == 299  # 300 queried, one failed
    assert res[ds["id"]]["capped"] is True
    # the failing page is recorded, the others synced (the original stopped the whole walk)
    assert good["id"] in set(silver["external_id"]) and broken["id"] not in set(silver["external_id"])
    reg = world.registry("notion")
    assert "failed" in (reg[broken["id"]]["error"] or "") or "HTTP 500" in (reg[broken["id"]]["error"] or "")
    assert bad_row in (reg[ds["id"]]["error"] or "")
    assert md["rejected"] == 1 and md["connections_failed"] == 0

    # second sync: only the edited page is walked; the failed row and page are retried
    n.failing.clear()
    n.edit_page(good["id"], "Edited paragraph")
    n.reset_log()
    md = metadata(world.sync("notion"))
    walked = {r.path.split("/")[3] for r in n.matching("GET", r"/children$")}
    assert good["id"] in walked and broken["id"] in walked and bad_row in walked
    assert deep["id"] not in walked and wide["id"] not in walked
    assert n.count(path=r"/search") == 1
    silver = world.silver("notion")
    assert "Edited paragraph" in silver.filter(pl.col("external_id") == good["id"])["content"][0]
    assert {broken["id"], bad_row} <= set(silver["external_id"])
    assert world.registry("notion")[broken["id"]]["error"] is None


def _chain(n, page_id):
    """The page and its first-child chain of nested blocks."""
    out = [{"id": page_id}]
    current = page_id
    while current in n.children and n.children[current] and n.children[current][0]["has_children"]:
        current = n.children[current][0]["id"]
        out.append({"id": current})
    return out
