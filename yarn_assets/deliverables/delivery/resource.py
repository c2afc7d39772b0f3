"""Delivery configuration as a Dagster resource: SMTP, Slack, the file outbox and the default channels."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from control_plane.crypto import TokenCipher
from yarn_assets.deliverables.delivery.files import FileOutbox
from yarn_assets.deliverables.delivery.slack import SlackSender
from yarn_assets.deliverables.delivery.smtp import SmtpSender


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

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)

    def smtp(self) -> SmtpSender:
        return SmtpSender(host=self.smtp_host, port=self.smtp_port, username=self.smtp_username,
                          password=self.smtp_password, starttls=self.smtp_starttls, mail_from=self.mail_from,
                          timeout=self.timeout_seconds)

    def slack(self, token: str | None = None) -> SlackSender:
        """A sender with ``token`` (the user's connection), else the operator token."""
        return SlackSender(token=token or self.slack_token, base_url=self.slack_base_url,
                           timeout=int(self.timeout_seconds))

    def files(self) -> FileOutbox:
        return FileOutbox(self.outbox_dir)

    def cipher(self) -> TokenCipher:
        return TokenCipher(self.encryption_key)
