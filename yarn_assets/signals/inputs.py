"""What an hour of signal passes reads, loaded once per hour (or shard) for all of its users.

Cheap inputs first: eligible users, profiles and source selections (two control-plane queries),
each user's silver rows that a pass can see (one pruned scan), and each (user, pass)'s last
evaluated pass (one scan). These decide the wake gate. The expensive inputs (deliverables with
their latest output, signal history, memory, recent activity) are loaded afterwards, in one batch,
only for the users with a pass that the gate lets through.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.models import User
from io_managers.delta_store import DeltaStore
from io_managers.predicates import In, Window, all_of
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.people import service as people
from yarn_assets.signals import actions as act
from yarn_assets.signals import context as ctxmod
from yarn_assets.signals import rules
from yarn_assets.signals.extraction import COLUMNS, FETCH_WINDOWS
from yarn_assets.signals.tables import SIGNAL_SUMMARIES

SessionFactory = Callable[[], AbstractContextManager[Session]]
LOOKBACK_DAYS = 7  # how far back the wake gate looks for the user's last evaluated pass


def eligible_users(session: Session, excluded_tiers: Iterable[str], only: Sequence[str] | None = None
                   ) -> tuple[list[str], list[str]]:
    """(eligible, ignored): active users outside the excluded tiers; ``only`` narrows (manual runs)."""
    excluded = set(excluded_tiers)
    q = select(User.id, User.tier, User.status).order_by(User.id)
    if only:
        q = q.where(User.id.in_(list(only)))
    eligible, ignored = [], []
    for uid, tier, status in session.execute(q):
        (eligible if status == "active" and tier not in excluded else ignored).append(uid)
    if only:
        ignored += sorted(set(only) - set(eligible) - set(ignored))
    return eligible, ignored


def visible_expr(as_of: dt.datetime) -> pl.Expr:
    """Rows some pass could select at ``as_of`` (a superset of :func:`extraction.select_platform`'s
    filter before selections and limits): known by then, not expired, inside the fetch windows."""
    live = pl.col("retained").fill_null(False) | pl.col("expires_at").is_null() | (pl.col("expires_at") > pl.lit(as_of))
    windowed = pl.lit(True)
    for platform, window in FETCH_WINDOWS.items():
        windowed = windowed & ((pl.col("platform") != platform) | (pl.col("fetched_at") > pl.lit(as_of - window)))
    return (pl.col("fetched_at") <= pl.lit(as_of)) & live & windowed


def load_silver(store: DeltaStore, user_ids: Sequence[str], as_of: dt.datetime) -> dict[str, pl.DataFrame]:
    """Each user's silver rows visible at ``as_of``, split by user (nothing else is ever handed on).

    The filter is pushed into the scan (file statistics skip old Slack/Gmail files), only the
    columns the passes use are read, so memory follows the visible rows of the run's users, not silver.
    """
    if not user_ids:
        return {}
    lf = store.scan(PLATFORM_CONTENT, In("user_id", list(user_ids)))
    if lf is None:
        return {}
    frame = lf.filter(visible_expr(as_of)).select(COLUMNS).collect()
    return {str(k[0]): v for k, v in frame.partition_by("user_id", as_dict=True).items()}


@dataclass(frozen=True)
class PreviousPass:
    partition_hour: dt.datetime
    as_of: dt.datetime
    fingerprint: str
    deferred: int
    trigger: str = "schedule"
    wake_at: dt.datetime | None = None  # see rules.next_wake
    wake_key: str | None = None  # see wake.wake_key (None: written before the early gate)
    counts: dict[str, Any] = field(default_factory=dict)  # item counts and refs, carried by a skip


#: Columns of the previous pass a skipped pass carries over (what the gate compared against).
CARRIED = ("items_total", "calendar_items", "gmail_items", "slack_items", "notion_items", "platforms_queried",
           "refs")


def previous_passes(store: DeltaStore, user_ids: Sequence[str], hour_start: dt.datetime, as_of: dt.datetime,
                    trigger: str) -> dict[tuple[str, str], PreviousPass]:
    """Each (user, pass)'s latest evaluated pass before this one (excluding the rows being replaced)."""
    lo = (hour_start - dt.timedelta(days=LOOKBACK_DAYS)).date()
    pred = all_of(Window("signal_date", lo, hour_start.date() + dt.timedelta(days=1)), In("user_id", user_ids))
    lf = store.scan(SIGNAL_SUMMARIES, pred)
    if lf is None or not user_ids:
        return {}
    frame = (
        lf.filter(
            (pl.col("status") == "evaluated")
            & (pl.col("as_of") < pl.lit(as_of))
            & ~((pl.col("partition_hour") == pl.lit(hour_start)) & (pl.col("trigger") == trigger))
        )
        .select(["user_id", "pass", "partition_hour", "as_of", "fingerprint", "deferred", "trigger", *_optional(lf),
                 *CARRIED])
        .collect()
        .sort("as_of")
        .unique(["user_id", "pass"], keep="last")
    )
    return {
        (r["user_id"], r["pass"]): PreviousPass(
            r["partition_hour"], r["as_of"], r["fingerprint"], r["deferred"] or 0, r["trigger"], r.get("wake_at"),
            r.get("wake_key"), {c: r[c] for c in CARRIED})
        for r in frame.iter_rows(named=True)
    }


def _optional(lf: pl.LazyFrame) -> list[str]:
    """The early gate's columns, when the table has them (rows written before it lack them)."""
    names = lf.collect_schema().names()
    return [c for c in ("wake_at", "wake_key") if c in names]


@dataclass
class UserInputs:
    """One user's inputs: the cheap ones always, the expensive ones once a pass gets past the gate."""

    profile: ctxmod.UserProfile
    selected: dict[str, set[str] | None]
    deliverables: list[ctxmod.DeliverableView]
    history: dict[tuple[str, str], act.HistoryEntry]
    memory: list[str]
    _activity: list[str] | None = None

    def activity(self, store: DeltaStore, as_of: dt.datetime) -> list[str]:
        if self._activity is None:
            self._activity = ctxmod.load_activity(store, self.profile.id, as_of)
        return self._activity

    def contacts(self, store: DeltaStore) -> rules.ContactLookup:
        """The user's contacts by address (people domain), read only when a rule needs a name."""
        return lambda values: people.labels_for(store, self.profile.id, values)


def load_user_inputs(session_factory: SessionFactory, store: DeltaStore, user_id: str) -> UserInputs:
    """One user's full inputs (manual tools, tests); the hour uses :func:`complete_inputs`."""
    with session_factory() as session:
        return UserInputs(
            profile=ctxmod.load_profile(session, user_id),
            selected=ctxmod.selected_sources(session, user_id),
            deliverables=ctxmod.load_deliverables(session, store, user_id),
            history=act.load_history(session, user_id),
            memory=ctxmod.load_memory(session, user_id),
        )


def cheap_inputs(session_factory: SessionFactory, user_ids: Sequence[str]) -> dict[str, UserInputs]:
    """Profile and selections of every user (two queries); the rest is filled by :func:`complete_inputs`."""
    with session_factory() as session:
        profiles, selected = ctxmod.load_profiles(session, user_ids)
    return {uid: UserInputs(profile=profiles[uid], selected=selected[uid], deliverables=[], history={}, memory=[])
            for uid in user_ids if uid in profiles}


def complete_inputs(session_factory: SessionFactory, store: DeltaStore, inputs: dict[str, UserInputs],
                    as_of: dt.datetime, screening_only: Iterable[str] = ()) -> None:
    """Deliverables (one versions scan), history and memory (indexed per-user queries), activity (one read).
    Users in ``screening_only`` (deferred actions to re-screen, no prompt) get deliverables and history."""
    ids = sorted(inputs)
    if not ids:
        return
    light = set(screening_only)
    with session_factory() as session:
        deliverables = ctxmod.load_deliverables_for(session, store, ids)
        for uid in ids:
            inputs[uid].deliverables = deliverables.get(uid, [])
            inputs[uid].history = act.load_history(session, uid)
            if uid not in light:
                inputs[uid].memory = ctxmod.load_memory(session, uid)
    prompted = [u for u in ids if u not in light]
    activity = ctxmod.load_activity_for(store, prompted, as_of) if prompted else {}
    for uid in prompted:
        inputs[uid]._activity = activity.get(uid, [])
