"""Landing import jobs into bronze: the steps every import asset shares, whatever its bronze table.

``bronze/imported_items`` (platform content) and ``bronze/imported_chats`` (chat transcripts) both
take the jobs of their partition for the run (or every settled job in a replay), read each file
with its platform's reader (an unreadable file becomes one reject, never a failed run), stamp the
batch with the job's first landing time and record ``import_completed`` / ``import_failed``
events with the same idempotency key. One copy of each step lives here.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from control_plane.models import ImportJob, utcnow
from resources.input_limits import InputLimits
from yarn_assets.ingest import import_jobs
from yarn_assets.ingest.objects import RawObject, Reject
from yarn_assets.ingest.readers import reader_for, sample_bytes


def take_jobs(sessions: Callable[[], AbstractContextManager[Session]], day: str, platform: str, run_id: str,
              tags: Mapping[str, str], *, max_attempts: int | None,
              replayable: Iterable[str]) -> tuple[list[ImportJob], str]:
    """The jobs this run lands and why: ``new`` (claimed now), ``replay`` (a backfill or the replay tag
    re-lands every job in a ``replayable`` status whose stored file is still there) or
    ``nothing_pending`` (another run took them, or they are done). Jobs come back detached."""
    parents = import_jobs.retry_parents(tags)
    with sessions() as session:
        claimed = [
            j.id for j in import_jobs.jobs_in_partition(session, day, platform)
            if (j.status == "pending" or (j.status == "processing" and j.run_id in parents))
            and import_jobs.claim(session, j.id, run_id, inherit_from=parents, max_attempts=max_attempts)
        ]
    with sessions() as session:
        jobs = import_jobs.jobs_in_partition(session, day, platform)
        for j in jobs:
            session.expunge(j)
    if claimed:
        return [j for j in jobs if j.id in claimed], "new"
    if import_jobs.is_replay(tags):
        statuses = set(replayable)
        return [j for j in jobs if j.status in statuses and Path(j.stored_path).exists()], "replay"
    return [], "nothing_pending"


def unsettled(sessions: Callable[[], AbstractContextManager[Session]], day: str, platform: str,
              landed: Iterable[ImportJob]) -> list[str]:
    """Ids of the landed jobs still ``pending`` or ``processing`` (the import_jobs_settled check)."""
    mine = {j.id for j in landed}
    with sessions() as session:
        return [j.id for j in import_jobs.jobs_in_partition(session, day, platform)
                if j.id in mine and j.status in ("pending", "processing")]


def read_export(job: ImportJob, limits: InputLimits) -> tuple[list[RawObject], list[Reject]]:
    """Every raw object and reject the job's reader yields."""
    objects: list[RawObject] = []
    rejects: list[Reject] = []
    for out in reader_for(job.provider)(Path(job.stored_path), limits):
        (objects if isinstance(out, RawObject) else rejects).append(out)
    return objects, rejects


def read_or_reject(job: ImportJob, limits: InputLimits,
                   what: str = "items") -> tuple[list[RawObject], list[Reject], bool]:
    """:func:`read_export`, but a file that cannot be read (or holds nothing) is one reject with the
    reason and a sample of its bytes, so the other jobs of the partition still land. The flag says
    the file was unreadable (as opposed to read, with every object rejected)."""
    try:
        objects, rejects = read_export(job, limits)
        if not objects and not rejects:
            raise ValueError(f"no {job.provider} {what} found in {job.original_name}")
        return objects, rejects, False
    except Exception as exc:
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        raw = sample_bytes(Path(job.stored_path), limits.import_reject_sample_bytes)
        return [], [Reject(reason=f"{job.provider} export unreadable: {detail}", raw=raw,
                           location=job.original_name)], True


#: One landing time and one import event per job, shared with the platform imports' bronze asset.
landing_time = import_jobs.landing_time
import_event = import_jobs.job_event


def mark_completed(session: Session, job_id: str, result: dict[str, Any]) -> None:
    """The job is done in one step (its platform's silver is merged by a run of its own)."""
    job = session.get(ImportJob, job_id)
    assert job is not None
    job.status, job.error, job.progress, job.result, job.completed_at = "completed", None, 100, result, utcnow()
