"""Import jobs: registering export files, claiming them for a run, recording the outcome.

A file is copied into ``<home>/imports/<sha256>/`` when registered, so a replay of the partition
(or a backfill after a parser fix) reads exactly the same bytes. The same file registered twice
for the same user and provider is one job.

Lifecycle: ``pending`` -> ``processing`` (claimed by a run; every claim is an attempt) ->
``landed`` (its bronze batch committed) -> ``completed`` (silver merged it; set by the silver
step). ``failed`` when the file is unreadable, when every object in it was rejected, or when its
runs died ``max_attempts`` times (the reason says which). A dead run's job goes back to
``pending`` (:func:`reset_dead`); nothing is retried forever.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dagster import DagsterInstance
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from control_plane.models import ImportJob, User, utcnow
from yarn_assets.core.runs import run_state
from yarn_assets.ingest.readers import PROVIDER_PLATFORM, detect_provider

REPLAY_TAG = "yarnnn/replay"
BACKFILL_TAG = "dagster/backfill"


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


def reset_dead(session: Session, instance: DagsterInstance | None, *, max_attempts: int,
               stale_after: dt.timedelta, now: dt.datetime | None = None) -> tuple[list[str], list[str]]:
    """``processing`` jobs whose run is dead go back to ``pending``, or to ``failed`` once they have
    had ``max_attempts`` claims; returns (reset ids, failed ids).

    A run the Dagster instance knows is judged by its status and its worker's health
    (:func:`yarn_assets.core.runs.run_state`): a live run is never reset, however long it takes;
    a run unknown to the instance is presumed dead after ``stale_after`` without progress.
    """
    now = now or utcnow()
    reset: list[str] = []
    failed: list[str] = []
    for job in list(session.scalars(select(ImportJob).where(ImportJob.status == "processing"))):
        state, why = run_state(instance, job.run_id, since=job.updated_at, stale_after=stale_after, now=now)
        if state == "alive":
            continue
        attempt = f"attempt {job.attempts} of {max_attempts} died ({why})"
        cond = [ImportJob.id == job.id, ImportJob.status == "processing", ImportJob.run_id == job.run_id]
        if job.attempts >= max_attempts:
            values = {"status": "failed", "error": f"gave up after {job.attempts} attempts: {attempt}",
                      "completed_at": now}
            target = failed
        else:
            values = {"status": "pending", "progress": 0, "error": None,
                      "progress_details": {**(job.progress_details or {}), "last_attempt": attempt}}
            target = reset
        done = session.execute(update(ImportJob).where(*cond).values(updated_at=now, **values)
                               .execution_options(synchronize_session=False))
        if done.rowcount:  # type: ignore[attr-defined]
            target.append(job.id)
    return reset, failed


def pending_by_partition(session: Session) -> dict[tuple[str, str], list[ImportJob]]:
    jobs = session.scalars(select(ImportJob).where(ImportJob.status == "pending").order_by(ImportJob.created_at))
    grouped: dict[tuple[str, str], list[ImportJob]] = {}
    for job in jobs:
        grouped.setdefault((job.partition_date, job.platform), []).append(job)
    return grouped


def claim(session: Session, job_id: str, run_id: str, *, inherit_from: Iterable[str] = (),
          max_attempts: int | None = None) -> bool:
    """Atomically take a job for this run; False if someone else has it.

    A ``pending`` job is taken; so is a ``processing`` job held by a run this run re-executes
    (``inherit_from``: Dagster's parent/root run ids of a retry), since that run died. Every claim
    counts an attempt; a job at ``max_attempts`` is left for the reset to fail with the reason.
    """
    held = [r for r in inherit_from if r]
    takeable = ImportJob.status == "pending"
    if held:
        takeable = or_(takeable, and_(ImportJob.status == "processing", ImportJob.run_id.in_(held)))
    cond = [ImportJob.id == job_id, takeable]
    if max_attempts is not None:
        cond.append(ImportJob.attempts < max_attempts)
    now = utcnow()
    result = session.execute(
        update(ImportJob)
        .where(*cond)
        .values(status="processing", run_id=run_id, started_at=func.coalesce(ImportJob.started_at, now),
                progress=0, error=None, attempts=ImportJob.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_landed(session: Session, job_id: str, run_id: str, result: dict[str, Any]) -> None:
    """Bronze committed this job's batch (silver has not merged it yet)."""
    job = session.get(ImportJob, job_id)
    assert job is not None
    now = utcnow()
    job.status, job.error, job.progress, job.result, job.run_id, job.landed_at = (
        "landed", None, 50, result, run_id, now)


def mark_failed(session: Session, job_id: str, error: str, result: dict[str, Any]) -> None:
    job = session.get(ImportJob, job_id)
    assert job is not None
    job.status, job.error, job.progress, job.result, job.completed_at = "failed", error, 100, result, utcnow()


def is_replay(tags: Mapping[str, str]) -> bool:
    """A run asked to re-land and re-normalize its whole partition: a backfill (parser fix) or the
    explicit ``yarnnn/replay: full`` tag. Any other run lands only what is pending."""
    return tags.get(REPLAY_TAG) == "full" or BACKFILL_TAG in tags


def retry_parents(tags: Mapping[str, str]) -> list[str]:
    """Run ids whose jobs a Dagster re-execution (run retry) may take over."""
    return [t for t in (tags.get("dagster/parent_run_id"), tags.get("dagster/root_run_id")) if t]


def reject_summary(rejects: Iterable[Any], limit: int = 3) -> list[str]:
    """The first distinct reject reasons (shortened), for the job's record and `yarnnn import list`."""
    seen: list[str] = []
    for r in rejects:
        reason = " ".join(str(r.reason).split())[:200]
        if reason not in seen:
            seen.append(reason)
            if len(seen) >= limit:
                break
    return seen


def jobs_in_partition(session: Session, day: str, platform: str) -> list[ImportJob]:
    return list(
        session.scalars(
            select(ImportJob)
            .where(ImportJob.partition_date == day, ImportJob.platform == platform)
            .order_by(ImportJob.created_at)
        )
    )
