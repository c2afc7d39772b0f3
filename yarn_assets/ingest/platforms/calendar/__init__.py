"""Calendar: .ics files and the Google Calendar API, into event items (recurrences expanded, bounded)."""

from __future__ import annotations

from yarn_assets.ingest.budget import Rate
from yarn_assets.ingest.platforms import LiveApi, Platform, fetcher_of
from yarn_assets.ingest.platforms.calendar import api, export, normalize, normalize_api
from yarn_assets.ingest.platforms.google import GOOGLE_CREDENTIALS, GoogleApi, classify_google


def _detect(name: str, members: list[str] | None, is_dir: bool) -> str | None:
    return "ics" if name.endswith(".ics") else None


PLATFORM = Platform(
    name="calendar",
    label="Google Calendar",
    readers={"ics": export.read_ics},
    detect=_detect,
    normalizers={**normalize.NORMALIZERS, **normalize_api.NORMALIZERS},
    api=LiveApi(
        provider="gcal_api",
        credentials=GOOGLE_CREDENTIALS,
        client=GoogleApi,
        fetcher=fetcher_of(api.CalendarFetcher, api.CalendarLimits),
        classify=classify_google,
        rates={"*": Rate(600, 10)},  # Calendar's per-user quota
        probe=api.probe,
        tier_limits={"free": None, "starter": None, "pro": None},
        resource_type="calendar",
    ),
)
