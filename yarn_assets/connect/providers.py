"""The provider registry: consent providers by name, and which provider owns each platform."""

from __future__ import annotations

from yarn_assets.connect.base import Provider
from yarn_assets.connect.errors import ConnectError
from yarn_assets.connect.google import GoogleProvider
from yarn_assets.connect.notion import NotionProvider
from yarn_assets.connect.slack import SlackProvider

PROVIDERS: dict[str, Provider] = {p.name: p for p in (SlackProvider(), GoogleProvider(), NotionProvider())}
PLATFORM_PROVIDER: dict[str, str] = {platform: p.name for p in PROVIDERS.values() for platform in p.platforms}


def provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ConnectError(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}", "unknown_provider") from None


def for_platform(platform: str) -> Provider:
    try:
        return PROVIDERS[PLATFORM_PROVIDER[platform]]
    except KeyError:
        raise ConnectError(f"no OAuth provider for platform {platform!r}", "unknown_provider") from None
