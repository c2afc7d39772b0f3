"""User emails (the memory domain's weekly digests and suggestion emails): SMTP, or the file outbox.

With ``smtp_host`` set, mail goes out through SMTP (stdlib ``smtplib``; STARTTLS and login when
configured); without it, each message is written as an ``.eml`` file under
``<outbox>/mail/<user_id>/`` — the embedded default, so the demo runs without a mail server.
The password is a secret (an ``EnvVar`` in the resource) and never appears in logs or metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

import dagster as dg
from pydantic import Field

from control_plane.user_ids import path_segment
from resources.smtp import SmtpServer


@dataclass(frozen=True)
class SentMail:
    transport: str  # smtp | outbox
    message_id: str
    location: str  # SMTP host:port or the .eml path


class MemoryMailer(dg.ConfigurableResource):
    """Sends one message to one user; the caller decides whether it may (at-most-once ledger)."""

    smtp_host: str | None = Field(default=None, description="SMTP server; None writes to the file outbox.")
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, description="An EnvVar; never logged.")
    smtp_starttls: bool = False
    mail_from: str = "yarnnn <noreply@yarnnn.local>"
    outbox_dir: str = Field(description="Folder for .eml files when no SMTP server is configured.")
    timeout_seconds: float = 30.0

    def build(self, *, to: str, subject: str, text: str, html: str | None = None,
              idempotency_key: str | None = None) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.mail_from
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        domain = self.mail_from.rsplit("@", 1)[-1].strip("> ") or "yarnnn.local"
        token = re.sub(r"[^A-Za-z0-9.\-]", ".", idempotency_key) if idempotency_key else None
        msg["Message-ID"] = f"<{token}@{domain}>" if token else make_msgid(domain=domain)
        msg.set_content(text)
        if html:
            msg.add_alternative(html, subtype="html")
        return msg

    def send(self, *, user_id: str, to: str, subject: str, text: str, html: str | None = None,
             idempotency_key: str | None = None) -> SentMail:
        if not to or "@" not in to:
            raise ValueError(f"user {user_id} has no usable email address")
        msg = self.build(to=to, subject=subject, text=text, html=html, idempotency_key=idempotency_key)
        message_id = str(msg["Message-ID"])
        if not self.smtp_host:
            folder = Path(self.outbox_dir) / "mail" / path_segment(user_id)
            folder.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9._-]", "_", message_id.strip("<>"))[:150] + ".eml"
            path = folder / name
            path.write_bytes(bytes(msg))
            return SentMail("outbox", message_id, str(path))
        server = SmtpServer(self.smtp_host, self.smtp_port, self.smtp_username, self.smtp_password,
                            self.smtp_starttls, self.timeout_seconds)
        refused = server.send(msg, from_addr=parseaddr(self.mail_from)[1], to_addrs=[to])
        if refused:
            raise RuntimeError(f"SMTP server {server.address} refused {to}: {refused}")
        return SentMail("smtp", message_id, f"{self.smtp_host}:{self.smtp_port}")
