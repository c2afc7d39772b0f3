"""The senders of each delivery channel, built from the ``delivery`` resource's configuration."""

from __future__ import annotations

from resources.delivery import DeliveryChannels
from yarn_assets.deliverables.delivery.files import FileOutbox
from yarn_assets.deliverables.delivery.slack import SlackSender
from yarn_assets.deliverables.delivery.smtp import SmtpSender

__all__ = ["DeliveryChannels", "file_outbox", "slack_sender", "smtp_sender"]


def smtp_sender(channels: DeliveryChannels) -> SmtpSender:
    return SmtpSender(host=channels.smtp_host, port=channels.smtp_port, username=channels.smtp_username,
                      password=channels.smtp_password, starttls=channels.smtp_starttls, mail_from=channels.mail_from,
                      timeout=channels.timeout_seconds)


def slack_sender(channels: DeliveryChannels) -> SlackSender:
    return SlackSender(token=channels.slack_token, base_url=channels.slack_base_url,
                       timeout=int(channels.timeout_seconds))


def file_outbox(channels: DeliveryChannels) -> FileOutbox:
    return FileOutbox(channels.outbox_dir)
