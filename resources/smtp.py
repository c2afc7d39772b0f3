"""The one SMTP transport behind every mail yarnnn sends: deliverables, digests and suggestion
mails, operator alerts. Each caller builds its own message and decides about retries (a
deliverable is never resent blindly; an alert may be); the session itself lives here."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    timeout: float = 30.0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def send(self, msg: EmailMessage, *, from_addr: str, to_addrs: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        """Send ``msg`` in one SMTP session (STARTTLS and login when configured).

        Returns the recipients the server refused; raises ``smtplib.SMTPException``/``OSError``
        when the session fails, and ``ValueError`` when a login has no password (a missing secret
        must never turn into an anonymous attempt).
        """
        if self.username and not self.password:
            raise ValueError("YARNNN_SMTP_USERNAME is set but YARNNN_SMTP_PASSWORD is not")
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
            return smtp.send_message(msg, from_addr=from_addr, to_addrs=list(to_addrs))
