"""TTL enforcement for every copy of a content body: silver rows, bronze raw bodies, rejects, archives.

Rules (each is tested):

* **silver**: a row is deleted when it is not retained and ``expires_at < cutoff``, unless a
  deliverable marked it in ``gold/retained_items``: then the same merge marks it retained (reason,
  reference, ``expires_at`` NULL) instead. The delete is
  pinned to the (platform, created_day) partitions that hold such rows, found first with a cheap
  projection, so it rewrites only the files that contain them; the rows' content vectors
  (``silver/content_vectors``, the people domain) are deleted first, so a run that dies in between
  leaves no vector without its row;
* **bronze**: a raw body is cleared (``raw = NULL``, ``body_expired_at = cutoff``; metadata, hash and
  size stay as the audit trail) once its own clock has passed (``fetched_at + TTL < cutoff``) and no
  live silver row (retained, or not yet expired) was normalized from it (same user, platform and
  ``raw_sha256``). The clock rule also covers bodies silver never held or no longer holds (edited,
  tombstoned, skipped as already expired). Context-only objects (Slack users.json…) of a batch stay
  while any object of that batch stays, so the survivors can still be re-normalized;
* **rejects**: their raw bytes are cleared on the same clock (``rejected_at + TTL < cutoff``);
* **import archives**: an archived export file is deleted once no body read from it is alive.

Nothing depends on what a previous run did: every step recomputes from the tables, so a run that
failed half-way is completed by the next one, and re-running an hour changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.models import ImportJob
from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, In, IsNull, Or, Predicate, Window, all_of
from yarn_assets.core.activity_log import ActivityEvent
from yarn_assets.core.tables import BRONZE_ITEMS, PLATFORM_CONTENT, REJECTS, TTL
from yarn_assets.deliverables.retention import KEY as RETENTION_KEY
from yarn_assets.deliverables.retention import pending_marks
from yarn_assets.deliverables.tables import RETAINED_ITEMS
from yarn_assets.ingest.normalize import context_only
from yarn_assets.people import vectors as people_vectors

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def expired_content_predicate(cutoff: dt.datetime) -> Predicate:
    """Silver rows past their TTL: not retained and ``expires_at < cutoff``."""
    pred = all_of(Eq("retained", False), Window("expires_at", EPOCH, cutoff))
    assert pred is not None
    return pred


def _pin(groups: dict[str, list[Any]], second: str) -> Predicate:
    """``(platform = p1 AND second IN (...)) OR (platform = p2 AND ...)`` for the partitions touched."""
    parts: list[Predicate] = [all_of(Eq("platform", p), In(second, vals)) for p, vals in sorted(groups.items())]  # type: ignore[misc]
    return parts[0] if len(parts) == 1 else Or(tuple(parts))


def _partition_groups(df: pl.DataFrame, second: str) -> dict[str, list[Any]]:
    pairs = df.select("platform", second).unique().sort("platform", second)
    groups: dict[str, list[Any]] = defaultdict(list)
    for platform, value in pairs.iter_rows():
        groups[platform].append(value)
    return dict(groups)


def _files_in(store: DeltaStore, spec: Any, groups: dict[str, list[Any]], second: str) -> tuple[int, int]:
    """(files in the pinned partitions, files in the table)."""
    files = store.files(spec)
    if files.is_empty() or second not in files.columns:
        return 0, files.height
    values = {(p, str(v)) for p, vals in groups.items() for v in vals}
    in_scope = sum(1 for p, v in files.select("platform", second).iter_rows() if (p, str(v)) in values)
    return in_scope, files.height


@dataclass
class StepReport:
    rows: int = 0
    files_total: int = 0
    files_in_scope: int = 0
    files_removed: int = 0
    files_added: int = 0
    by_user: dict[str, int] = field(default_factory=dict)


@dataclass
class CleanupReport:
    cutoff: dt.datetime
    silver: StepReport = field(default_factory=StepReport)
    vectors: StepReport = field(default_factory=StepReport)
    silver_by_user_platform: dict[str, dict[str, int]] = field(default_factory=dict)
    bronze: StepReport = field(default_factory=StepReport)
    bronze_protected: int = 0
    rejects: StepReport = field(default_factory=StepReport)
    archives: StepReport = field(default_factory=StepReport)
    archive_paths: list[str] = field(default_factory=list)
    retained_applied: int = 0  # expired rows kept because a deliverable marked them (gold/retained_items)

    @property
    def users(self) -> list[str]:
        return sorted(set(self.silver.by_user) | set(self.bronze.by_user) | set(self.rejects.by_user)
                      | set(self.archives.by_user))

    def user_counts(self, user_id: str) -> dict[str, Any]:
        return {
            "silver_rows_deleted": self.silver.by_user.get(user_id, 0),
            "silver_rows_by_platform": dict(sorted(self.silver_by_user_platform.get(user_id, {}).items())),
            "content_vectors_deleted": self.vectors.by_user.get(user_id, 0),
            "bronze_bodies_expired": self.bronze.by_user.get(user_id, 0),
            "reject_bodies_cleared": self.rejects.by_user.get(user_id, 0),
            "import_archives_deleted": self.archives.by_user.get(user_id, 0),
        }


# ------------------------------------------------------------------------------------ silver
def delete_expired_content(store: DeltaStore, cutoff: dt.datetime, report: CleanupReport) -> None:
    """Delete expired rows; a row a deliverable marked (``gold/retained_items``) is kept and marked instead.

    Both happen in one merge of the same pinned day files the delete rewrites anyway, so applying
    retention costs no extra silver rewrite (the deliverables never merge into silver)."""
    expired = expired_content_predicate(cutoff)
    lf = store.scan(PLATFORM_CONTENT, expired)
    if lf is None:
        return
    expiring = lf.select("user_id", "platform", "created_day", "resource_id", "external_id").collect()
    step = report.silver
    step.files_total = store.files(PLATFORM_CONTENT).height
    if expiring.is_empty():
        return
    marks = pending_marks(store, expiring)
    doomed = expiring.join(marks, on=[*RETENTION_KEY, "created_day"], how="anti") if marks.height else expiring
    report.retained_applied = marks.height
    report.vectors.rows = people_vectors.delete_items(store, doomed)
    if report.vectors.rows:
        for user_id, n in doomed.group_by("user_id").len().iter_rows():
            report.vectors.by_user[user_id] = int(n)  # items whose vectors went (chunks: ``vectors.rows``)
    groups = _partition_groups(expiring, "created_day")
    step.files_in_scope, step.files_total = _files_in(store, PLATFORM_CONTENT, groups, "created_day")
    if marks.is_empty():
        metrics = store.delete_with_metrics(PLATFORM_CONTENT, all_of(_pin(groups, "created_day"), expired))  # type: ignore[arg-type]
        step.rows = int(metrics.get("num_deleted_rows", 0))
        step.files_removed = int(metrics.get("num_removed_files", 0))
        step.files_added = int(metrics.get("num_added_files", 0))
    else:
        step.rows, step.files_removed, step.files_added = _delete_or_retain(store, expiring, marks, groups, expired)
    counts = doomed.group_by("user_id", "platform").len()
    for user_id, platform, n in counts.iter_rows():
        report.silver_by_user_platform.setdefault(user_id, {})[platform] = int(n)
        step.by_user[user_id] = step.by_user.get(user_id, 0) + int(n)


def _delete_or_retain(store: DeltaStore, expiring: pl.DataFrame, marks: pl.DataFrame,
                      groups: dict[str, list[Any]], expired: Predicate) -> tuple[int, int, int]:
    """One merge: marked rows become retained (reason, reference, no expiry), the others are deleted.

    Returns (rows deleted, files removed, files added)."""
    source = expiring.join(marks, on=[*RETENTION_KEY, "created_day"], how="left").with_columns(
        pl.col("retained_ref").is_not_null().alias("_keep"))
    stats = store.merge(
        PLATFORM_CONTENT, source, keys=RETENTION_KEY, pin=_pin(groups, "created_day"),
        delete_when=f"NOT s._keep AND {expired.to_sql('t')}",
        update={"retained": "true", "retained_reason": "s.retained_reason", "retained_ref": "s.retained_ref",
                "retained_at": "s.retained_at", "expires_at": "NULL"},
        update_when="s._keep AND (t.retained IS NULL OR t.retained = false)", insert=False,
    )
    return stats.deleted, stats.files_removed, stats.files_added


# ------------------------------------------------------------------------------------ bronze
def live_body_refs(store: DeltaStore, cutoff: dt.datetime) -> pl.DataFrame:
    """(user_id, platform, raw_sha256) of silver rows still alive at ``cutoff``."""
    lf = store.scan(PLATFORM_CONTENT)
    if lf is None:
        return pl.DataFrame(schema={"user_id": pl.Utf8, "platform": pl.Utf8, "raw_sha256": pl.Utf8})
    expired = expired_content_predicate(cutoff).to_polars().fill_null(False)
    live = lf.filter(~expired)
    marks = store.scan(RETAINED_ITEMS)
    if marks is not None:  # expired rows a deliverable marked stay (this hour's silver step keeps them)
        marked = lf.filter(expired).join(marks.select([*RETENTION_KEY, "created_day"]),
                                         on=[*RETENTION_KEY, "created_day"], how="semi")
        live = pl.concat([live, marked])
    return live.select("user_id", "platform", "raw_sha256").drop_nulls("raw_sha256").unique().collect()


def bronze_bodies_past_ttl(store: DeltaStore, cutoff: dt.datetime) -> tuple[pl.DataFrame, int]:
    """Bronze rows whose body should be cleared now, and how many past-TTL rows were kept (protected)."""
    columns = ["user_id", "platform", "ingest_date", "batch_id", "seq", "object_type", "raw_sha256"]
    frames = []
    for platform, ttl in sorted(TTL.items()):
        lf = store.scan(BRONZE_ITEMS, all_of(Eq("platform", platform), IsNull("body_expired_at"),
                                             Window("fetched_at", EPOCH, cutoff - ttl)))
        if lf is None:
            return BRONZE_ITEMS.empty().select(columns), 0
        frames.append(lf.select(columns).collect())
    candidates = pl.concat(frames) if frames else BRONZE_ITEMS.empty().select(columns)
    if candidates.is_empty():
        return candidates, 0
    refs = live_body_refs(store, cutoff).with_columns(pl.lit(True).alias("_live"))
    marked = candidates.join(refs, on=["user_id", "platform", "raw_sha256"], how="left").with_columns(
        pl.col("_live").fill_null(False)
    )
    protected_batches = marked.filter(pl.col("_live")).select("batch_id").unique()
    # a batch's context objects stay while any object of the batch stays
    keep_context = pl.col("object_type").is_in(list(context_only())) & pl.col("batch_id").is_in(
        protected_batches["batch_id"].to_list())
    expire = marked.filter(~pl.col("_live") & ~keep_context)
    return expire.drop("_live"), candidates.height - expire.height


def expire_bronze_bodies(store: DeltaStore, cutoff: dt.datetime, report: CleanupReport) -> None:
    expire, protected = bronze_bodies_past_ttl(store, cutoff)
    report.bronze_protected = protected
    step = report.bronze
    step.files_total = store.files(BRONZE_ITEMS).height
    if expire.is_empty():
        return
    groups = _partition_groups(expire, "ingest_date")
    step.files_in_scope, step.files_total = _files_in(store, BRONZE_ITEMS, groups, "ingest_date")
    source = expire.select("platform", "ingest_date", "batch_id", "seq").with_columns(
        pl.lit(cutoff).cast(pl.Datetime("us", "UTC")).alias("body_expired_at")
    )
    stats = store.merge(
        BRONZE_ITEMS, source, keys=("batch_id", "seq"), pin=_pin(groups, "ingest_date"),
        update={"raw": "NULL", "body_expired_at": "s.body_expired_at"},
        update_when="t.body_expired_at IS NULL", insert=False,
    )
    step.rows = stats.updated
    step.files_removed, step.files_added = stats.files_removed, stats.files_added
    for user_id, n in expire.group_by("user_id").len().iter_rows():
        step.by_user[user_id] = int(n)


def clear_reject_bodies(store: DeltaStore, cutoff: dt.datetime, report: CleanupReport) -> None:
    step = report.rejects
    frames = []
    for platform, ttl in sorted(TTL.items()):
        lf = store.scan(REJECTS, all_of(Eq("platform", platform), IsNull("raw", negate=True),
                                        Window("rejected_at", EPOCH, cutoff - ttl)))
        if lf is None:
            return
        frames.append(lf.select("user_id", "platform", "ingest_date").collect())
    doomed = pl.concat(frames)
    step.files_total = store.files(REJECTS).height
    if doomed.is_empty():
        return
    groups = _partition_groups(doomed, "ingest_date")
    step.files_in_scope, step.files_total = _files_in(store, REJECTS, groups, "ingest_date")
    parts: list[Predicate] = [
        all_of(Eq("platform", p), In("ingest_date", days), IsNull("raw", negate=True),  # type: ignore[misc]
               Window("rejected_at", EPOCH, cutoff - TTL[p]))
        for p, days in sorted(groups.items())
    ]
    metrics = store.update(REJECTS, parts[0] if len(parts) == 1 else Or(tuple(parts)), {"raw": "NULL"})
    step.rows = int(metrics.get("num_updated_rows", 0))
    step.files_removed = int(metrics.get("num_removed_files", 0))
    step.files_added = int(metrics.get("num_added_files", 0))
    for user_id, n in doomed.group_by("user_id").len().iter_rows():
        step.by_user[user_id] = int(n)


# ----------------------------------------------------------------------------- import archives
def _landed_at(job: ImportJob) -> dt.datetime | None:
    landed = (job.result or {}).get("fetched_at")
    if landed:
        return dt.datetime.fromisoformat(landed).astimezone(dt.UTC)
    return job.completed_at


def delete_expired_archives(store: DeltaStore, session: Session, archive_root: Path, cutoff: dt.datetime,
                            report: CleanupReport) -> None:
    """Delete archived export files whose every body has expired (shared files: all their jobs).

    A file shared with a job of a platform without TTL (a chat export) is kept."""
    root = archive_root.resolve()
    # only platform-content exports have a TTL (chat exports feed memory and are kept)
    jobs = list(session.scalars(select(ImportJob).where(ImportJob.status.in_(("completed", "failed")),
                                                        ImportJob.platform.in_(list(TTL)))))
    by_path: dict[str, list[ImportJob]] = defaultdict(list)
    for job in jobs:
        by_path[job.stored_path].append(job)
    kept_elsewhere = set(session.scalars(select(ImportJob.stored_path).where(ImportJob.platform.not_in(list(TTL)))))
    candidates: dict[str, list[ImportJob]] = {}
    for path, group in by_path.items():
        target = Path(path)
        if not target.exists() or root not in target.resolve().parents or path in kept_elsewhere:
            continue
        if all((landed := _landed_at(j)) is not None and landed + TTL[j.platform] < cutoff for j in group):
            candidates[path] = group
    if not candidates:
        return
    batch_ids = [j.id for group in candidates.values() for j in group]
    alive: set[str] = set()
    for spec, live in ((BRONZE_ITEMS, IsNull("body_expired_at")), (REJECTS, IsNull("raw", negate=True))):
        lf = store.scan(spec, all_of(In("batch_id", batch_ids), live))
        if lf is not None:
            alive |= set(lf.select("batch_id").unique().collect()["batch_id"].to_list())
    for path, group in sorted(candidates.items()):
        if any(j.id in alive for j in group):
            continue
        target = Path(path)
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
        parent = target.parent
        if parent != root and root in parent.parents and not any(parent.iterdir()):
            parent.rmdir()
        report.archive_paths.append(path)
        report.archives.rows += 1
        for j in group:
            report.archives.by_user[j.user_id] = report.archives.by_user.get(j.user_id, 0) + 1


# ------------------------------------------------------------------------------------- events
def cleanup_events(report: CleanupReport, partition_key: str) -> list[ActivityEvent]:
    """One ``content_cleanup`` event per affected user, with that user's own counts only."""
    events = []
    for user_id in report.users:
        counts = report.user_counts(user_id)
        by_platform = counts["silver_rows_by_platform"]
        parts = [f"Removed {counts['silver_rows_deleted']} expired item(s)"]
        if by_platform:
            parts[0] += " (" + ", ".join(f"{p} {n}" for p, n in by_platform.items()) + ")"
        parts.append(f"expired {counts['bronze_bodies_expired']} raw bodies")
        if counts["reject_bodies_cleared"]:
            parts.append(f"cleared {counts['reject_bodies_cleared']} rejected bodies")
        if counts["import_archives_deleted"]:
            parts.append(f"deleted {counts['import_archives_deleted']} archived export file(s)")
        events.append(
            ActivityEvent(
                user_id=user_id, event_type="content_cleanup", summary="; ".join(parts),
                idempotency_key=f"content_cleanup:{partition_key}",
                metadata={"cutoff": report.cutoff.isoformat(), "partition": partition_key, **counts},
                created_at=report.cutoff, event_date=report.cutoff.date(),
            )
        )
    return events


def summary_table(report: CleanupReport) -> str:
    lines = ["| copy | rows | files in scope | files total | files removed | files added |",
             "|---|---|---|---|---|---|"]
    for name, step in (("silver rows", report.silver), ("bronze bodies", report.bronze),
                       ("reject bodies", report.rejects)):
        lines.append(f"| {name} | {step.rows} | {step.files_in_scope} | {step.files_total} | "
                     f"{step.files_removed} | {step.files_added} |")
    return "\n".join(lines)


def per_user_json(report: CleanupReport) -> str:
    return json.dumps({u: report.user_counts(u) for u in report.users}, sort_keys=True)
