"""Sending a version's text to its deliverable's configured destination (the run, recipes, the CLI's resend)."""

from __future__ import annotations

from typing import Any

from control_plane.models import Deliverable, DeliverableVersion
from yarn_assets.deliverables.delivery.base import Destination
from yarn_assets.deliverables.delivery.resource import DeliveryChannels, file_outbox, slack_sender, smtp_sender


def send_to(channels: DeliveryChannels, dest: Destination, d: Deliverable, version: DeliverableVersion,
            text: str, row: dict[str, Any]) -> str:
    """Send ``text`` to the deliverable's configured destination (the only place a recipient is chosen)."""
    subject = f"{d.title} (v{version.version_number})"
    if dest.channel == "email":
        return smtp_sender(channels).send(to=dest.target, subject=subject, markdown_text=text,
                                         message_id=f"<{version.id}@deliverables.yarnnn>")
    if dest.channel == "slack":
        return slack_sender(channels).send(channel=dest.target, title=subject, markdown_text=text)
    return file_outbox(channels).send(
        user_id=d.user_id, deliverable_id=d.id, version_number=version.version_number, version_id=version.id,
        title=subject, markdown_text=text,
        header={"deliverable": d.id, "type": d.deliverable_type, "version": str(version.version_number),
                "generated_at": str(row.get("generated_at")), "model": str(row.get("model")),
                "offline": str(row.get("offline")).lower()},
    )
