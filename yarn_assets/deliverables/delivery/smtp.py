"""Email delivery over SMTP: a multipart/alternative message (plain-text Markdown + rendered HTML)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr

from resources.smtp import SmtpServer
from yarn_assets.deliverables.delivery.base import DeliveryError, valid_address
from yarn_assets.deliverables.delivery.render import markdown_to_html

__all__ = ["SmtpSender", "valid_address"]


@dataclass(frozen=True)
class SmtpSender:
    host: str | None
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    mail_from: str = "yarnnn <noreply@yarnnn.local>"
    timeout: float = 30.0

    def build(self, *, to: str, subject: str, markdown_text: str, message_id: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.mail_from
        msg["To"] = formataddr(("", to))
        msg["Subject"] = " ".join(subject.split())[:200]
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = message_id
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(markdown_text)
        msg.add_alternative(markdown_to_html(markdown_text, subject), subtype="html")
        return msg

    def send(self, *, to: str, subject: str, markdown_text: str, message_id: str) -> str:
        if not self.host:
            raise DeliveryError("email delivery needs YARNNN_SMTP_HOST to be set")
        if not valid_address(to):
            raise DeliveryError(f"invalid email recipient {to!r}")
        if not markdown_text.strip():
            raise DeliveryError("refusing to send an empty email")
        msg = self.build(to=to, subject=subject, markdown_text=markdown_text, message_id=message_id)
        envelope_from = parseaddr(self.mail_from)[1]
        server = SmtpServer(self.host, self.port, self.username, self.password, self.starttls, self.timeout)
        try:
            refused = server.send(msg, from_addr=envelope_from, to_addrs=[to])
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP delivery to {to} via {self.host}:{self.port} failed: "
                                f"{type(exc).__name__}: {exc}") from None
        if refused:
            raise DeliveryError(f"SMTP server refused {to}: {refused}")
        return message_id
