"""Import jobs: registering export files, claiming them for a run, recording the outcome.

A file is copied into ``<home>/imports/<sha256>/`` when registered, so a replay of the partition
(or a backfill after a parser fix) reads exactly the same bytes. The same file registered twice
for the same user and provider is one job. Only regular files and folders are registered: links,
devices, FIFOs and sockets are refused without being opened (docs/OPERATIONS.md "Input limits").

Lifecycle: ``pending`` -> ``processing`` (claimed by a run; every claim is an attempt) ->
``landed`` (its bronze batch committed) -> ``completed`` (silver merged it; set by the silver
step). ``failed`` when the file is unreadable, when every object in it was rejected, or when its
runs died ``max_attempts`` times (the reason says which). A dead run's job goes back to
``pending`` (:func:`reset_dead`); nothing is retried forever.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dagster import DagsterInstance
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from control_plane.models import ImportJob, User, utcnow
from control_plane.user_ids import InvalidUserId, validate_user_id
from resources.input_limits import InputLimits
from yarn_assets.core.activity_log import ActivityEvent
from yarn_assets.core.runs import run_state
from yarn_assets.ingest.import_files import ImportError_, check_entry, refused, stage_file, stage_folder
from yarn_assets.ingest.readers import PROVIDER_PLATFORM, detect_provider

__all__ = ["ImportError_", "check_entry"]

REPLAY_TAG = "yarnnn/replay"
BACKFILL_TAG = "dagster/backfill"


def register_import(
    session: Session,
    *,
    user_id: str,
    path: Path,
    archive_root: Path,
    provider: str | None = None,
    partition_date: dt.date | None = None,
    limits: InputLimits | None = None,
    inbox: Path | None = None,
) -> tuple[ImportJob, bool]:
    """Register ``path`` for ``user_id``; returns (job, created). Re-registering is a no-op.

    ``path`` is copied into the archive through a descriptor opened without following links, so
    what is hashed, stored and later read is the file that was checked (symlinks, devices, FIFOs
    and sockets are refused, also inside a folder). ``inbox``: the entry came from the inbox and
    must stay inside it (see :func:`check_entry`).
    """
    path = Path(path)
    try:
        validate_user_id(user_id)
    except InvalidUserId as exc:
        raise ImportError_(str(exc)) from None
    st = check_entry(path, inbox)
    if session.get(User, user_id) is None:
        raise ImportError_(f"unknown user {user_id!r}; add it first (yarnnn users add)")
    try:
        provider = provider or detect_provider(path, limits)
    except ValueError as exc:
        raise ImportError_(str(exc)) from None
    if provider not in PROVIDER_PLATFORM:
        raise ImportError_(f"unknown provider {provider!r}; known: {sorted(PROVIDER_PLATFORM)}")
    archive_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=archive_root))
    try:
        if stat.S_ISDIR(st.st_mode):
            digest, size = stage_folder(path, staging)
        else:
            digest, size = stage_file(path, staging)
        existing = session.scalars(
            select(ImportJob).where(
                ImportJob.user_id == user_id, ImportJob.provider == provider, ImportJob.file_sha256 == digest
            )
        ).first()
        if existing is not None:
            return existing, False
        target_dir = archive_root / digest
        target_dir.mkdir(exist_ok=True)
        stored = target_dir / path.name
        if not os.path.lexists(stored):
            os.rename(staging / path.name, stored)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    day = partition_date or dt.datetime.now(dt.UTC).date()
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


def _real_dir(parent: Path, name: str) -> Path:
    """``parent/name`` as a real folder: anything else squatting the name (a planted symlink) is moved aside."""
    target = parent / name
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        target.mkdir(exist_ok=True)
        return _real_dir(parent, name)
    if not stat.S_ISDIR(st.st_mode):
        os.rename(target, parent / f"{name}.not-a-folder-{os.urandom(4).hex()}")
        return _real_dir(parent, name)
    return target


def _write_new(folder: Path, name: str, text: str) -> None:
    """Write ``folder/name`` without following anything planted at that name (write aside, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, folder / name)


def _reject(folder: Path, entry: Path, reason: str) -> None:
    """Move ``entry`` (never followed: a rename moves a link itself) into ``folder/_rejected``."""
    rejected = _real_dir(folder, "_rejected")
    name = entry.name if len(entry.name.encode()) <= 200 else entry.name.encode()[:200].decode(errors="ignore")
    target = rejected / name
    while os.path.lexists(target):
        target = rejected / f"{name}.{os.urandom(3).hex()}"
    os.rename(entry, target)
    _write_new(rejected, f"{target.name}.error.txt", reason + "\n")


def _remove(entry: Path) -> None:
    if stat.S_ISDIR(os.lstat(entry).st_mode):
        shutil.rmtree(entry)
    else:
        entry.unlink()


def scan_inbox(session: Session, inbox: Path, archive_root: Path,
               limits: InputLimits | None = None) -> list[ImportJob]:
    """Register files dropped into ``<inbox>/<user_id>/``; each file leaves the inbox once registered.

    A file that cannot be registered is moved to ``<inbox>/<user_id>/_rejected/`` with a
    ``.error.txt`` beside it, so nothing is lost and nothing is retried forever. Nothing is
    followed: a user folder that is not a real folder or whose name is not a valid user id goes to
    ``<inbox>/_rejected/``; symlinks, devices, FIFOs, sockets, hard links and entries resolving
    outside the inbox (also inside a dropped folder) are refused without being opened.
    """
    created: list[ImportJob] = []
    if not inbox.exists():
        return created
    root = Path(os.path.realpath(inbox))
    for user_name in sorted(os.listdir(root)):
        if user_name.startswith(("_", ".")):
            continue
        user_dir = root / user_name
        try:
            mode = os.lstat(user_dir).st_mode
        except FileNotFoundError:  # removed while we looked
            continue
        if stat.S_ISREG(mode):
            continue  # a stray file beside the user folders: not ours to move
        try:
            if not stat.S_ISDIR(mode):
                raise refused(user_name, mode)
            validate_user_id(user_name)
        except (ImportError_, InvalidUserId) as exc:
            _reject(root, user_dir, f"{exc} (the inbox holds one folder per user id)")
            continue
        for name in sorted(os.listdir(user_dir)):
            if name.startswith((".", "_")) or name.endswith(".partial"):
                continue
            entry = user_dir / name
            try:
                job, was_created = register_import(
                    session, user_id=user_name, path=entry, archive_root=archive_root, limits=limits, inbox=root,
                )
            except ImportError_ as exc:
                if os.path.lexists(entry):  # (an entry removed meanwhile has nothing left to move)
                    _reject(user_dir, entry, str(exc))
                continue
            if was_created:
                created.append(job)
            if os.path.lexists(entry):
                _remove(entry)
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


def landing_time(job: ImportJob) -> dt.datetime:
    """First landing time of the job; retries and replays reuse it so bronze and silver come out identical."""
    previous = (job.result or {}).get("fetched_at")
    if previous:
        return dt.datetime.fromisoformat(previous)
    return (job.started_at or utcnow()).astimezone(dt.UTC)


def job_event(job: ImportJob, event_type: str, summary: str, metadata: dict[str, Any],
           when: dt.datetime) -> ActivityEvent:
    return ActivityEvent(
        user_id=job.user_id, event_type=event_type, summary=summary, idempotency_key=f"import:{job.id}",
        metadata={"import_job_id": job.id, "file": job.original_name, **metadata}, event_ref=job.id,
        created_at=when, event_date=dt.date.fromisoformat(job.partition_date),
    )
