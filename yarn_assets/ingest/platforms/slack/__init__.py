"""Slack: workspace exports (zip or folder) and the Web API, into message and thread_reply items."""

from __future__ import annotations

from yarn_assets.ingest.platforms import LiveApi, Platform, fetcher_of
from yarn_assets.ingest.platforms.slack import api, client, export, normalize, normalize_frame


def _detect(name: str, members: list[str] | None, is_dir: bool) -> str | None:
    if members is not None and any(n.endswith(("users.json", "channels.json")) for n in members):
        return "slack_export"
    return None


PLATFORM = Platform(
    name="slack",
    label="Slack",
    readers={"slack_export": export.read_slack_export},
    detect=_detect,
    normalizers=normalize.NORMALIZERS,
    frame_normalizers=normalize_frame.FRAME_NORMALIZERS,
    context_types=frozenset({"slack_users", "slack_channels", "slack_export_meta"}),
    api=LiveApi(
        provider="slack_api",
        credentials=("bot_token",),
        client=client.SlackApi,
        fetcher=fetcher_of(api.SlackFetcher, api.SlackLimits),
        classify=client.classify_slack,
        rates=client.RATES,
        probe=client.probe,
        tier_limits={"free": 5, "starter": 15, "pro": None},
        resource_type="channel",
        rank=api.rank,
    ),
)
