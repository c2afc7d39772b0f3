"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""

from __future__ import annotations

import email
import email.policy
import socket
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[return-value]

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        return body.get_content() if body is not None else ""

    def html(self) -> str:
        body = self.message.get_body(preferencelist=("html",))
        return body.get_content() if body is not None else ""


@dataclass
class _Handler:
    inbox: list[ReceivedMail]
    fail_next: list[str] = field(default_factory=list)  # SMTP replies to give instead of accepting

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_next:
            return self.fail_next.pop(0)
        self.inbox.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


class SmtpServer:
    """``with SmtpServer() as smtp: ... smtp.port ... smtp.inbox``; ``smtp.fail_next.append("451 try later")``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox: list[ReceivedMail] = []
        self._handler = _Handler(self.inbox)
        self.fail_next = self._handler.fail_next
        self._controller: Any = None

    def start(self) -> SmtpServer:
        """Listen on ``port`` (again, after :meth:`stop`: tests take the server down and back up)."""
        from aiosmtpd.controller import Controller

        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        while len(self.inbox) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.inbox)
