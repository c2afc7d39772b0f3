"""One deliverable run as one object: ``DeliverableRun(res, deliverable_id=..., run_id=...).execute()``.

Its steps are methods, in order: :meth:`~DeliverableRun.start` (load the deliverable, the freshness
gate, consume the schedule slot, claim the run requests), :meth:`~DeliverableRun.allocate` (the
version of this run lineage), :meth:`~DeliverableRun.load_sources` (memory, source snapshot,
previous output), :meth:`~DeliverableRun.gather` (platform ∥ research, people),
:meth:`~DeliverableRun.compose`, :meth:`~DeliverableRun.write_version` (the gold row: the
checkpoint), :meth:`~DeliverableRun.retain`, :meth:`~DeliverableRun.deliver` and the activity event.

Status has one source of truth: :meth:`~DeliverableRun.settle` changes it through
:func:`run_state.settle_version` (one control-plane session, which also stamps ``last_run_at`` and
finishes the run requests) and copies the result into the gold row. A run settles twice: at the
checkpoint (``generated``/``empty``) and at its end (``delivered``/``empty``/``failed``).

Resumption: the version is keyed by the run lineage (``root_run_id``), so a step retry or a
"re-execute from failure" resumes the same version. If its text was already stored, the model is
not called again and delivery goes through the outbox, which never sends a version twice.

A round (:mod:`~yarn_assets.deliverables.round`) runs the phases itself with shared reads (``Prefetch``)
and batched writes (``Writes``); a run on its own reads and writes the same things directly.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

from control_plane.models import Deliverable, DeliverableVersion, User, utcnow
from yarn_assets.core.activity_log import write_events
from yarn_assets.deliverables import run_state, service
from yarn_assets.deliverables.content import PlatformContext, gather_platform_context
from yarn_assets.deliverables.delivery.base import DestinationPlan, parse_destination
from yarn_assets.deliverables.delivery.dispatch import deliver_all
from yarn_assets.deliverables.freshness import has_new_content, source_snapshot
from yarn_assets.deliverables.offline import compose_offline
from yarn_assets.deliverables.outcome import Composed, RunOutcome, run_event
from yarn_assets.deliverables.prompting import (
    EMPTY_RULE,
    MAX_TOKENS,
    ComposeInput,
    Research,
    build_prompt,
    finalize,
    people_queries,
)
from yarn_assets.deliverables.research import Usage, gather_research
from yarn_assets.deliverables.round_data import Prefetch, Writes
from yarn_assets.deliverables.run_resources import RunResources
from yarn_assets.deliverables.sources import SourceRef, normalize_sources, read_sources, skip_sources
from yarn_assets.deliverables.steps import Step, StepLog
from yarn_assets.deliverables.types import DeliverableType, binding_of, get_type
from yarn_assets.deliverables.user_context import read_user_context
from yarn_assets.deliverables.versions import _gold_row, previous_output
from yarn_assets.people import service as people

#: a stored version in one of these states has its text: a resumed run delivers it without generating
RESUMABLE = ("generated", "delivered", "failed", "empty")


class DeliverableRun:
    """One run of one deliverable; :meth:`execute` runs the steps and returns the :class:`RunOutcome`."""

    # set by start(): the deliverable and what follows from it
    d: Deliverable
    user: User
    dtype: DeliverableType
    binding: str
    timezone: str
    outcome: RunOutcome
    # set by execute() / load_sources()
    dest: DestinationPlan
    read_sources: list[SourceRef]
    snapshot: list[dict[str, Any]]
    stale: list[dict[str, Any]]

    def __init__(self, res: RunResources, *, deliverable_id: str, run_id: str, root_run_id: str | None = None,
                 trigger: str = "manual", scope: Any = None, now: dt.datetime | None = None,
                 prefetch: Prefetch | None = None, writes: Writes | None = None) -> None:
        self.res = res
        self.prefetch = prefetch  # a round's shared reads (None: this run reads its own)
        self.writes = writes or Writes(res.store)
        self.deliverable_id = deliverable_id
        self.run_id = run_id
        self.root_run_id = root_run_id or run_id
        self.trigger = trigger
        self.scope = scope
        self.now = now or utcnow()
        self.steps = StepLog()
        self.usage = Usage()
        self.version: DeliverableVersion | None = None
        self.generated = False  # this run stored the text (stamps last_run_at)
        self.row: dict[str, Any] | None = None  # the stored row prepare() leaves for finish()

    # ------------------------------------------------------------------ the run
    def execute(self) -> RunOutcome:
        started = time.perf_counter()
        if self.begin():
            self.allocate()
            self.guarded(self.prepare)
            self.guarded(self.finish)
        self.outcome.wall_ms = (time.perf_counter() - started) * 1000
        return self.outcome

    def begin(self, session: Any = None) -> bool:
        """:meth:`start` (in ``session``: a round starts all its items in one); a skipped run writes its event."""
        if self.start(session):
            return True
        self.event(key=f"skip:{self.d.id}:{self.root_run_id}")
        return False

    def prepare(self) -> None:
        """Up to the checkpoint: the stored text of a resumed version, or sources → compose → gold row → marks."""
        self.dest = parse_destination(self.d.destination)  # configured: nothing in the content changes it
        self.row = self.resume()
        if self.row is None:
            inp = self.load_sources()
            self.gather(inp)
            self.row = self.write_version(inp, self.compose(inp))
            self.retain(inp)

    def finish(self) -> None:
        """Deliver the stored text and write the run's event."""
        assert self.row is not None, "prepare() first"
        self.deliver(self.row)
        self.event(key=self.v.id)

    def guarded(self, phase: Any) -> None:
        """Run :meth:`prepare` or :meth:`finish`; any exception fails the version in both stores, then propagates."""
        try:
            phase()
        except BaseException as exc:
            self.fail(exc)
            raise

    @property
    def run_ids(self) -> list[str]:
        return [self.run_id, self.root_run_id]

    def start(self, shared: Any = None) -> bool:
        """Load the deliverable, consume its schedule slot and claim its requests (one session).

        Returns False when the freshness gate skips the run: scheduled runs only (manual, signal and
        request runs are forced), when none of the deliverable's sources has content newer than its last run.
        """
        with nullcontext(shared) if shared is not None else self.res.session_factory() as session:
            self.d = d = service.get_deliverable(session, self.deliverable_id)
            user = session.get(User, d.user_id)
            assert user is not None
            self.user = user
            self.dtype = get_type(d.deliverable_type)
            self.binding = binding_of(d.deliverable_type, d.type_config)
            self.timezone = (d.schedule or {}).get("timezone") or user.timezone or "UTC"
            self.outcome = RunOutcome(status="failed", deliverable_id=d.id, user_id=d.user_id,
                                      deliverable_type=self.dtype.name, strategy=self.binding, steps=self.steps.steps)
            last_run_at = d.last_run_at
            skip = (self.trigger == "schedule" and last_run_at is not None and not run_state.lineage_started(
                        session, d.id, self.root_run_id)
                    and not has_new_content(self.res.store, d.user_id, skip_sources(
                        d.deliverable_type, self.binding, d.sources), last_run_at, rows=self._silver()))
            self.outcome.next_run_at = run_state.advance_schedule(session, d.id, self.now)
            run_state.claim_requests(session, d.id, self.run_id)
            if skip:
                assert last_run_at is not None
                self.outcome.status = "skipped"
                self.outcome.reason = f"no content newer than the last run ({last_run_at.isoformat()})"
                run_state.finish_requests(session, d.id, self.run_ids, ok=True)
        return not skip

    def allocate(self, allocated: tuple[DeliverableVersion, bool] | None = None) -> DeliverableVersion:
        """This lineage's version (new, or the one a retry or re-execution resumes; a round allocates in bulk)."""
        version, resumed = allocated or run_state.allocate_version(
            self.res.session_factory, deliverable_id=self.d.id, run_id=self.run_id, root_run_id=self.root_run_id,
            trigger=self.trigger, strategy=self.binding,
        )
        self.version = version
        self.outcome.version_id, self.outcome.version_number, self.outcome.resumed = (
            version.id, version.version_number, resumed)
        return version

    def resume(self) -> dict[str, Any] | None:
        """The stored row of a resumed version whose text exists (its earlier steps are kept), else None."""
        if not self.outcome.resumed:
            return None
        if self.prefetch is not None:
            row = self.prefetch.stored.get(self.v.id)
        else:
            row = _gold_row(self.res.store, self.d.id, self.v.id)
        if row is None or row.get("status") not in RESUMABLE or row.get("generated_at") is None:
            return None
        self.steps.skipped("generate", f"resumed version {self.v.version_number}: text already stored")
        prior = [Step.from_dict(s) for s in json.loads(row.get("steps") or "[]") if s["name"] != "deliver"]
        self.steps.steps[:0] = prior
        self.outcome.row = row
        return row

    def load_sources(self) -> ComposeInput:
        """User memory and the source snapshot (one read session), the previous version's output."""
        d, pre = self.d, self.prefetch
        self.read_sources = self._read_sources()
        with self.steps.step("context") as s:
            with self.res.session_factory() as session:
                memory = read_user_context(session, d.user_id)
                self.snapshot, self.stale = source_snapshot(
                    session, self.res.store, user_id=d.user_id, sources=self.read_sources, now=self.now,
                    required_hours=self.dtype.freshness_requirement_hours, implicit=not normalize_sources(d.sources),
                    rows=self._silver(), registry=pre.registry.get(d.user_id) if pre else None)
            previous = (pre.previous.get(self.v.id) if pre is not None
                        else previous_output(self.res.store, d.id, self.v.version_number))
            s.detail.update({"memory_chars": len(memory), "previous_chars": len(previous or "")})
        return ComposeInput(
            dtype=self.dtype, title=d.title, description=d.description, type_config=d.type_config or {},
            recipient=d.recipient_context or {}, user_name=self.user.name, timezone=self.timezone, now=self.now,
            platform=PlatformContext(), research=Research(), memory=memory, previous=previous, binding=self.binding,
        )

    def gather(self, inp: ComposeInput) -> None:
        """Platform content (and research for research/hybrid bindings, in parallel for hybrid), then people."""
        n_results = self.dtype.research_results or (5 if self.binding == "research" else 3)
        if self.binding == "hybrid":
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="deliverable") as pool:
                platform_future = pool.submit(self._gather_platform)
                research_future = pool.submit(self._research, inp, n_results)
                inp.platform = platform_future.result()
                inp.research = research_future.result()
        elif self.binding == "research":
            inp.platform = self._gather_platform()
            inp.research = self._research(inp, n_results)
        else:
            inp.platform = self._gather_platform()
        with self.steps.step("people") as s:
            found = people.for_deliverable(self.res.store, user_id=self.d.user_id, rows=inp.platform.in_prompt,
                                           queries=people_queries(inp), now=self.now, embedder=self.res.embedder,
                                           timezone=self.timezone)
            inp.people = found.text
            s.detail.update({"people": len(found.people), "related_items": len(found.related)})

    def compose(self, inp: ComposeInput) -> Composed:
        """The LLM's (or the offline rules') text; nothing (``empty``) without material."""
        system, prompt = build_prompt(inp)
        out = Composed(offline=bool(self.res.llm.is_offline), prompt_chars=len(system) + len(prompt))
        if not inp.has_material:
            self.steps.skipped("compose", EMPTY_RULE)
            return out
        with self.steps.step("compose") as s:
            result = self.res.llm.text(task="generation", user_id=self.d.user_id, system=system, prompt=prompt,
                                       offline=lambda: compose_offline(inp), scope=self.scope, max_tokens=MAX_TOKENS)
            self.usage.add(result.usage)
            out.draft, out.model, out.offline = result.text, result.model, bool(result.offline)
            s.detail.update({"model": out.model, "offline": out.offline, "chars": len(out.draft)})
        out.final = finalize(out.draft, self.dtype, stale=self.stale, offline=out.offline)
        return out

    def write_version(self, inp: ComposeInput, text: Composed) -> dict[str, Any]:
        """The checkpoint: the version's row in gold and its status (``generated`` or ``empty``)."""
        d, v, usage = self.d, self.v, self.usage
        status = "generated" if text.final is not None else "empty"
        with self.steps.step("store") as s:
            self.outcome.row = row = {
                "deliverable_id": d.id, "version_id": v.id, "version_number": v.version_number,
                "user_id": d.user_id, "deliverable_type": self.dtype.name, "title": d.title, "strategy": self.binding,
                "trigger": self.trigger, "status": status, "draft_content": text.draft,
                "final_content": text.final, "offline": text.offline, "model": text.model,
                "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                "cost_usd": round(usage.cost_usd, 6), "prompt_chars": text.prompt_chars,
                "items_in_prompt": inp.platform.items_in_prompt,
                "sources_used": json.dumps(inp.platform.sources_used(), sort_keys=True),
                "source_snapshot": json.dumps(self.snapshot, sort_keys=True, default=str),
                "stale_sources": json.dumps(self.stale, sort_keys=True),
                "research": json.dumps({**inp.research.as_dict(), "searches": usage.searches}, sort_keys=True),
                "steps": "[]", "destination": json.dumps(self.dest.as_dict()), "delivery_status": None,
                "delivery_error": None, "delivered_at": None, "run_id": self.run_id,
                "created_at": v.created_at, "generated_at": utcnow(),
            }
            s.detail["status"] = status
            self.generated = True
            self.settle(status)
        return row

    def retain(self, inp: ComposeInput) -> None:
        """The items placed in the prompt outlive their TTL (cleanup never deletes them)."""
        in_prompt = inp.platform.in_prompt
        if in_prompt.is_empty():
            return
        with self.steps.step("retain") as s:
            self.outcome.retained = self.writes.retain(in_prompt, ref=self.v.id, now=self.now)
            s.detail["items_marked"] = self.outcome.retained

    def deliver(self, row: dict[str, Any]) -> None:
        """Send the stored text once to the configured destination (the outbox), then settle the version."""
        final, outcome = row.get("final_content"), self.outcome
        if row.get("status") == "empty" or not (final or "").strip():
            self.steps.skipped("deliver", EMPTY_RULE)
            outcome.status, outcome.reason = "empty", EMPTY_RULE
            self.settle("empty", delivery_status="skipped", delivery_error=EMPTY_RULE, final=True)
            return
        d, v = self.d, self.v
        with self.steps.step("deliver") as s:
            result = deliver_all(self.res.session_factory, self.res.delivery, deliverable=d, version=v,
                                 text=final or "", row=row, run_id=self.run_id)
            s.detail.update({"channel": result.channel, "target": result.target, "status": result.status,
                             "duplicate": result.duplicate, "attempts": result.attempts, "notes": result.notes})
            if result.status != "delivered":
                s.status = "failed"
                s.detail["error"] = result.error
        row["destination"] = result.destination_json()
        outcome.delivery = result
        outcome.status = "delivered" if result.status == "delivered" else "failed"
        outcome.reason = result.error
        self.settle(outcome.status, delivery_status=result.status, delivery_error=result.error,
                    error=result.error, final=True)

    def fail(self, exc: BaseException) -> None:
        """Any exception: the version is failed in both stores, the requests failed, an event written."""
        self.outcome.status = "failed"
        self.outcome.reason = f"{type(exc).__name__}: {exc}"[:1000]
        self.settle("failed", error=self.outcome.reason, final=True)
        self.event(key=f"{self.v.id}:{self.run_id}:failed",
                   extra={"traceback": traceback.format_exc(limit=3)[-800:]})

    # ------------------------------------------------------------------ status and event
    def settle(self, status: str, *, delivery_status: str | None = None, delivery_error: str | None = None,
               error: str | None = None, final: bool = False) -> None:
        """Change the version's status (the one transition) and copy it into the gold row.

        One session: :func:`run_state.settle_version`, ``last_run_at`` when this run generated the
        text, and at the end (``final``) the run requests of this lineage. In a round, all but
        ``failed`` wait for the round's one session (:meth:`Writes.apply_settles`) before its gold commit.
        """
        kw = {"delivery_status": delivery_status, "delivery_error": delivery_error, "error": error, "final": final}
        if self.writes.batched and status != "failed":
            self.writes.settles.append((self, status, kw))
            return
        self.writes.settles = [p for p in self.writes.settles if p[0] is not self]  # failed wins
        with self.res.session_factory() as session:
            self.apply_settle(session, status, **kw)

    def apply_settle(self, session: Any, status: str, *, delivery_status: str | None, delivery_error: str | None,
                     error: str | None, final: bool) -> None:
        d, steps = self.d, self.steps.as_dicts()
        state = run_state.settle_version(
            session, self.v.id, status, steps=steps, delivery_status=delivery_status,
            delivery_error=delivery_error, error=error, generated=status in ("generated", "empty") and not final)
        if self.generated and not final:
            run_state.mark_ran(session, d.id, self.now)
        if final:
            run_state.finish_requests(session, d.id, self.run_ids, ok=status != "failed")
        row = self.outcome.row
        if row:
            row.update({**state.gold_fields(), "steps": json.dumps(steps, sort_keys=True)})
            self.writes.row(row)

    def event(self, *, key: str, extra: dict[str, Any] | None = None) -> None:
        ev = run_event(self.d, self.outcome, key=key, now=self.now, extra=extra)
        if self.writes.batched:
            self.writes.events.append(ev)
        else:
            write_events(self.res.store, [ev], run_id=self.run_id)

    # ------------------------------------------------------------------ helpers
    @property
    def v(self) -> DeliverableVersion:
        assert self.version is not None, "allocate() first"
        return self.version

    def _silver(self) -> Any:
        """This user's prefetched silver rows (a round), or None (the run reads them)."""
        return self.prefetch.rows_of(self.d.user_id) if self.prefetch is not None else None

    def _read_sources(self) -> list[SourceRef]:
        return read_sources(self.d.deliverable_type, self.binding, self.d.sources)

    def _gather_platform(self) -> PlatformContext:
        with self.steps.step("gather_platform") as s:
            pc = gather_platform_context(self.res.store, user_id=self.d.user_id, sources=self.read_sources,
                                         now=self.now, timezone=self.timezone,
                                         looks_ahead_days=self.dtype.looks_ahead_days,
                                         rows=self._silver())
            s.detail.update({"sources": len(pc.groups), "items_fetched": pc.items_fetched,
                             "items_in_prompt": pc.items_in_prompt})
            return pc

    def _research(self, inp: ComposeInput, n_results: int) -> Research:
        return gather_research(llm=self.res.llm, search=self.res.search, steps=self.steps, inp=inp,
                               user_id=self.d.user_id, scope=self.scope, n_results=n_results, usage=self.usage)


def run_deliverable(res: RunResources, *, deliverable_id: str, run_id: str, root_run_id: str | None = None,
                    trigger: str = "manual", scope: Any = None, now: dt.datetime | None = None) -> RunOutcome:
    """Run one deliverable (the asset, the CLI, tests): ``DeliverableRun(...).execute()``."""
    return DeliverableRun(res, deliverable_id=deliverable_id, run_id=run_id, root_run_id=root_run_id,
                          trigger=trigger, scope=scope, now=now).execute()
