"""Outbound notifications: SMTP mail and Slack ``chat.postMessage``, plus the operator's alert channels.

Generic on purpose (``send(to, subject, text, html)`` and ``post_slack(channel, text)``), so any
domain can reuse it; the run-failure sensor uses ``notify_operator``. Transient failures (connection
errors, SMTP 4xx, Slack rate limits) are retried a few times; anything else raises
:class:`NotificationError` naming the channel and the setting to fix, never a credential.
"""

from __future__ import annotations

import smtplib
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import dagster as dg
from pydantic import Field
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from resources.smtp import SmtpServer


class NotificationError(RuntimeError):
    """A notification could not be sent (after retries) or its channel is not configured."""


def _transient_smtp(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError | TimeoutError)


class Notifier(dg.ConfigurableResource):
    """SMTP and Slack senders built from settings (secrets arrive as ``EnvVar``)."""

    smtp_host: str | None = Field(default=None, description="SMTP server (YARNNN_SMTP_HOST).")
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, description="SMTP password (EnvVar).")
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 30.0
    mail_from: str = "yarnnn <noreply@yarnnn.local>"
    slack_base_url: str = "https://slack.com/api/"
    slack_token: str | None = Field(default=None, description="Slack bot token for chat.postMessage (EnvVar).")
    slack_timeout_seconds: float = 30.0
    attempts: int = Field(default=3, ge=1, description="Tries per message for transient failures.")
    operator_email: str | None = Field(default=None, description="Run-failure alerts by mail go here.")
    operator_slack_channel: str | None = Field(default=None, description="Run-failure alerts on Slack go here.")
    alert_channels: list[str] = Field(default_factory=list, description="email and/or slack (resolved settings).")
    ui_base_url: str = Field(default="http://127.0.0.1:3000", description="Dagster UI, for links in alerts.")

    # ------------------------------------------------------------------------------------ mail
    def build_message(self, to: str | Sequence[str], subject: str, text: str, html: str | None = None,
                      headers: Mapping[str, str] | None = None) -> EmailMessage:
        recipients = [to] if isinstance(to, str) else list(to)
        for addr in recipients:
            if not parseaddr(addr)[1] or "@" not in addr or any(c in addr for c in "\r\n"):
                raise NotificationError(f"invalid mail recipient {addr!r}")
        msg = EmailMessage()
        msg["From"] = self.mail_from
        msg["To"] = ", ".join(recipients)
        msg["Subject"] = " ".join(subject.split())[:200]
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain=parseaddr(self.mail_from)[1].partition("@")[2] or "yarnnn.local")
        msg["Auto-Submitted"] = "auto-generated"
        for name, value in (headers or {}).items():
            del msg[name]
            msg[name] = value
        msg.set_content(text)
        if html is not None:
            msg.add_alternative(html, subtype="html")
        return msg

    def send(self, to: str | Sequence[str], subject: str, text: str, html: str | None = None, *,
             headers: Mapping[str, str] | None = None) -> str:
        """Mail ``text`` (and ``html`` as the alternative part); returns the Message-ID."""
        if not self.smtp_host:
            raise NotificationError("mail needs YARNNN_SMTP_HOST to be set")
        msg = self.build_message(to, subject, text, html, headers)
        recipients = [to] if isinstance(to, str) else list(to)
        server = SmtpServer(self.smtp_host, self.smtp_port, self.smtp_username, self.smtp_password,
                            self.smtp_starttls, self.smtp_timeout_seconds)

        @retry(retry=retry_if_exception(_transient_smtp), stop=stop_after_attempt(self.attempts),
               wait=wait_exponential(multiplier=0.5, max=8), reraise=True)
        def deliver() -> dict[str, tuple[int, bytes]]:
            return server.send(msg, from_addr=parseaddr(self.mail_from)[1], to_addrs=recipients)

        try:
            refused = deliver()
        except (smtplib.SMTPException, OSError) as exc:
            raise NotificationError(
                f"mail to {', '.join(recipients)} via {self.smtp_host}:{self.smtp_port} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        if refused:
            raise NotificationError(f"SMTP server refused {sorted(refused)}")
        return str(msg["Message-ID"])

    # ----------------------------------------------------------------------------------- slack
    def slack_client(self) -> WebClient:
        if not self.slack_token:
            raise NotificationError("Slack messages need YARNNN_SLACK_DELIVERY_TOKEN to be set")
        client = WebClient(token=self.slack_token, base_url=self.slack_base_url,
                           timeout=int(self.slack_timeout_seconds))
        client.retry_handlers.extend([
            RateLimitErrorRetryHandler(max_retry_count=self.attempts - 1),
            ConnectionErrorRetryHandler(max_retry_count=self.attempts - 1),
        ])
        return client

    def post_slack(self, channel: str, text: str, blocks: list[dict] | None = None) -> dict[str, str]:
        """``chat.postMessage``; returns ``{"channel", "ts"}`` of the posted message."""
        try:
            resp = self.slack_client().chat_postMessage(channel=channel, text=text, blocks=blocks,
                                                        unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            raise NotificationError(
                f"Slack chat.postMessage to {channel} failed: {exc.response.get('error')}") from None
        except OSError as exc:
            raise NotificationError(
                f"Slack chat.postMessage to {channel} failed: {type(exc).__name__}: {exc}") from None
        return {"channel": str(resp.get("channel") or channel), "ts": str(resp.get("ts") or "")}

    # -------------------------------------------------------------------------------- operator
    def notify_operator(self, subject: str, text: str, html: str | None = None) -> dict[str, str]:
        """Send to every configured operator channel; returns ``{channel: "sent ..." | "failed: ..."}``.

        One channel failing does not stop the other; the caller records the outcome.
        """
        outcome: dict[str, str] = {}
        for channel in self.alert_channels:
            try:
                if channel == "email":
                    if not self.operator_email:
                        raise NotificationError("email alerts need YARNNN_OPERATOR_EMAIL to be set")
                    outcome["email"] = f"sent {self.send(self.operator_email, subject, text, html)}"
                elif channel == "slack":
                    if not self.operator_slack_channel:
                        raise NotificationError("Slack alerts need YARNNN_OPERATOR_SLACK_CHANNEL to be set")
                    posted = self.post_slack(self.operator_slack_channel, f"*{subject}*\n{text}")
                    outcome["slack"] = f"sent {posted['channel']}/{posted['ts']}"
                else:
                    raise NotificationError(f"unknown alert channel {channel!r}")
            except NotificationError as exc:
                outcome[channel] = f"failed: {exc}"
        return outcome
