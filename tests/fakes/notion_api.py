"""A fake Notion API (version 2025-09-03: search, pages, block children, data source queries).

Pages and blocks are built from the corpus's real Notion objects (``notion_api``) with fresh
ids; a page id listed in ``failing`` answers 500 on its block children (every time), so the
sync must record it and carry on.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
from typing import Any

from tests.fakes import corpus
from tests.fakes.loopback import LoopbackServer, Request, Response

NOTION_TOKEN = "ntn_integration_SECRET_42"


def _err(status: int, code: str, message: str) -> Response:
    return Response.json({"object": "error", "status": status, "code": code, "message": message}, status)


class FakeNotion(LoopbackServer):
    def __init__(self) -> None:
        super().__init__("notion")
        self.tokens = {NOTION_TOKEN}
        self.pages: dict[str, dict[str, Any]] = {}
        self.data_sources: dict[str, dict[str, Any]] = {}
        self.rows: dict[str, list[str]] = {}  # data source id -> page ids
        self.children: dict[str, list[dict[str, Any]]] = {}  # block/page id -> child blocks
        self.failing: set[str] = set()
        self.max_page = 100
        self._n = 0
        # Notion's edit clock: a month back from now (whole minutes, as Notion reports them), then ticking
        self._clock = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(days=30)
        self._page_template = corpus.notion_cassette("notionsdkpy__test_iterate_paginated_api.yaml")[0]
        blocks = [b for b in corpus.notion_blocks() if isinstance(b, dict)]
        blocks += [b for b in corpus.notion_cassette("notionsdkpy__test_iterate_paginated_api.yaml")
                   if isinstance(b, dict) and b.get("object") == "block" and b.get("type") == "paragraph"]
        self._block_templates = blocks
        self._block_cycle = itertools.cycle(range(len(blocks)))
        self._row_template = corpus.notion_page()
        self.route("POST", r"/v1/search", self._auth(self._search))
        self.route("GET", r"/v1/pages/(?P<id>[^/]+)", self._auth(self._page))
        self.route("GET", r"/v1/blocks/(?P<id>[^/]+)/children", self._auth(self._children))
        self.route("POST", r"/v1/data_sources/(?P<id>[^/]+)/query", self._auth(self._query))
        self.route("GET", r"/v1/users/me", self._auth(lambda r, m: Response.json(
            {"object": "user", "id": "bot-1", "type": "bot", "name": "yarnnn test integration"})))

    def _auth(self, fn: Any) -> Any:
        def handler(req: Request, m: Any) -> Response:
            if req.bearer not in self.tokens:
                return _err(401, "unauthorized", "API token is invalid.")
            return fn(req, m)

        return handler

    def _id(self) -> str:
        self._n += 1
        return f"00000000-0000-4000-8000-{self._n:012d}"

    def tick(self, minutes: int = 1) -> str:
        self._clock += dt.timedelta(minutes=minutes)
        return self._clock.strftime("%Y-%m-%dT%H:%M:00.000Z")

    # ------------------------------------------------------------------ building
    def _blocks(self, parent: str, n: int, depth: int, nested: int) -> None:
        blocks = []
        for i in range(n):
            b = copy.deepcopy(self._block_templates[next(self._block_cycle)])
            b["id"] = self._id()
            b["has_children"] = depth < nested and i == 0
            blocks.append(b)
            if b["has_children"]:
                self._blocks(b["id"], n, depth + 1, nested)
        self.children[parent] = blocks

    def add_page(self, title: str, *, blocks: int = 3, nested: int = 0) -> dict[str, Any]:
        page = copy.deepcopy(self._page_template)
        page["id"] = self._id()
        page["properties"]["title"]["title"][0]["plain_text"] = title
        page["properties"]["title"]["title"][0]["text"]["content"] = title
        page["created_time"] = page["last_edited_time"] = self.tick()
        self.pages[page["id"]] = page
        self._blocks(page["id"], blocks, 0, nested)
        return page

    def edit_page(self, page_id: str, text: str) -> None:
        block = self.children[page_id][0]
        kind = block["type"]
        key = "rich_text" if "rich_text" in block[kind] else "text"
        block[kind][key] = [{"type": "text", "text": {"content": text, "link": None}, "plain_text": text}]
        self.pages[page_id]["last_edited_time"] = self.tick()

    def add_data_source(self, title: str, rows: int) -> dict[str, Any]:
        ds = {"object": "data_source", "id": self._id(), "title": [{"plain_text": title, "type": "text",
                                                                     "text": {"content": title}}],
              "last_edited_time": self.tick(), "created_time": self._clock.isoformat()}
        self.data_sources[ds["id"]] = ds
        self.rows[ds["id"]] = []
        for i in range(rows):
            self.add_row(ds["id"], f"{title} row {i}")
        return ds

    def add_row(self, ds_id: str, title: str) -> dict[str, Any]:
        row = copy.deepcopy(self._row_template)
        row["id"] = self._id()
        row["parent"] = {"type": "data_source_id", "data_source_id": ds_id}
        row["properties"]["Name"]["title"][0]["plain_text"] = title
        row["created_time"] = row["last_edited_time"] = self.tick()
        self.pages[row["id"]] = row
        self.rows[ds_id].append(row["id"])
        self._blocks(row["id"], 2, 0, 0)
        self.data_sources[ds_id]["last_edited_time"] = row["last_edited_time"]
        return row

    # ------------------------------------------------------------------ API
    def _paginate(self, items: list[Any], size: int, cursor: str | None) -> dict[str, Any]:
        size = min(size, self.max_page)
        start = int(cursor.split(":")[1]) if cursor else 0
        nxt = f"offset:{start + size}" if start + size < len(items) else None
        return {"object": "list", "results": items[start:start + size], "next_cursor": nxt, "has_more": bool(nxt)}

    def _search(self, req: Request, _m: Any) -> Response:
        body = req.json() or {}
        only = (body.get("filter") or {}).get("value")
        row_ids = {r for rows in self.rows.values() for r in rows}
        items: list[dict[str, Any]] = [p for pid, p in self.pages.items() if pid not in row_ids]
        if only != "page":
            items += list(self.data_sources.values())
        items.sort(key=lambda o: o["last_edited_time"], reverse=True)
        return Response.json(self._paginate(items, int(body.get("page_size") or 100), body.get("start_cursor")))

    def _page(self, req: Request, m: Any) -> Response:
        page = self.pages.get(m["id"])
        if page is None:
            return _err(404, "object_not_found", f"Could not find page with ID: {m['id']}.")
        return Response.json(page)

    def _children(self, req: Request, m: Any) -> Response:
        if m["id"] in self.failing:
            return _err(500, "internal_server_error", "Unexpected error occurred.")
        if m["id"] not in self.children:
            return _err(404, "object_not_found", f"Could not find block with ID: {m['id']}.")
        return Response.json(self._paginate(self.children[m["id"]], int(req.param("page_size") or 100),
                                            req.param("start_cursor")))

    def _query(self, req: Request, m: Any) -> Response:
        if m["id"] not in self.rows:
            return _err(404, "object_not_found", "Could not find data source.")
        body = json.loads(req.body or b"{}")
        since = ((body.get("filter") or {}).get("last_edited_time") or {}).get("on_or_after")
        rows = [self.pages[r] for r in self.rows[m["id"]]
                if since is None or self.pages[r]["last_edited_time"] >= since]
        rows.sort(key=lambda p: p["last_edited_time"], reverse=True)
        return Response.json(self._paginate(rows, int(body.get("page_size") or 100), body.get("start_cursor")))
