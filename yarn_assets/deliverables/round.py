"""A round: the due deliverables of one user shard, generated in one run.

One Dagster run per deliverable costs a process start and a definitions load (~3.5 s, 250 MiB)
before any work; at 10,000 users with 3 deliverables a day that is 30,000 runs. A round runs a
shard's due deliverables together so shared reads (silver, previous versions) and writes (gold
rows, retention marks) are paid once per round, while each deliverable keeps its own version,
checkpoint and resume (a re-executed round resumes each version; nothing is generated or sent twice).

The phases, each over every item of the round:

1. one control-plane query for the items' users and sources, then :meth:`Prefetch.load` (one silver
   scan for all the round's users, one sync-registry query);
2. ``begin`` in one control-plane session: the freshness gate (from the prefetched rows), the
   schedule slot, the requests; then each item's version;
3. :meth:`Prefetch.load_versions`: previous outputs and resumed rows (one query, one gold scan);
4. ``prepare``: sources → compose; then the versions' status (``generated``/``empty``) in one
   control-plane session, **one commit** of all gold rows (the checkpoint) and **one commit** of all
   retention marks;
5. ``finish``: delivery through the outbox; then the final statuses in one session, one gold commit
   with the delivery outcomes and one activity-log commit with the runs' events.

A crash after step 4 leaves every generated text stored: the re-executed round (same
``root_run_id``) resumes each version from its row and only delivers. An exception in one item
fails that item only (its version is settled ``failed``); the others go on.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from control_plane.models import Deliverable, utcnow
from yarn_assets.deliverables import run_state
from yarn_assets.deliverables.round_data import Prefetch, Writes
from yarn_assets.deliverables.run import DeliverableRun, RunOutcome, run_deliverable
from yarn_assets.deliverables.run_resources import RunResources
from yarn_assets.deliverables.sources import read_sources
from yarn_assets.deliverables.types import binding_of

__all__ = ["RoundItem", "RunOutcome", "run_deliverable", "run_round"]


@dataclass(frozen=True)
class RoundItem:
    """One deliverable of a round and why it runs (``schedule`` runs may be skipped when nothing is new)."""

    deliverable_id: str
    trigger: str = "schedule"


def run_round(res: RunResources, items: Sequence[RoundItem], *, run_id: str, root_run_id: str | None = None,
              scope: Any = None, now: dt.datetime | None = None) -> list[RunOutcome]:
    """Run every item of the round (distinct deliverables); one outcome per item, in order.

    A failing item ends ``failed`` (its reason in the outcome) and the others go on; only a failure of
    the round's shared reads or commits raises (a re-execution with the same ``root_run_id`` resumes)."""
    now = now or utcnow()
    root = root_run_id or run_id
    writes = Writes(res.store, batched=True)
    prefetch = _prefetch(res, [i.deliverable_id for i in items])
    runs = [DeliverableRun(res, deliverable_id=i.deliverable_id, run_id=run_id, root_run_id=root, trigger=i.trigger,
                           scope=scope, now=now, prefetch=prefetch, writes=writes) for i in items]
    walls = [0.0] * len(runs)
    outcomes: list[RunOutcome | None] = [None] * len(runs)
    with res.session_factory() as session:  # every item's start (schedule slot, requests): one commit
        started = _each(runs, walls, outcomes, lambda r: r.begin(session))
    allocated = run_state.allocate_versions(  # one transaction for the round's versions
        res.session_factory, [(runs[k].d.id, runs[k].trigger, runs[k].binding) for k in started],
        run_id=run_id, root_run_id=root)
    live = _each(runs, walls, outcomes, lambda r: r.allocate(allocated[r.d.id]) and None, only=started)
    with res.session_factory() as session:
        prefetch.load_versions(res.store, session, [runs[k].v for k in live],
                               {runs[k].v.id for k in live if runs[k].outcome.resumed})
    prepared = _each(runs, walls, outcomes, lambda r: r.guarded(r.prepare), only=live,
                     workers=_generation_workers(res, len(live)))
    writes.apply_settles(res.session_factory)  # generated/empty: one control-plane commit
    writes.flush_rows()  # the checkpoint: every stored text, one commit
    writes.flush_marks()
    _finish(runs, walls, outcomes, prepared)
    # events before the final statuses: if their commit fails, the versions are not yet delivered in the
    # control plane, so a retry resumes them (the outbox sends nothing twice) and writes the events again
    # (idempotency keys); after the statuses, a retry would skip them as finished and the events be lost
    writes.flush_events(run_id)
    writes.apply_settles(res.session_factory)
    writes.flush_rows()
    for k, run in enumerate(runs):
        if outcomes[k] is None:
            outcomes[k] = run.outcome
        outcomes[k].wall_ms = walls[k] * 1000  # type: ignore[union-attr]
    return [o for o in outcomes if o is not None]


def _finish(runs: list[DeliverableRun], walls: list[float], outcomes: list[RunOutcome | None],
            prepared: list[int]) -> None:
    """Deliver every prepared item (a separate function: tests stop a round here, as a crash would)."""
    _each(runs, walls, outcomes, lambda r: r.guarded(r.finish), only=prepared)


def _prefetch(res: RunResources, deliverable_ids: list[str]) -> Prefetch:
    """The round's users and the sources their deliverables read, then the shared reads."""
    with res.session_factory() as session:
        found = session.scalars(select(Deliverable).where(Deliverable.id.in_(sorted(set(deliverable_ids))))).all()
        wanted = [(d.user_id, read_sources(d.deliverable_type, binding_of(d.deliverable_type, d.type_config),
                                           d.sources)) for d in found]
        return Prefetch.load(res.store, session, wanted)


def _generation_workers(res: RunResources, n: int) -> int:
    """Items generated at once: one offline (the rules are CPU-bound), else up to the LLM's concurrency
    (its limiter still bounds the calls in flight and honours rate limits and ``retry-after``)."""
    llm = res.llm
    if n < 2 or llm is None or getattr(llm, "is_offline", True):
        return 1
    return max(1, min(int(getattr(llm, "max_concurrency", 1)), n))


def _each(runs: list[DeliverableRun], walls: list[float], outcomes: list[RunOutcome | None],
          phase: Callable[[DeliverableRun], bool | None], only: list[int] | None = None,
          workers: int = 1) -> list[int]:
    """Apply a phase to each still-running item (``workers`` at once); returns the indexes that go on.

    ``begin`` returning False (skipped) ends an item with its outcome; an exception ends it as failed
    (``guarded`` has settled the version; a failure before the version exists has nothing to settle)."""
    def one(k: int) -> bool:
        run = runs[k]
        started = time.perf_counter()
        try:
            if phase(run) is False:
                outcomes[k] = run.outcome
                return False
            return True
        except Exception as exc:  # one item's failure does not stop the round
            outcomes[k] = _failed(run, exc)
            return False
        finally:
            walls[k] += time.perf_counter() - started

    indexes = list(range(len(runs))) if only is None else list(only)
    if workers <= 1:
        return [k for k in indexes if one(k)]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliverable") as pool:
        return [k for k, ok in zip(indexes, pool.map(one, indexes), strict=True) if ok]


def _failed(run: DeliverableRun, exc: Exception) -> RunOutcome:
    reason = f"{type(exc).__name__}: {exc}"[:1000]
    if not hasattr(run, "outcome"):  # the deliverable could not even be loaded
        return RunOutcome(status="failed", deliverable_id=run.deliverable_id, user_id="", deliverable_type="",
                          strategy="", reason=reason)
    run.outcome.status = "failed"
    run.outcome.reason = run.outcome.reason or reason
    return run.outcome
