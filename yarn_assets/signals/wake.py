"""The wake gate, decided before a user's content is loaded.

A scheduled pass is skipped (``wake_gate``) without reading the user's silver rows, deliverables,
history, memory or activity when all of these hold for the user's last evaluated pass ``P`` (at
most :data:`inputs.LOOKBACK_DAYS` old):

1. **no new content**: no silver row of the pass's platforms was fetched (inserted or edited) in
   ``(P.as_of, as_of]`` - one pruned scan of three columns for all users of the hour, which the
   files' ``fetched_at`` statistics reduce to the few files an ingest wrote since;
2. **no time-sensitive candidate came due**: ``P.wake_at`` (:func:`rules.next_wake`: a meeting
   entering the 24 h horizon, a thread crossing the follow-up threshold) is unset or after ``as_of``;
3. **nothing deferred**: ``P.deferred == 0``. Actions held back by the one-per-type rule are due
   in the next pass: when rules 1, 2 and 4 hold, that pass executes them from ``P``'s decision
   without loading content or asking the model again (:mod:`yarn_assets.signals.held`);
4. **same gate inputs**: ``P.wake_key`` equals this pass's (:func:`wake_key`: the pass, its source
   selections, the user's addresses and the policy's thresholds), so a changed selection or a new
   address wakes the pass.

Content only *leaving* a pass (ageing out of the fetch windows, expiring, being deleted) wakes
nothing: it cannot create a signal. The skipped row carries ``P``'s fingerprint and item counts
(what the gate compared against) and ``new_items = 0``. Passes that wake are loaded and then still
go through the fingerprint gate (:func:`processing.gate_pass`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence

import polars as pl

from io_managers.delta_store import DeltaStore
from io_managers.predicates import In
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.signals.extraction import PASS_PLATFORMS
from yarn_assets.signals.inputs import PreviousPass, UserInputs


def wake_key(pass_name: str, inputs: UserInputs, followup_days: int, min_items: int) -> str:
    """Digest of the cheap inputs a pass's candidates depend on besides content and time."""
    parts = [pass_name, f"followup={followup_days}", f"min_items={min_items}"]
    for platform in PASS_PLATFORMS[pass_name]:
        chosen = inputs.selected.get(platform)
        parts.append(f"{platform}=" + ("*" if chosen is None else ",".join(sorted(chosen))))
    parts.append("me=" + ",".join(sorted(inputs.profile.addresses)))
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:32]


def new_content(store: DeltaStore, since: Mapping[str, dt.datetime], as_of: dt.datetime
                ) -> dict[tuple[str, str], dt.datetime]:
    """(user, platform) -> latest ``fetched_at`` in ``(since[user], as_of]``, for the users in ``since``.

    One scan of ``user_id, platform, fetched_at`` filtered on ``fetched_at`` (file and row-group
    statistics skip everything written before the earliest ``since``); nothing else is read.
    """
    if not since:
        return {}
    lf = store.scan(PLATFORM_CONTENT, In("user_id", sorted(since)))
    if lf is None:
        return {}
    lo = min(since.values())
    frame = (
        lf.filter((pl.col("fetched_at") > pl.lit(lo)) & (pl.col("fetched_at") <= pl.lit(as_of)))
        .select(["user_id", "platform", "fetched_at"])
        .group_by(["user_id", "platform"])
        .agg(pl.col("fetched_at").max())
        .collect()
    )
    return {(r["user_id"], r["platform"]): r["fetched_at"] for r in frame.iter_rows(named=True)}


def unchanged(pass_name: str, previous: PreviousPass | None, key: str, as_of: dt.datetime,
              fetched: Mapping[tuple[str, str], dt.datetime], user_id: str) -> bool:
    """Rules 1, 2 and 4: nothing new for the pass since ``previous`` (deferred actions aside)."""
    if not _may_sleep(previous, key, as_of):
        return False
    assert previous is not None
    return not any((at := fetched.get((user_id, p))) is not None and at > previous.as_of
                   for p in PASS_PLATFORMS[pass_name])


def sleeping_passes(store: DeltaStore, inputs: Mapping[str, UserInputs], passes: Sequence[str],
                    previous: Mapping[tuple[str, str], PreviousPass], as_of: dt.datetime, *,
                    followup_days: int, min_items: int
                    ) -> tuple[set[tuple[str, str]], set[tuple[str, str]], dict[tuple[str, str], str]]:
    """(passes that sleep, passes with only deferred actions due, every pass's wake key), decided
    for the users in ``inputs`` before any content is loaded."""
    keys = {(uid, p): wake_key(p, mine, followup_days, min_items) for uid, mine in inputs.items() for p in passes}
    candidates = {k for k, key in keys.items() if _may_sleep(previous.get(k), key, as_of)}
    since = _earliest((uid, previous[(uid, p)].as_of) for uid, p in candidates)
    fetched = new_content(store, since, as_of) if since else {}
    quiet = {(uid, p) for uid, p in candidates if unchanged(p, previous.get((uid, p)), keys[(uid, p)], as_of,
                                                            fetched, uid)}
    deferred = {k for k in quiet if previous[k].deferred > 0}
    return quiet - deferred, deferred, keys


def _may_sleep(previous: PreviousPass | None, key: str, as_of: dt.datetime) -> bool:
    return previous is not None and previous.wake_key == key and (
        previous.wake_at is None or previous.wake_at > as_of)


def _earliest(pairs: Iterable[tuple[str, dt.datetime]]) -> dict[str, dt.datetime]:
    out: dict[str, dt.datetime] = {}
    for uid, at in pairs:
        out[uid] = min(at, out.get(uid, at))
    return out
