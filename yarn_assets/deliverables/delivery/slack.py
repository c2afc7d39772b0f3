"""Slack delivery: ``chat.postMessage`` through slack_sdk's WebClient (base URL configurable)."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from yarn_assets.deliverables.delivery.base import CHANNEL_ID, DeliveryError
from yarn_assets.deliverables.delivery.render import markdown_to_mrkdwn

__all__ = ["CHANNEL_ID", "MAX_TEXT", "SlackSender"]

MAX_TEXT = 39_000


@dataclass(frozen=True)
class SlackSender:
    token: str | None
    base_url: str = "https://slack.com/api/"
    timeout: int = 30

    def send(self, *, channel: str, title: str, markdown_text: str) -> str:
        if not self.token:
            raise DeliveryError("Slack delivery needs the user's Slack connection or YARNNN_SLACK_DELIVERY_TOKEN")
        if not CHANNEL_ID.match(channel or ""):
            raise DeliveryError(f"invalid Slack channel {channel!r}")
        if not markdown_text.strip():
            raise DeliveryError("refusing to post an empty message")
        base = self.base_url if self.base_url.endswith("/") else self.base_url + "/"
        client = WebClient(token=self.token, base_url=base, timeout=self.timeout)
        text = f"*{markdown_to_mrkdwn(title)}*\n\n{markdown_to_mrkdwn(markdown_text)}"[:MAX_TEXT]
        try:
            resp = client.chat_postMessage(channel=channel, text=text, mrkdwn=True, unfurl_links=False)
        except SlackApiError as exc:
            raise DeliveryError(f"Slack chat.postMessage to {channel} failed: {exc.response.get('error')}") from None
        except (SlackClientError, OSError) as exc:
            raise DeliveryError(f"Slack chat.postMessage to {channel} failed: {type(exc).__name__}") from None
        return f"{resp.get('channel')}:{resp.get('ts')}"
