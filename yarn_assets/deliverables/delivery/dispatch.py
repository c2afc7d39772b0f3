"""Where a version goes, and sending it there: every destination exactly once through the outbox.

Resolution (the only place a recipient is chosen; nothing in the content can change it):

* **No destination configured** (every signal-created deliverable): the channels of the
  ``delivery_default_channels`` setting, in order — ``email``: the user's address of record
  (``users.email``, set when the user is added); ``slack``: a DM to the user through **their own**
  Slack connection (its bot token, to the ``slack_user_id`` the OAuth flow stored). A default channel
  that cannot be used is skipped with a note (no Slack connection, or one without a Slack user id).
  Without SMTP, the email default becomes the **file outbox**, labelled as the demo's transport.
* **Explicit destinations**: email to the given address (empty: the user's); Slack to the given
  channel (empty: a DM to the user) posted with the user's Slack connection, or — only when the user
  has none and a channel is named — the operator bot token (``YARNNN_SLACK_DELIVERY_TOKEN``), the
  documented fallback; the file outbox.

Each resolved route is delivered through :func:`outbox.deliver_once`, keyed by (version, channel,
resolved target): "email first, Slack too" sends each once, and a retry resends only what failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.crypto import CredentialError
from control_plane.models import PlatformConnection, User
from yarn_assets.deliverables.delivery.base import CHANNEL_ID, DeliveryError, Destination, parse_destination
from yarn_assets.deliverables.delivery.outbox import DeliveryOutcome, SessionFactory, deliver_once
from yarn_assets.deliverables.delivery.resource import (
    DeliveryChannels,
    credential_cipher,
    file_outbox,
    slack_sender,
    smtp_configured,
    smtp_sender,
)

DEMO_TRANSPORT = "file outbox (the demo's transport: SMTP is not configured)"
VIA_CONNECTION = "the user's Slack connection"
VIA_OPERATOR = "the operator bot token (fallback: the user has no Slack connection)"


@dataclass(frozen=True)
class Route:
    dest: Destination  # concrete: the target is resolved
    via: str = ""
    token: str | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, str]:
        return {"platform": self.dest.channel, "target": self.dest.target, "via": self.via}


@dataclass
class Resolution:
    routes: list[Route] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # default channels skipped, and why
    errors: list[tuple[Destination, str]] = field(default_factory=list)  # explicit ones that cannot be used

    def targets(self) -> list[list[str]]:
        return [[r.dest.channel, r.dest.target] for r in self.routes]


@dataclass
class _Slack:
    status: str
    token: str | None
    user_id: str | None


def _slack_connection(session: Session, channels: DeliveryChannels, user_id: str) -> _Slack | None:
    """The user's Slack connection (read-only): its status, bot token and the user's Slack id."""
    conn = session.scalars(select(PlatformConnection).where(PlatformConnection.user_id == user_id,
                                                            PlatformConnection.platform == "slack")).first()
    if conn is None:
        return None
    try:
        creds = credential_cipher(channels).decrypt(conn.credentials_encrypted, what=f"slack connection of {user_id}")
    except CredentialError:
        return _Slack(status="unreadable", token=None, user_id=None)
    uid = creds.get("slack_user_id")
    return _Slack(status=conn.status, token=creds.get("bot_token") or creds.get("user_token"),
                  user_id=uid if isinstance(uid, str) and CHANNEL_ID.match(uid) else None)


def _slack_route(dest: Destination, slack: _Slack | None, channels: DeliveryChannels) -> Route | str:
    """A Slack route, or why there is none."""
    if slack is not None and slack.status == "active" and slack.token:
        target = dest.target or slack.user_id
        if not target:
            return "the Slack connection has no Slack user id to DM (reconnect Slack to enable DMs)"
        return Route(Destination("slack", target), VIA_CONNECTION, slack.token)
    if dest.target and channels.slack_token:
        return Route(dest, VIA_OPERATOR, channels.slack_token)
    if slack is not None:
        return f"the Slack connection is {slack.status}: reconnect needed"
    return "no Slack connection" + ("" if dest.target else " to DM the user through")


def resolve(session: Session, channels: DeliveryChannels, *, user_id: str,
            destination: dict[str, Any] | list[Any] | None) -> Resolution:
    """The concrete routes of a deliverable's destination for its user (see the module docstring)."""
    plan = parse_destination(destination)
    user = session.get(User, user_id)
    email = (user.email or "").strip() if user is not None else ""
    out = Resolution()
    slack: _Slack | bool | None = False  # read once, lazily

    def slack_conn() -> _Slack | None:
        nonlocal slack
        if slack is False:
            slack = _slack_connection(session, channels, user_id)
        return slack  # type: ignore[return-value]

    if plan.is_default:
        for channel in channels.default_channels:
            if channel == "email":
                if not smtp_configured(channels):
                    out.routes.append(Route(Destination("file", "outbox"), DEMO_TRANSPORT))
                elif email:
                    out.routes.append(Route(Destination("email", email), "the user's address"))
                else:
                    out.notes.append("email: the user has no address")
            elif channel == "slack":
                got = _slack_route(Destination("slack", ""), slack_conn(), channels)
                (out.routes.append(got) if isinstance(got, Route) else out.notes.append(f"slack: {got}"))
            elif channel == "file":
                out.routes.append(Route(Destination("file", "outbox"), "file outbox"))
        if not out.routes:
            out.routes.append(Route(Destination("file", "outbox"), "file outbox (no default channel could be used)"))
    else:
        for dest in plan.destinations:
            if dest.channel == "email":
                target = dest.target or email
                if target:
                    out.routes.append(Route(Destination("email", target), "configured address" if dest.target
                                            else "the user's address"))
                else:
                    out.errors.append((dest, "the user has no email address"))
            elif dest.channel == "slack":
                got = _slack_route(dest, slack_conn(), channels)
                (out.routes.append(got) if isinstance(got, Route) else out.errors.append((dest, got)))
            else:
                out.routes.append(Route(dest, "file outbox"))
    out.routes = list(dict.fromkeys(out.routes))
    return out


@dataclass
class DeliveryReport:
    """Every destination's outcome; ``status`` is delivered only when all of them were."""

    outcomes: list[DeliveryOutcome]
    routes: list[Route]
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "delivered" if self.outcomes and all(o.status == "delivered" for o in self.outcomes) else "failed"

    @property
    def error(self) -> str | None:
        bad = [f"{o.channel}:{o.target}: {o.error}" for o in self.outcomes if o.status != "delivered"]
        return "; ".join(bad)[:1000] if bad else None

    @property
    def duplicate(self) -> bool:
        return bool(self.outcomes) and all(o.duplicate for o in self.outcomes)

    @property
    def attempts(self) -> int:
        return max((o.attempts for o in self.outcomes), default=0)

    @property
    def external_id(self) -> str | None:
        return next((o.external_id for o in self.outcomes if o.external_id), None)

    @property
    def channel(self) -> str:
        return ",".join(o.channel for o in self.outcomes)

    @property
    def target(self) -> str:
        return ",".join(o.target for o in self.outcomes)

    def destination_json(self) -> str:
        return json.dumps({"routes": [r.as_dict() for r in self.routes], "notes": self.notes}, sort_keys=True)


def send_route(channels: DeliveryChannels, route: Route, *, user_id: str, deliverable_id: str, deliverable_type: str,
               title: str, version_id: str, version_number: int, text: str, row: dict[str, Any]) -> str:
    """Send ``text`` along one resolved route; returns the channel's id of what it sent."""
    subject = f"{title} (v{version_number})"
    dest = route.dest
    if dest.channel == "email":
        return smtp_sender(channels).send(to=dest.target, subject=subject, markdown_text=text,
                                    message_id=f"<{version_id}@deliverables.yarnnn>")
    if dest.channel == "slack":
        return slack_sender(channels, route.token).send(channel=dest.target, title=subject, markdown_text=text)
    header = {"deliverable": deliverable_id, "type": deliverable_type, "version": str(version_number),
              "generated_at": str(row.get("generated_at")), "model": str(row.get("model")),
              "offline": str(row.get("offline")).lower(), "transport": route.via or "file outbox"}
    return file_outbox(channels).send(user_id=user_id, deliverable_id=deliverable_id, version_number=version_number,
                                 version_id=version_id, title=subject, markdown_text=text, header=header)


def deliver_all(session_factory: SessionFactory, channels: DeliveryChannels, *, deliverable: Any, version: Any,
                text: str, row: dict[str, Any], run_id: str | None = None, force: bool = False,
                send: Callable[..., str] = send_route) -> DeliveryReport:
    """Resolve the deliverable's destinations and deliver ``text`` to each exactly once.

    ``deliverable`` has ``id, user_id, title, deliverable_type, destination``; ``version`` has
    ``id, version_number``. ``force`` re-arms the outbox rows (an operator's resend).
    """
    with session_factory() as session:
        res = resolve(session, channels, user_id=deliverable.user_id, destination=deliverable.destination)
    outcomes = [DeliveryOutcome("failed", d.channel, d.target, error=why) for d, why in res.errors]
    for route in res.routes:
        outcomes.append(deliver_once(
            session_factory, version_id=version.id, deliverable_id=deliverable.id, dest=route.dest, run_id=run_id,
            force=force, send=lambda r=route: send(
                channels, r, user_id=deliverable.user_id, deliverable_id=deliverable.id,
                deliverable_type=deliverable.deliverable_type, title=deliverable.title, version_id=version.id,
                version_number=version.version_number, text=text, row=row),
        ))
    return DeliveryReport(outcomes=outcomes, routes=res.routes, notes=res.notes)


def configured_but_unusable(channels: DeliveryChannels, destination: dict[str, Any] | None) -> list[str]:
    """Warnings for a deliverable being created: email configured (explicitly or by default) without SMTP."""
    plan = parse_destination(destination)
    wants_email = (any(d.channel == "email" for d in plan.destinations) if not plan.is_default
                   else "email" in channels.default_channels)
    if wants_email and not smtp_configured(channels):
        where = ("its email destination" if not plan.is_default
                 else "the default (the user's email) goes to the file outbox, the demo's transport")
        return [f"email delivery is configured but SMTP is not (YARNNN_SMTP_HOST is unset): {where}"
                + (" will fail until it is set" if not plan.is_default else "")]
    return []


__all__ = ["DEMO_TRANSPORT", "DeliveryError", "DeliveryReport", "Resolution", "Route", "configured_but_unusable",
           "deliver_all", "resolve", "send_route"]
