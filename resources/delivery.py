"""Delivery configuration as a Dagster resource: SMTP, Slack token and the file outbox folder.

Only configuration lives here (resources never import domain code); the deliverables domain
builds its senders from it (``yarn_assets.deliverables.delivery.resource``).
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class DeliveryChannels(dg.ConfigurableResource):
    """Secrets (SMTP password, Slack token) are EnvVars: never in run config or the UI."""

    outbox_dir: str = Field(description="File outbox root (the embedded default destination).")
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "yarnnn <noreply@yarnnn.local>"
    slack_token: str | None = None
    slack_base_url: str = "https://slack.com/api/"
    timeout_seconds: float = 30.0
