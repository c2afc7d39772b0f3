"""Sample users and their content, landed through the product's own write path, for the
distributed tests: the demo's users and chat sessions (a week of them), imported to silver."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from control_plane import db
from control_plane.models import User
from demo.sample_chats import generate_chats
from demo.sample_workspace import USERS
from resources.settings import YarnSettings
from yarn_assets.ingest import import_jobs


def seed_users(settings: YarnSettings, now: dt.datetime) -> list[str]:
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    with db.session_scope(url) as s:
        for u in USERS:
            s.add(User(id=u.id, email=u.email, name=u.name, tier=u.tier, timezone=u.timezone,
                       created_at=now - dt.timedelta(days=30)))
    return [u.id for u in USERS]


def register_chats(settings: YarnSettings, now: dt.datetime, workdir: Path) -> Mapping[str, Path]:
    """A week of chat sessions per user (days_ago relative to ``now``), registered as imports."""
    url = settings.resolved_control_plane_url
    paths = generate_chats(workdir, now, {u.id: u.timezone for u in USERS})
    with db.session_scope(url) as s:
        for user_id, path in paths.items():
            import_jobs.register_import(s, user_id=user_id, path=path, provider="chat_jsonl",
                                        archive_root=settings.resolved_home / "imports", partition_date=now.date())
    return paths


def nights(now: dt.datetime, count: int) -> list[str]:
    """The last ``count`` daily partitions before ``now``, oldest first."""
    return [(now.date() - dt.timedelta(days=n)).isoformat() for n in range(count, 0, -1)]


def run_in_process(defs: dg.Definitions, job: str, key: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=key)
    assert result.success, f"{job} [{key}] failed"
    return result
