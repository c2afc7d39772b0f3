"""Import jobs: registering export files, claiming them for a run, recording the outcome.

A file is copied into ``<home>/imports/<sha256>/`` when registered, so a replay of the partition
(or a backfill after a parser fix) reads exactly the same bytes. The same file registered twice
for the same user and provider is one job.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from control_plane.models import ImportJob, User, utcnow
from yarn_assets.ingest.readers import PROVIDER_PLATFORM, detect_provider

STALE_AFTER = dt.timedelta(minutes=10)


class ImportError_(ValueError):
    """A file cannot be registered (unknown user, unknown type, unreadable)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _archive(path: Path, archive_root: Path, digest: str) -> Path:
    target_dir = archive_root / digest
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    if path.is_dir():
        if not target.exists():
            shutil.copytree(path, target)
    elif not target.exists():
        shutil.copy2(path, target)
    return target


def _dir_sha256(path: Path) -> str:
    h = hashlib.sha256()
    for member in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(member.relative_to(path)).encode())
        h.update(member.read_bytes())
    return h.hexdigest()


def register_import(
    session: Session,
    *,
    user_id: str,
    path: Path,
    archive_root: Path,
    provider: str | None = None,
    partition_date: dt.date | None = None,
) -> tuple[ImportJob, bool]:
    """Register ``path`` for ``user_id``; returns (job, created). Re-registering is a no-op."""
    path = Path(path)
    if not path.exists():
        raise ImportError_(f"{path}: no such file")
    if session.get(User, user_id) is None:
        raise ImportError_(f"unknown user {user_id!r}; add it first (yarnnn users add)")
    try:
        provider = provider or detect_provider(path)
    except ValueError as exc:
        raise ImportError_(str(exc)) from exc
    if provider not in PROVIDER_PLATFORM:
        raise ImportError_(f"unknown provider {provider!r}; known: {sorted(PROVIDER_PLATFORM)}")
    digest = _dir_sha256(path) if path.is_dir() else _sha256(path)
    existing = session.scalars(
        select(ImportJob).where(
            ImportJob.user_id == user_id, ImportJob.provider == provider, ImportJob.file_sha256 == digest
        )
    ).first()
    if existing is not None:
        return existing, False
    stored = _archive(path, archive_root, digest)
    day = partition_date or dt.datetime.now(dt.UTC).date()
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    job = ImportJob(
        user_id=user_id,
        platform=PROVIDER_PLATFORM[provider],
        provider=provider,
        original_name=path.name,
        stored_path=str(stored),
        file_sha256=digest,
        size_bytes=size,
        partition_date=day.isoformat(),
        status="pending",
    )
    session.add(job)
    session.flush()
    return job, True


def scan_inbox(session: Session, inbox: Path, archive_root: Path) -> list[ImportJob]:
    """Register files dropped into ``<inbox>/<user_id>/``; each file leaves the inbox once registered.

    A file that cannot be registered is moved to ``<inbox>/<user_id>/_rejected/`` with a
    ``.error.txt`` beside it, so nothing is lost and nothing is retried forever.
    """
    created: list[ImportJob] = []
    if not inbox.exists():
        return created
    for user_dir in sorted(p for p in inbox.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        for entry in sorted(user_dir.iterdir()):
            if entry.name.startswith((".", "_")) or entry.name.endswith(".partial"):
                continue
            try:
                job, was_created = register_import(
                    session, user_id=user_dir.name, path=entry, archive_root=archive_root
                )
            except ImportError_ as exc:
                rejected = user_dir / "_rejected"
                rejected.mkdir(exist_ok=True)
                shutil.move(str(entry), rejected / entry.name)
                (rejected / f"{entry.name}.error.txt").write_text(str(exc) + "\n")
                continue
            if was_created:
                created.append(job)
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    return created


def reset_stale(session: Session, now: dt.datetime | None = None) -> int:
    """Jobs stuck in ``processing`` for over 10 minutes go back to ``pending`` (the original's rule)."""
    now = now or utcnow()
    result = session.execute(
        update(ImportJob)
        .where(ImportJob.status == "processing", ImportJob.started_at < now - STALE_AFTER)
        .values(status="pending", progress=0, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def pending_by_partition(session: Session) -> dict[tuple[str, str], list[ImportJob]]:
    jobs = session.scalars(select(ImportJob).where(ImportJob.status == "pending").order_by(ImportJob.created_at))
    grouped: dict[tuple[str, str], list[ImportJob]] = {}
    for job in jobs:
        grouped.setdefault((job.partition_date, job.platform), []).append(job)
    return grouped


def claim(session: Session, job_id: str, run_id: str) -> bool:
    """Atomically move a pending job to processing for this run; False if someone else has it."""
    result = session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == "pending")
        .values(status="processing", run_id=run_id, started_at=utcnow(), progress=0, error=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def jobs_in_partition(session: Session, day: str, platform: str) -> list[ImportJob]:
    return list(
        session.scalars(
            select(ImportJob)
            .where(ImportJob.partition_date == day, ImportJob.platform == platform)
            .order_by(ImportJob.created_at)
        )
    )
