"""Destinations and the delivery error type shared by every channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHANNELS = ("email", "slack", "file")
_ALIASES = {"gmail": "email", "download": "file", "outbox": "file"}


class DeliveryError(RuntimeError):
    """A channel could not deliver (the message says why, never with credentials)."""


class DestinationError(ValueError):
    """A destination that cannot be delivered to (unknown channel, bad address or channel id)."""


@dataclass(frozen=True)
class Destination:
    channel: str
    target: str

    def as_dict(self) -> dict[str, Any]:
        return {"platform": self.channel, "target": self.target}


def parse_destination(raw: dict[str, Any] | None) -> Destination:
    """The deliverable's configured destination; the file outbox when none is configured."""
    from yarn_assets.deliverables.delivery.slack import CHANNEL_ID
    from yarn_assets.deliverables.delivery.smtp import valid_address

    raw = raw or {}
    channel = str(raw.get("platform") or "file").lower()
    channel = _ALIASES.get(channel, channel)
    if channel not in CHANNELS:
        raise DestinationError(f"unknown destination {channel!r}; use one of {', '.join(CHANNELS)}")
    target = str(raw.get("target") or "").strip()
    if channel == "email" and not valid_address(target):
        raise DestinationError(f"email destination needs one valid address, got {target!r}")
    if channel == "slack" and not CHANNEL_ID.match(target):
        raise DestinationError(f"Slack destination needs a channel id (C0123…) or #name, got {target!r}")
    if channel == "file":
        target = target or "outbox"
    return Destination(channel, target)
