"""Notion: workspace exports (Markdown/HTML/CSV, zip of zips or folder) and the Notion API, into page items."""

from __future__ import annotations

from yarn_assets.ingest.platforms import LiveApi, Platform, fetcher_of
from yarn_assets.ingest.platforms.notion import api, client, export, normalize, normalize_api


def _detect(name: str, members: list[str] | None, is_dir: bool) -> str | None:
    if is_dir:
        return "notion_export"  # any folder Slack did not claim
    if members is not None and any(n.lower().endswith((".md", ".csv", ".zip")) for n in members):
        return "notion_export"
    return None


PLATFORM = Platform(
    name="notion",
    label="Notion",
    readers={"notion_export": export.read_notion_export},
    detect=_detect,
    normalizers={**normalize.NORMALIZERS, **normalize_api.NORMALIZERS},
    context_types=frozenset({"notion_export_meta"}),
    api=LiveApi(
        provider="notion_api",
        credentials=("token",),
        client=client.NotionApi,
        fetcher=fetcher_of(api.NotionFetcher, api.NotionLimits),
        classify=client.classify_notion,
        rates=client.RATES,
        probe=client.probe,
        tier_limits={"free": 10, "starter": 25, "pro": None},
        resource_type="page",
        rank=api.rank,
    ),
)
