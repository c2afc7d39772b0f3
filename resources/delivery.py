"""Delivery configuration as a Dagster resource: SMTP, Slack token and the file outbox folder.

Only configuration lives here (resources never import domain code); the deliverables domain
builds its senders from it (``yarn_assets.deliverables.delivery.resource``).
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class DeliveryChannels(dg.ConfigurableResource):
    """Secrets (SMTP password, Slack token, credential key) are EnvVars: never in run config or the UI."""

    outbox_dir: str = Field(description="File outbox root (the demo's transport when SMTP is not configured).")
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "yarnnn <noreply@yarnnn.local>"
    slack_token: str | None = Field(default=None, description="Operator bot token: fallback when a user has no "
                                    "Slack connection (explicit channel destinations only).")
    slack_base_url: str = "https://slack.com/api/"
    timeout_seconds: float = 30.0
    encryption_key: str | None = Field(default=None, description="Fernet key(s): reads the user's Slack connection.")
    default_channels: list[str] = Field(
        default_factory=lambda: ["email", "slack"],
        description="Where a deliverable without a destination goes: its user's email, then their Slack DM.",
    )
