"""Notion: selected pages and data sources into bronze ``notion_api_page`` objects.

Per sync: one search sorted by ``last_edited_time`` (descending) tells which pages changed since
the last sync; a selected page is fetched only when its ``last_edited_time`` differs from its
cursor. Blocks are walked recursively to depth 3 and at most 500 blocks; a data source is
queried 100 rows per page, at most 3 pages, filtered to rows edited since its cursor.

The original stopped the whole walk silently on any non-200. Here a page that fails (after
bounded retries) is recorded (``sync_registry.last_error``, a bronze reject with the reason)
and the walk carries on with the next page.

Each bronze object is ``{"page": <page object>, "blocks": [<block objects, children nested>],
"truncated": bool}``: the API objects as received, assembled per page so one object normalizes
to one item.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from yarn_assets.ingest.api_errors import ApiUnavailable, NotFound, ResourceFailure
from yarn_assets.ingest.fetch import Prior, Resource, ResourceResult, dumps, parse_iso
from yarn_assets.ingest.objects import RawObject, Reject
from yarn_assets.ingest.platforms.notion.client import NotionApi

SEARCH_ROW = "__search__"


@dataclass(frozen=True)
class NotionLimits:
    max_depth: int = 3
    max_blocks: int = 500
    page_size: int = 100
    query_pages: int = 3
    search_pages: int = 3
    landscape_pages: int = 3
    verify_unseen_after: dt.timedelta = dt.timedelta(days=1)


def title_of(obj: dict[str, Any]) -> str:
    if isinstance(obj.get("title"), list):  # data sources / databases
        return "".join(t.get("plain_text", "") for t in obj["title"]).strip()
    for prop in (obj.get("properties") or {}).values():
        if isinstance(prop, dict) and prop.get("type") == "title":
            return "".join(t.get("plain_text", "") for t in prop.get("title") or []).strip()
    return ""


class _BlockBudget:
    def __init__(self, limit: int) -> None:
        self.left = limit
        self.truncated = False


class NotionFetcher:
    platform = "notion"
    provider = "notion_api"

    def __init__(self, api: NotionApi, limits: NotionLimits | None = None) -> None:
        self.api = api
        self.limits = limits or NotionLimits()
        self._seen: dict[str, dict[str, Any]] = {}  # page id -> page object from this run's search
        self._search_complete = False
        self._search_state: dict[str, Any] = {}

    # ------------------------------------------------------------------ landscape
    def landscape(self) -> list[Resource]:
        out: list[Resource] = []
        cursor: str | None = None
        for _ in range(self.limits.landscape_pages):
            data = self.api.search(start_cursor=cursor, page_size=self.limits.page_size)
            for obj in data.get("results") or []:
                kind = obj.get("object")
                if kind not in ("page", "data_source", "database") or obj.get("archived") or obj.get("in_trash"):
                    continue
                if (obj.get("parent") or {}).get("type") in ("database_id", "data_source_id"):
                    continue  # a row: synced through its data source
                out.append(Resource(id=str(obj["id"]), name=title_of(obj) or str(obj["id"]),
                                    type="page" if kind == "page" else "data_source",
                                    metadata={"last_edited_time": obj.get("last_edited_time"), "url": obj.get("url"),
                                              "parent_type": (obj.get("parent") or {}).get("type")}))
            cursor = data.get("next_cursor") if data.get("has_more") else None
            if not cursor:
                break
        return out

    # ------------------------------------------------------------------ search pass
    def prepare(self, selected: list[Resource], priors: dict[str, Prior], now: dt.datetime) -> None:
        """Search pages by last edit (newest first) back to the previous sync's high-water mark."""
        self._now = now
        prior = priors.get(SEARCH_ROW)
        self._search_state = dict(prior.state) if prior else {}
        hwm = prior.cursor if prior else None
        if not any(r.type == "page" for r in selected):
            return
        cursor: str | None = None
        newest = hwm
        for _ in range(self.limits.search_pages):
            data = self.api.search(start_cursor=cursor, page_size=self.limits.page_size, object_type="page")
            reached = False
            for obj in data.get("results") or []:
                edited = obj.get("last_edited_time")
                if newest is None or (edited and edited > newest):
                    newest = edited
                if hwm and edited and edited < hwm:
                    reached = True
                    break
                self._seen[str(obj["id"])] = obj
            cursor = data.get("next_cursor") if data.get("has_more") else None
            if reached or not cursor:
                self._search_complete = bool(hwm) and (reached or not cursor)
                break
        self._search_state["hwm"] = newest

    def finish(self) -> dict[str, tuple[str | None, dict[str, Any]]]:
        hwm = self._search_state.get("hwm")
        return {SEARCH_ROW: (hwm, {})} if hwm else {}

    # ------------------------------------------------------------------ blocks
    def _children(self, block_id: str, depth: int, budget: _BlockBudget) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        cursor: str | None = None
        while budget.left > 0:
            data = self.api.block_children(block_id, start_cursor=cursor, page_size=min(self.limits.page_size, 100))
            for block in data.get("results") or []:
                if budget.left <= 0:
                    budget.truncated = True
                    break
                budget.left -= 1
                blocks.append(block)
            cursor = data.get("next_cursor") if data.get("has_more") else None
            if not cursor:
                break
            if budget.left <= 0:
                budget.truncated = True
        for block in blocks:
            if block.get("has_children") and block.get("type") not in ("child_page", "child_database"):
                if depth + 1 < self.limits.max_depth and budget.left > 0:
                    block["children"] = self._children(str(block["id"]), depth + 1, budget)
                else:
                    budget.truncated = budget.truncated or budget.left <= 0
        return blocks

    def _page_object(self, source: Resource, page: dict[str, Any], content_type: str) -> RawObject:
        budget = _BlockBudget(self.limits.max_blocks)
        blocks = self._children(str(page["id"]), 0, budget)
        doc = {"page": page, "blocks": blocks, "truncated": budget.truncated,
               "source": {"id": source.id, "type": source.type, "name": source.name}, "content_type": content_type}
        return RawObject(object_type="notion_api_page", external_id=str(page["id"]), raw=dumps(doc),
                         resource_id=source.id, resource_name=source.name,
                         context={"source_type": source.type, "blocks": self.limits.max_blocks - budget.left,
                                  "truncated": budget.truncated})

    def _tombstone(self, source: Resource, page: dict[str, Any]) -> RawObject:
        return RawObject(object_type="notion_api_page", external_id=str(page["id"]),
                         raw=dumps({"page": page, "blocks": [], "deleted": True}), resource_id=source.id,
                         resource_name=source.name, context={"source_type": source.type}, is_tombstone=True)

    # ------------------------------------------------------------------ fetch
    def fetch(self, resource: Resource, prior: Prior, now: dt.datetime) -> ResourceResult:
        if resource.type == "page":
            return self._fetch_page(resource, prior, now)
        return self._fetch_rows(resource, prior, now)

    def _fetch_page(self, resource: Resource, prior: Prior, now: dt.datetime) -> ResourceResult:
        result = ResourceResult(resource)
        state = dict(prior.state)
        page = self._seen.get(resource.id)
        if page is None:
            verified = parse_iso(state.get("verified_at"))
            if prior.cursor and self._search_complete and verified and now - verified < self.limits.verify_unseen_after:
                result.cursor = prior.cursor
                result.state = state
                result.bump("unchanged")
                return result
            page = self.api.page(resource.id)  # search may miss pages; ask directly
        state["verified_at"] = now.isoformat()
        edited = page.get("last_edited_time")
        result.source_latest_at = parse_iso(edited)
        if prior.cursor and edited == prior.cursor:
            result.bump("unchanged")
        elif page.get("archived") or page.get("in_trash") or page.get("is_archived"):
            result.objects.append(self._tombstone(resource, page))
            result.bump("tombstones")
        else:
            result.objects.append(self._page_object(resource, page, "page"))
            result.bump("pages")
        result.cursor = edited
        result.state = state
        return result

    def _fetch_rows(self, resource: Resource, prior: Prior, now: dt.datetime) -> ResourceResult:
        result = ResourceResult(resource)
        rows_seen: dict[str, str] = dict(prior.state.get("rows") or {})
        since = prior.cursor
        newest = since
        cursor: str | None = None
        rows: list[dict[str, Any]] = []
        for _ in range(self.limits.query_pages):
            data = self.api.query(resource.id, start_cursor=cursor, page_size=self.limits.page_size,
                                  edited_since=since)
            rows.extend(data.get("results") or [])
            cursor = data.get("next_cursor") if data.get("has_more") else None
            if not cursor:
                break
        if cursor:
            result.capped = True
            result.notes.append(f"capped at {self.limits.query_pages} pages of {self.limits.page_size} rows")
        for row in rows:
            row_id = str(row.get("id"))
            edited = row.get("last_edited_time")
            if edited and (newest is None or edited > newest):
                newest = edited
            if rows_seen.get(row_id) == edited:
                result.bump("unchanged")
                continue
            if row.get("archived") or row.get("in_trash") or row.get("is_archived"):
                result.objects.append(self._tombstone(resource, row))
                result.bump("tombstones")
                rows_seen[row_id] = edited
                continue
            try:
                result.objects.append(self._page_object(resource, row, "database_row"))
            except (ApiUnavailable, NotFound, ResourceFailure) as exc:
                # the original stopped the walk here; record the page and carry on
                reason = f"notion page {row_id} ({title_of(row) or 'untitled'}) failed: {exc}"
                result.errors.append(reason)
                result.rejects.append(Reject(reason=reason, raw=dumps(row), location=str(row.get("url") or row_id),
                                             object_type="notion_api_page", external_id=row_id))
                result.bump("failed")
                continue
            rows_seen[row_id] = edited
            result.bump("rows")
        # a failed row holds the cursor back so the next sync queries it again (rows already synced
        # are recognised by their edit time and not walked twice)
        failed = [str(r.get("last_edited_time")) for r in rows
                  if str(r.get("id")) not in rows_seen and r.get("last_edited_time")]
        result.cursor = min(failed) if failed else newest
        floor = result.cursor or ""
        rows_seen = {k: v for k, v in rows_seen.items() if v and v >= floor}
        result.state = {"rows": rows_seen}
        result.source_latest_at = parse_iso(newest)
        return result


def rank(resources: list[Resource]) -> list[Resource]:
    """Most recently edited first."""
    return sorted(resources, key=lambda r: str(r.metadata.get("last_edited_time") or ""), reverse=True)
