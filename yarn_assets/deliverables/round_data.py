"""What a round reads once for all its deliverables (:class:`Prefetch`) and where its writes collect (:class:`Writes`).

A run on its own reads its user's silver rows, sync registry, previous output and stored row itself
and writes its gold row, retention marks and event at once. In a round, each of these is one scan
or one commit for every deliverable of the round: the cost per deliverable stays flat in the number
of users (a per-user scan of a shared table made the round quadratic).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_plane.models import DeliverableVersion, SyncRegistry
from io_managers.delta_store import DeltaStore
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.deliverables.content import read_users_content
from yarn_assets.deliverables.retention import marks_of, write_marks
from yarn_assets.deliverables.sources import SourceRef
from yarn_assets.deliverables.versions import gold_rows, write_gold_rows

#: Statuses whose text may serve as the next version's "previous output".
PREVIOUS_STATUSES = ("delivered", "generated")


@dataclass
class Prefetch:
    """The round's shared reads, handed to every :class:`~yarn_assets.deliverables.run.DeliverableRun`."""

    silver: dict[str, pl.DataFrame]  # user_id -> the user's silver rows on the platforms the round reads
    registry: dict[str, list[SyncRegistry]] = field(default_factory=dict)  # user_id -> sync state
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # version_id -> gold row (resumed versions)
    previous: dict[str, str | None] = field(default_factory=dict)  # version_id -> previous version's text
    empty: pl.DataFrame = field(default_factory=pl.DataFrame)

    @classmethod
    def load(cls, store: DeltaStore, session: Session, wanted: Iterable[tuple[str, Sequence[SourceRef]]]
             ) -> Prefetch:
        """One silver scan (``user_id IN`` the round's users, pruned to their platforms) and one registry query."""
        users: set[str] = set()
        platforms: set[str] = set()
        for user_id, sources in wanted:
            users.add(user_id)
            platforms.update(s.platform for s in sources)
        registry: dict[str, list[SyncRegistry]] = defaultdict(list)
        if users:
            for reg in session.scalars(select(SyncRegistry).where(SyncRegistry.user_id.in_(sorted(users)))):
                registry[reg.user_id].append(reg)
            session.expunge_all()
        rows = read_users_content(store, sorted(users), sorted(platforms))
        silver = {str(k[0]): frame for k, frame in rows.partition_by("user_id", as_dict=True).items()}
        return cls(silver=silver, registry={u: registry.get(u, []) for u in users}, empty=rows.clear())

    def rows_of(self, user_id: str) -> pl.DataFrame:
        """One user's prefetched silver rows (an empty frame of the same columns when they have none)."""
        return self.silver.get(user_id, self.empty)

    def load_versions(self, store: DeltaStore, session: Session, versions: Sequence[DeliverableVersion],
                      resumed: set[str]) -> None:
        """The stored rows of resumed versions and every version's previous output: one control-plane
        query, then one gold scan by version id (pruned by ``created_at``)."""
        current = {v.id: v for v in versions}
        numbers = {v.deliverable_id: v.version_number for v in versions}
        prev: dict[str, int] = {}
        if numbers:
            q = (select(DeliverableVersion.deliverable_id, func.max(DeliverableVersion.version_number))
                 .where(DeliverableVersion.deliverable_id.in_(sorted(numbers)),
                        DeliverableVersion.status.in_(PREVIOUS_STATUSES),
                        DeliverableVersion.id.not_in(sorted(current)))
                 .group_by(DeliverableVersion.deliverable_id))
            prev = {did: n for did, n in session.execute(q) if n is not None and n < numbers[did]}
        earlier: dict[str, tuple[str, dt.datetime]] = {}
        if prev:
            q2 = select(DeliverableVersion.id, DeliverableVersion.deliverable_id, DeliverableVersion.version_number,
                        DeliverableVersion.created_at).where(
                DeliverableVersion.deliverable_id.in_(sorted(prev)),
                DeliverableVersion.version_number.in_(sorted(set(prev.values()))))
            earlier = {did: (vid, at) for vid, did, n, at in session.execute(q2) if prev.get(did) == n}
        wanted = [vid for vid, _ in earlier.values()] + sorted(resumed)
        stamps = [at for _, at in earlier.values()] + [current[v].created_at for v in resumed if v in current]
        rows = gold_rows(store, wanted, since=min(stamps) if stamps else None)
        self.stored = {vid: rows[vid] for vid in resumed if vid in rows}
        for v in versions:
            ref = earlier.get(v.deliverable_id)
            text = rows.get(ref[0], {}).get("final_content") if ref else None
            self.previous[v.id] = str(text) if text is not None else None


class Writes:
    """A run's gold row, retention marks and activity event: written at once, or collected by a round
    and written with :meth:`flush_rows` / :meth:`flush_marks` / :meth:`flush_events` (one commit each)."""

    def __init__(self, store: DeltaStore, *, batched: bool = False) -> None:
        self.store = store
        self.batched = batched
        self.rows: dict[str, dict[str, Any]] = {}
        self.marks: list[pl.DataFrame] = []
        self.events: list[ActivityEvent] = []
        self.settles: list[tuple[Any, str, dict[str, Any]]] = []  # (run, status, settle arguments)

    def apply_settles(self, session_factory: Any) -> int:
        """The status changes the round's runs deferred, in one control-plane session (before a gold commit)."""
        settles, self.settles = self.settles, []
        if settles:
            with session_factory() as session:
                for run, status, kw in settles:
                    run.apply_settle(session, status, **kw)
        return len(settles)

    def row(self, row: dict[str, Any]) -> None:
        if self.batched:
            self.rows[row["version_id"]] = row
        else:
            write_gold_rows(self.store, [row])

    def retain(self, items: pl.DataFrame, *, ref: str, now: dt.datetime) -> int:
        """Mark the prompt's items; returns the marks written (or, in a round, handed to its one write)."""
        marks = marks_of(items, ref=ref, now=now)
        if not self.batched:
            return write_marks(self.store, marks)
        self.marks.append(marks)
        return marks.height

    def flush_rows(self) -> int:
        rows, self.rows = list(self.rows.values()), {}
        write_gold_rows(self.store, rows)
        return len(rows)

    def flush_marks(self) -> int:
        marks, self.marks = self.marks, []
        return write_marks(self.store, pl.concat(marks)) if marks else 0

    def flush_events(self, run_id: str) -> int:
        events, self.events = self.events, []
        return write_events(self.store, events, run_id=run_id) if events else 0
