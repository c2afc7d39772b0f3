"""Ingest test helpers: a harness over real import jobs + Dagster + Delta, and the pure read/normalize path."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from control_plane.models import ImportJob, User
from io_managers.predicates import Eq, all_of
from yarn_assets.core.partitions import ingest_key
from yarn_assets.core.tables import BRONZE_ITEMS, PLATFORM_CONTENT, REJECTS
from yarn_assets.ingest import bronze
from yarn_assets.ingest.assets import bronze_imported_items, silver_platform_content
from yarn_assets.ingest.import_jobs import register_import
from yarn_assets.ingest.normalize import normalize_batch_frame
from yarn_assets.ingest.objects import RawObject, Reject
from yarn_assets.ingest.readers import PROVIDER_PLATFORM, reader_for


@dataclass
class IngestHarness:
    resources: dict[str, Any]
    archive: Path
    today: str

    @property
    def store(self) -> Any:
        return self.resources["warehouse"].store

    def add_user(self, user_id: str, timezone: str = "UTC", tier: str = "pro") -> None:
        with self.resources["control_plane"].session() as session:
            if session.get(User, user_id) is None:
                session.add(User(id=user_id, email=f"{user_id}@example.com", name=user_id, tier=tier,
                                 timezone=timezone))

    def register(self, user_id: str, path: Path, provider: str | None = None, *, day: str | None = None,
                 fetched_at: dt.datetime | None = None) -> str:
        """Register an import job (as the CLI does); ``fetched_at`` pins its landing time."""
        self.add_user(user_id)
        with self.resources["control_plane"].session() as session:
            job, _ = register_import(session, user_id=user_id, path=path, archive_root=self.archive,
                                     provider=provider, partition_date=dt.date.fromisoformat(day or self.today))
            if fetched_at is not None:
                job.result = {"fetched_at": fetched_at.isoformat()}
            return job.id

    def job(self, job_id: str) -> ImportJob:
        with self.resources["control_plane"].session() as session:
            job = session.get(ImportJob, job_id)
            assert job is not None
            session.expunge(job)
            return job

    def run(self, platform: str, day: str | None = None) -> dg.ExecuteInProcessResult:
        result = dg.materialize(
            [bronze_imported_items, silver_platform_content],
            partition_key=ingest_key(day or self.today, platform),
            resources=self.resources,
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success
        return result

    def silver(self, platform: str) -> pl.DataFrame:
        return self.store.read(PLATFORM_CONTENT, all_of(Eq("platform", platform)))

    def bronze(self, platform: str) -> pl.DataFrame:
        return self.store.read(BRONZE_ITEMS, all_of(Eq("platform", platform)))

    def rejects(self, platform: str) -> pl.DataFrame:
        return self.store.read(REJECTS, all_of(Eq("platform", platform)))


def read_and_normalize(path: Path, provider: str, *, fetched_at: dt.datetime | None = None,
                       user_id: str = "u1") -> tuple[pl.DataFrame, list[Reject], list[Reject], dict[str, int]]:
    """The pure path (no Dagster, no Delta): reader -> bronze frame -> normalizers.

    Returns (items, reader rejects, normalizer rejects, filtered counts).
    """
    from collections import Counter

    fetched_at = fetched_at or dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)
    out = list(reader_for(provider)(path))
    objects = [o for o in out if isinstance(o, RawObject)]
    read_rejects = [o for o in out if isinstance(o, Reject)]
    batch = bronze.BatchInfo(user_id, PROVIDER_PLATFORM[provider], fetched_at.date(), "import", provider, "batch-1",
                             fetched_at)
    filtered: Counter[str] = Counter()
    items, rejects = normalize_batch_frame(bronze.bronze_frame(objects, batch), filtered=filtered)
    return items, read_rejects, rejects, dict(filtered)


def meta(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["metadata"])
