"""Fixtures of the memory tests: a control plane with two users, resources, chat import helpers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import time_machine

from control_plane import db
from control_plane.models import User
from resources.control_plane import ControlPlane
from tests.fakes.smtp import SmtpServer
from yarn_assets.ingest import import_jobs

#: The memory tests describe one calendar week (Monday 2026-11-16 to Monday 2026-11-23): weekdays,
#: ISO weeks, local digest hours in Paris and New York. Their clock is frozen here (ticking) for the
#: whole module, fixtures included, so the code's own ``datetime.now()`` (record times, which
#: partitions exist) and the week's fixed dates never disagree, whatever the real date.
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module", autouse=True)
def _clock_in_the_week() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def cp(settings) -> ControlPlane:  # type: ignore[no-untyped-def]
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    with db.session_scope(url) as s:
        s.add_all([
            User(id="alice", email="alice@northwind.example", name="Alice", tier="pro", timezone="Europe/Paris",
                 created_at=NOW - dt.timedelta(days=60)),
            User(id="bob", email="bob@contoso.example", name="Bob", tier="starter", timezone="America/New_York",
                 created_at=NOW - dt.timedelta(days=60)),
        ])
    return ControlPlane(url=url)


def write_jsonl(path: Path, records: Sequence[dict[str, Any] | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def chat_line(session_id: str, seq: int, role: str, content: str, at: dt.datetime, **extra: Any) -> dict[str, Any]:
    return {"session_id": session_id, "role": role, "content": content, "sequence": seq,
            "created_at": at.isoformat().replace("+00:00", "Z"), **extra}


def register_chat(settings, user_id: str, path: Path, day: str) -> str:  # type: ignore[no-untyped-def]
    with db.session_scope(settings.resolved_control_plane_url) as s:
        job, _ = import_jobs.register_import(s, user_id=user_id, path=path, provider="chat_jsonl",
                                             archive_root=settings.resolved_home / "imports",
                                             partition_date=dt.date.fromisoformat(day))
        return job.id


def run(defs_or_assets, resources: dict[str, Any], key: str, instance=None) -> dg.ExecuteInProcessResult:  # type: ignore[no-untyped-def]
    result = dg.materialize(defs_or_assets, partition_key=key, resources=resources, instance=instance,
                            raise_on_error=True)
    assert result.success
    return result


@pytest.fixture
def smtp_server():  # type: ignore[no-untyped-def]
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""
    with SmtpServer() as server:
        yield server
