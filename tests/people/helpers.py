"""People test helpers: users with addresses, imports landed through the real assets, mail built from corpus files."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from control_plane.models import User
from io_managers.predicates import Eq
from yarn_assets.core.partitions import ingest_key
from yarn_assets.ingest.assets import bronze_imported_items, silver_platform_content
from yarn_assets.ingest.import_jobs import register_import
from yarn_assets.people.assets import content_vectors, people_contacts, people_timeline
from yarn_assets.people.tables import CONTACTS, IDENTITIES, IDENTITY_LINKS, INTERACTIONS

PEOPLE_ASSETS = [people_timeline, people_contacts, content_vectors]


@dataclass
class PeopleHarness:
    resources: dict[str, Any]
    archive: Path
    today: str

    @property
    def store(self) -> Any:
        return self.resources["warehouse"].store

    def add_user(self, user_id: str, email: str | None = None, **prefs: Any) -> None:
        with self.resources["control_plane"].session() as session:
            if session.get(User, user_id) is None:
                session.add(User(id=user_id, email=email or f"{user_id}@example.com", name=user_id, tier="pro",
                                 timezone="UTC", preferences=prefs))

    def register(self, user_id: str, path: Path, provider: str | None = None, day: str | None = None) -> str:
        self.add_user(user_id)
        with self.resources["control_plane"].session() as session:
            job, _ = register_import(session, user_id=user_id, path=path, archive_root=self.archive,
                                     provider=provider, partition_date=dt.date.fromisoformat(day or self.today))
            return job.id

    def run(self, platform: str, day: str | None = None, people: bool = True) -> dg.ExecuteInProcessResult:
        assets = [bronze_imported_items, silver_platform_content, *(PEOPLE_ASSETS if people else [])]
        result = dg.materialize(assets, partition_key=ingest_key(day or self.today, platform),
                                resources=self.resources, instance=dg.DagsterInstance.ephemeral())
        assert result.success
        return result

    def people(self, platform: str, day: str | None = None) -> dg.ExecuteInProcessResult:
        result = dg.materialize(PEOPLE_ASSETS, partition_key=ingest_key(day or self.today, platform),
                                resources=self.resources, instance=dg.DagsterInstance.ephemeral())
        assert result.success
        return result

    def contacts(self, user_id: str) -> pl.DataFrame:
        return self.store.read(CONTACTS, Eq("user_id", user_id))

    def identities(self, user_id: str) -> pl.DataFrame:
        return self.store.read(IDENTITIES, Eq("user_id", user_id))

    def links(self, user_id: str) -> pl.DataFrame:
        return self.store.read(IDENTITY_LINKS, Eq("user_id", user_id))

    def interactions(self, user_id: str) -> pl.DataFrame:
        return self.store.read(INTERACTIONS, Eq("user_id", user_id))


def corpus_variant(corpus: Path, name: str, out: Path, *, replace: dict[str, str] | None = None,
                   add: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> Path:
    """A corpus message with headers changed (the file itself stays read-only); ``out`` is the new file."""
    msg = message_from_bytes((corpus / "mbox_eml" / name).read_bytes(), policy=policy.compat32)
    for header in (*drop, *(replace or {})):
        del msg[header]
    for header, value in {**(replace or {}), **(add or {})}.items():
        msg[header] = value
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(msg.as_bytes())
    return out
