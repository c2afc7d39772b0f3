"""Writing an hour: its rows replace exactly the hour's (and shard's, users', passes') rows in both
gold tables, and its events are appended idempotently."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, In, Predicate, all_of
from yarn_assets.core.activity_log import write_events
from yarn_assets.core.shards import in_shard
from yarn_assets.signals.results import HourResult
from yarn_assets.signals.tables import PASSES, SIGNAL_ACTIONS, SIGNAL_SUMMARIES

if TYPE_CHECKING:
    from yarn_assets.signals.processing import HourSpec


def hour_predicate(spec: HourSpec, result: HourResult, user_ids: Sequence[str] | None,
                   passes: Sequence[str], shard_users: Sequence[str] | None = None) -> Predicate:
    """The rows an hour's run owns: its hour and trigger, narrowed to the users (of its shard) and
    passes it ran. ``shard_users``: every user of the shard with rows in the hour or in this run."""
    parts: list[Predicate] = [Eq("signal_date", spec.hour_start.date()), Eq("partition_hour", spec.hour_start),
                              Eq("trigger", spec.trigger)]
    if user_ids:
        parts.append(In("user_id", sorted(set(user_ids) | set(result.users))))
    elif shard_users is not None:
        parts.append(In("user_id", sorted(set(shard_users) | set(result.users)) or [""]))
    if sorted(passes) != sorted(PASSES):
        parts.append(In("pass", list(passes)))
    predicate = all_of(*parts)
    assert predicate is not None
    return predicate


def _users_in_hour(store: DeltaStore, spec: HourSpec) -> list[str]:
    lf = store.scan(SIGNAL_SUMMARIES, all_of(Eq("signal_date", spec.hour_start.date()),
                                             Eq("partition_hour", spec.hour_start)))
    return [] if lf is None else lf.select("user_id").unique().collect()["user_id"].to_list()


def write_hour(store: DeltaStore, spec: HourSpec, result: HourResult, *, user_ids: Sequence[str] | None,
               passes: Sequence[str], run_id: str | None, shard: tuple[str, int] | None = None) -> int:
    """Replace the hour's rows (of the shard) in both gold tables and append its events; returns
    events inserted. A shard replaces the rows of its users only: users who left the eligible set
    since a previous run of the hour are found in the table and hashed like the others."""
    shard_users = in_shard(_users_in_hour(store, spec), *shard) if shard is not None and shard[1] > 1 else None
    where = hour_predicate(spec, result, user_ids, passes, shard_users)
    for table in (SIGNAL_SUMMARIES, SIGNAL_ACTIONS):
        store.ensure(table)  # present (if empty) from the first run on, for the CLI and the UI
    store.replace(SIGNAL_SUMMARIES, result.summary_frame(), where)
    store.replace(SIGNAL_ACTIONS, result.action_frame(), where)
    return write_events(store, result.events(), run_id=run_id)
