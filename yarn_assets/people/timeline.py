"""The timeline's write path (one ingest partition at a time) and its current view.

Writes replace exactly the (platform, ingest day) folder of the partition, so a re-run or a
backfill leaves the tables identical. Rows learnt from a bronze object whose body the TTL cleanup
has since cleared cannot be re-derived; they are carried over from the previous write instead, so
re-materializing an old partition never loses history.

The same item can land in several partitions (a re-imported mailbox, a sync that re-reads its
lookback window). The *current view* keeps, per item, only the rows of its latest version
(``fetched_at``, then batch, then position), and drops items whose latest version is a tombstone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, In, all_of
from yarn_assets.people.tables import CALENDAR_EVENTS, IDENTITY_EVIDENCE, INTERACTIONS

_VERSION = ["fetched_at", "batch_id", "seq"]


def _scope(spec_name: str, platform: str, day: dt.date) -> object:
    if spec_name == CALENDAR_EVENTS.name:
        return Eq("ingest_date", day)
    return all_of(Eq("platform", platform), Eq("ingest_date", day))


def write_partition(store: DeltaStore, platform: str, day: dt.date, frames: dict[str, pl.DataFrame],
                    expired: set[tuple[str, int]]) -> dict[str, int]:
    """Replace the partition's rows in each table; rows of expired bodies are carried over."""
    written = {}
    for spec in (INTERACTIONS, CALENDAR_EVENTS, IDENTITY_EVIDENCE):
        if spec is CALENDAR_EVENTS and platform != "calendar":
            continue
        df = frames[spec.name]
        scope = _scope(spec.name, platform, day)
        if expired:
            old = store.read(spec, scope)  # type: ignore[arg-type]
            if old.height:
                keep = pl.DataFrame(list(expired), schema={"batch_id": pl.Utf8, "seq": pl.Int64}, orient="row")
                carried = old.join(keep, on=["batch_id", "seq"], how="semi")
                if carried.height:
                    df = pl.concat([spec.conform(df), spec.conform(carried)], how="vertical_relaxed")
        if df.is_empty():
            if store.exists(spec):
                store.delete(spec, scope)  # type: ignore[arg-type]
            written[spec.name] = 0
            continue
        df = spec.conform(df).sort([c for c in ("user_id", "batch_id", "seq") if c in df.columns])
        written[spec.name] = store.replace(spec, df, scope)  # type: ignore[arg-type]
    return written


def current(df: pl.DataFrame) -> pl.DataFrame:
    """Rows of each item's latest version; items whose latest version is a tombstone are dropped."""
    if df.is_empty():
        return df
    latest = (df.select(["item_key", *_VERSION]).unique()
              .sort(_VERSION).group_by("item_key", maintain_order=True).last())
    rows = df.join(latest, on=["item_key", *_VERSION], how="semi")
    return rows.filter(~pl.col("item_key").is_in(rows.filter(pl.col("is_deleted"))["item_key"].implode()))


def interactions_of(store: DeltaStore, user_ids: Sequence[str], columns: Sequence[str] | None = None
                    ) -> pl.DataFrame:
    """The current interactions of these users (every platform, every partition)."""
    if not user_ids:
        return INTERACTIONS.empty()
    lf = store.scan(INTERACTIONS, In("user_id", list(user_ids)))
    if lf is None:
        return INTERACTIONS.empty()
    df = lf.collect() if columns is None else lf.select(list(dict.fromkeys([*columns, "item_key", *_VERSION,
                                                                            "is_deleted"]))).collect()
    return current(df)


def evidence_of(store: DeltaStore, user_ids: Sequence[str]) -> pl.DataFrame:
    """Identity evidence of these users, one row per (a, b, rule, ref): replays never double count."""
    if not user_ids:
        return IDENTITY_EVIDENCE.empty()
    df = store.read(IDENTITY_EVIDENCE, In("user_id", list(user_ids)))
    return df.sort("observed_at").unique(["user_id", "a", "b", "rule", "ref"], keep="last", maintain_order=True)


def self_identifiers(store: DeltaStore, user_ids: Sequence[str]) -> dict[str, frozenset[str]]:
    """Identifiers earlier partitions proved to be the user's own (Delivered-To, Sent, own Slack profile)."""
    if not user_ids or not store.exists(IDENTITY_EVIDENCE):
        return {}
    lf = store.scan(IDENTITY_EVIDENCE, all_of(In("user_id", list(user_ids)), Eq("a", "self")))
    assert lf is not None
    df = lf.select("user_id", "b").unique().collect()
    out: dict[str, set[str]] = {}
    for user_id, b in df.iter_rows():
        out.setdefault(user_id, set()).add(b)
    return {u: frozenset(v) for u, v in out.items()}


def calendar_events_of(store: DeltaStore, user_id: str, since: dt.datetime | None = None,
                       until: dt.datetime | None = None) -> pl.DataFrame:
    """Current event instances of one user (latest version of each instance), cancelled ones included."""
    lf = store.scan(CALENDAR_EVENTS, Eq("user_id", user_id))
    if lf is None:
        return CALENDAR_EVENTS.empty()
    if since is not None:
        lf = lf.filter(pl.col("starts_at") >= since)
    if until is not None:
        lf = lf.filter(pl.col("starts_at") < until)
    df = lf.collect()
    if df.is_empty():
        return df
    return df.sort(_VERSION).group_by("item_key", maintain_order=True).last().sort("starts_at")
