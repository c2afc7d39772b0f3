"""A small, realistic sample workspace in the real export formats (generated, never downloaded)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path


@dataclass(frozen=True)
class SampleUser:
    id: str
    email: str
    name: str
    tier: str
    timezone: str


@dataclass(frozen=True)
class SampleExport:
    user_id: str
    provider: str
    path: Path


@dataclass
class SampleWorkspace:
    users: list[SampleUser]
    exports: list[SampleExport]


USERS = [
    SampleUser("alice", "alice@northwind.example", "Alice Moreau", "pro", "Europe/Paris"),
    SampleUser("bob", "bob@contoso.example", "Bob Okafor", "starter", "America/New_York"),
]


def _mbox(user: SampleUser, out: Path, now: dt.datetime) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "Inbox.mbox"
    lines = []
    for i, (sender, subject, body) in enumerate(
        [
            ("Dana Lee <dana@partner.example>", "Q4 roadmap review", "Can we move the roadmap review to Thursday?"),
            ("Sam Ito <sam@partner.example>", "Invoice 2291", "Attached is the invoice for October."),
        ]
    ):
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = user.email
        msg["Subject"] = subject
        msg["Date"] = format_datetime(now - dt.timedelta(hours=6 * (i + 1)))
        msg["Message-ID"] = make_msgid(idstring=f"{user.id}{i}", domain="partner.example")
        msg.set_content(body)
        lines.append(f"From MAILER-DAEMON {now:%a %b %d %H:%M:%S %Y}\n".encode() + msg.as_bytes() + b"\n")
    path.write_bytes(b"".join(lines))
    return path


def generate_workspace(root: Path, now: dt.datetime) -> SampleWorkspace:
    exports = []
    for user in USERS:
        exports.append(SampleExport(user.id, "mbox", _mbox(user, root / user.id / "mail", now)))
    return SampleWorkspace(users=list(USERS), exports=exports)
