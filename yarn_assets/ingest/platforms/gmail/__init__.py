"""Gmail: mbox (Takeout) and .eml files, and the Gmail API (RFC 822 bytes), into email items."""

from __future__ import annotations

from yarn_assets.ingest.budget import Rate
from yarn_assets.ingest.platforms import LiveApi, Platform, fetcher_of
from yarn_assets.ingest.platforms.gmail import api, export, normalize
from yarn_assets.ingest.platforms.google import GOOGLE_CREDENTIALS, GoogleApi, classify_google


def _detect(name: str, members: list[str] | None, is_dir: bool) -> str | None:
    if name.endswith(".mbox") or name == "mbox":
        return "mbox"
    if name.endswith((".eml", ".txt")):
        return "eml"
    return None


PLATFORM = Platform(
    name="gmail",
    label="Gmail",
    readers={"mbox": export.read_mbox, "eml": export.read_eml},
    detect=_detect,
    normalizers=normalize.NORMALIZERS,
    api=LiveApi(
        provider="gmail_api",
        credentials=GOOGLE_CREDENTIALS,
        client=GoogleApi,
        fetcher=fetcher_of(api.GmailFetcher, api.GmailLimits),
        classify=classify_google,
        rates={"*": Rate(3000, 50)},  # 250 quota units/s per user, messages.get costs 5
        probe=api.probe,
        tier_limits={"free": 5, "starter": 10, "pro": None},
        resource_type="user",
        rank=api.rank,
        resource_id=api.resource_id,
        never_select=api.never_select,
    ),
)
