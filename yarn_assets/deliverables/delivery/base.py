"""Destinations and the delivery error type shared by every channel.

A deliverable's ``destination`` (control plane, JSON) is one of:

* ``{}`` — **the default**: the deliverable's user, on the channels of the ``delivery_default_channels``
  setting (email first, Slack too; see :mod:`yarn_assets.deliverables.delivery.dispatch`);
* ``{"platform": "email" | "slack" | "file", "target": "..."}`` — one explicit destination; an empty
  email target is the user's own address, an empty Slack target a DM to the user;
* ``{"destinations": [{"platform": ..., "target": ...}, ...]}`` — several, each delivered once.

This module validates the syntax only; it imports no channel (the channels import it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

CHANNELS = ("email", "slack", "file")
_ALIASES = {"gmail": "email", "download": "file", "outbox": "file"}
MAX_DESTINATIONS = 5

#: a Slack conversation id (channel, group, DM, user) or a #name
CHANNEL_ID = re.compile(r"^(#[a-z0-9._-]{1,80}|[CDGU][A-Z0-9]{2,20})$")


class DeliveryError(RuntimeError):
    """A channel could not deliver (the message says why, never with credentials)."""


class DestinationError(ValueError):
    """A destination that cannot be delivered to (unknown channel, bad address or channel id)."""


def valid_address(addr: str) -> bool:
    """One plain mailbox (``a@b``): no display name, list, or header-injection characters."""
    _name, email = parseaddr(addr or "")
    return bool(email) and "@" in email and email == addr.strip() and not any(c in addr for c in ",;\r\n <>")


@dataclass(frozen=True)
class Destination:
    """One channel and target; an empty email/Slack target means "the deliverable's user"."""

    channel: str
    target: str

    def as_dict(self) -> dict[str, Any]:
        return {"platform": self.channel, "target": self.target}

    @property
    def label(self) -> str:
        return f"{self.channel}:{self.target or '(user)'}"


@dataclass(frozen=True)
class DestinationPlan:
    """What a deliverable asked for: explicit destinations, or none (the user's defaults)."""

    destinations: tuple[Destination, ...] = ()

    @property
    def is_default(self) -> bool:
        return not self.destinations

    def as_dict(self) -> dict[str, Any]:
        if not self.destinations:
            return {}
        if len(self.destinations) == 1:
            return self.destinations[0].as_dict()
        return {"destinations": [d.as_dict() for d in self.destinations]}

    # one-destination compatibility (callers written before several destinations existed)
    @property
    def channel(self) -> str:
        return self.destinations[0].channel if self.destinations else "default"

    @property
    def target(self) -> str:
        return self.destinations[0].target if self.destinations else ""


def _one(raw: dict[str, Any]) -> Destination:
    channel = str(raw.get("platform") or raw.get("channel") or "").lower()
    channel = _ALIASES.get(channel, channel)
    if channel not in CHANNELS:
        raise DestinationError(f"unknown destination {channel!r}; use one of {', '.join(CHANNELS)}")
    target = str(raw.get("target") or "").strip()
    if channel == "email" and target and not valid_address(target):
        raise DestinationError(f"email destination needs one valid address (or none: the user's), got {target!r}")
    if channel == "slack" and target and not CHANNEL_ID.match(target):
        raise DestinationError(f"Slack destination needs a channel id (C0123…), #name or none (a DM), got {target!r}")
    if channel == "file":
        target = target or "outbox"
    return Destination(channel, target)


def parse_destination(raw: dict[str, Any] | list[Any] | None) -> DestinationPlan:
    """The deliverable's configured destinations (validated, duplicates dropped); empty = the defaults."""
    if not raw:
        return DestinationPlan()
    items = raw if isinstance(raw, list) else raw.get("destinations") if "destinations" in raw else [raw]
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise DestinationError("destinations must be a list of {platform, target} objects")
    if len(items) > MAX_DESTINATIONS:
        raise DestinationError(f"at most {MAX_DESTINATIONS} destinations per deliverable, got {len(items)}")
    return DestinationPlan(tuple(dict.fromkeys(_one(x) for x in items)))
