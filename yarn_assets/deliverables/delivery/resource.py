"""Delivery configuration as a Dagster resource: SMTP, Slack token and the file outbox folder."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from yarn_assets.deliverables.delivery.files import FileOutbox
from yarn_assets.deliverables.delivery.slack import SlackSender
from yarn_assets.deliverables.delivery.smtp import SmtpSender


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

    def smtp(self) -> SmtpSender:
        return SmtpSender(host=self.smtp_host, port=self.smtp_port, username=self.smtp_username,
                          password=self.smtp_password, starttls=self.smtp_starttls, mail_from=self.mail_from,
                          timeout=self.timeout_seconds)

    def slack(self) -> SlackSender:
        return SlackSender(token=self.slack_token, base_url=self.slack_base_url, timeout=int(self.timeout_seconds))

    def files(self) -> FileOutbox:
        return FileOutbox(self.outbox_dir)
