"""One deliverable run: freshness gate -> version -> gather (platform ∥ research) -> compose -> store
-> retain -> deliver -> event. Called by the asset; plain Python so it can be tested directly.

Steps are timed and their status is written to the control-plane version row as they finish
(``steps``: the seed pipeline's per-step status), and to the gold row at the end.

Resumption: the version is keyed by the run lineage (``root_run_id``), so a step retry or a
"re-execute from failure" resumes the same version. If its text was already stored, the model is
not called again and delivery goes through the outbox, which never sends a version twice.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from control_plane.models import Deliverable, DeliverableVersion, User, utcnow
from io_managers.delta_store import DeltaStore
from io_managers.predicates import Eq, all_of
from resources.search import SearchOutcome, WebSearch
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.deliverables import service
from yarn_assets.deliverables.content import PlatformContext, gather_platform_context
from yarn_assets.deliverables.delivery.base import Destination, parse_destination
from yarn_assets.deliverables.delivery.outbox import DeliveryOutcome, deliver_once
from yarn_assets.deliverables.delivery.resource import DeliveryChannels, file_outbox, slack_sender, smtp_sender
from yarn_assets.deliverables.freshness import has_new_content, source_snapshot, stale_note
from yarn_assets.deliverables.offline import compose_offline, offline_plan_terms
from yarn_assets.deliverables.prompting import MAX_TOKENS, ComposeInput, Research, build_prompt
from yarn_assets.deliverables.retention import mark_retained
from yarn_assets.deliverables.sources import SourceRef, effective_sources, normalize_sources, parse_source
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS
from yarn_assets.deliverables.types import binding_of, get_type
from yarn_assets.deliverables.user_context import read_user_context
from yarn_assets.people import service as people

OFFLINE_LABEL = "_Generated offline by deterministic rules (no LLM): a summary of your content, not a model's writing._"
EMPTY_RULE = "nothing to deliver: no platform content or research results for this deliverable"
SessionFactory = Callable[[], AbstractContextManager[Session]]


class ResearchPlan(BaseModel):
    """Search terms for the web and whether academic papers (arXiv) are relevant."""

    search_terms: list[str] = Field(min_length=1, max_length=5, description="1-5 web search queries")
    academic: bool = Field(description="true when arXiv papers would help (scientific or technical topic)")


@dataclass
class RunResources:
    store: DeltaStore
    session_factory: SessionFactory
    llm: Any  # resources.llm.LLM
    search: WebSearch
    delivery: DeliveryChannels
    log: Any = None
    embedder: Any = None  # resources.embeddings.Embedder: semantic context from the people domain


@dataclass
class Step:
    name: str
    status: str = "running"
    started_at: str = ""
    ms: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "started_at": self.started_at, "ms": round(self.ms, 1),
                "detail": self.detail}


@dataclass
class RunOutcome:
    status: str  # skipped | delivered | failed | empty
    deliverable_id: str
    user_id: str
    deliverable_type: str
    strategy: str
    version_id: str | None = None
    version_number: int | None = None
    resumed: bool = False
    reason: str | None = None
    row: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    delivery: DeliveryOutcome | None = None
    next_run_at: dt.datetime | None = None
    retained: int = 0
    wall_ms: float = 0.0


class _Steps:
    """Times steps and persists their status to the control-plane version row as they finish."""

    def __init__(self, res: RunResources) -> None:
        self.res = res
        self.steps: list[Step] = []
        self.version_id: str | None = None

    def _persist(self) -> None:
        if self.version_id is None:
            return
        with self.res.session_factory() as session:
            v = session.get(DeliverableVersion, self.version_id)
            if v is not None:
                v.steps = [s.as_dict() for s in self.steps]

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        s = Step(name=name, started_at=utcnow().isoformat())
        self.steps.append(s)
        t0 = time.perf_counter()
        try:
            yield s
        except BaseException as exc:
            s.status = "failed"
            s.detail["error"] = f"{type(exc).__name__}: {exc}"[:500]
            raise
        else:
            if s.status == "running":
                s.status = "ok"
        finally:
            s.ms = (time.perf_counter() - t0) * 1000
            self._persist()

    def skipped(self, name: str, why: str) -> None:
        self.steps.append(Step(name=name, status="skipped", started_at=utcnow().isoformat(), detail={"reason": why}))


def _gold_row(store: DeltaStore, deliverable_id: str, version_id: str) -> dict[str, Any] | None:
    df = store.read(DELIVERABLE_VERSIONS, all_of(Eq("deliverable_id", deliverable_id), Eq("version_id", version_id)))
    return df.row(0, named=True) if df.height else None


def previous_output(store: DeltaStore, deliverable_id: str, before_version: int) -> str | None:
    """The newest earlier version's delivered text (the original's 'past output' context)."""
    df = store.read(DELIVERABLE_VERSIONS, Eq("deliverable_id", deliverable_id),
                    columns=["version_number", "final_content", "status"])
    df = df.filter((pl.col("version_number") < before_version) & pl.col("final_content").is_not_null()
                   & pl.col("status").is_in(["delivered", "generated"]))
    if df.is_empty():
        return None
    return str(df.sort("version_number").row(-1, named=True)["final_content"])


def write_gold(store: DeltaStore, row: dict[str, Any]) -> None:
    df = pl.DataFrame([row], schema=dict(DELIVERABLE_VERSIONS.schema), strict=False)
    store.merge(DELIVERABLE_VERSIONS, df, pin=Eq("deliverable_id", row["deliverable_id"]))


def _skip_sources(binding: str, deliverable: Deliverable) -> list[SourceRef]:
    """Sources the skip rule judges: research without configured sources is never skipped."""
    if binding == "research":
        return [parse_source(s) for s in normalize_sources(deliverable.sources)]
    return effective_sources(deliverable.deliverable_type, binding, deliverable.sources)


def _read_sources(binding: str, deliverable: Deliverable) -> list[SourceRef]:
    """Sources read for the prompt: research grounds itself across platforms like cross_platform."""
    if binding == "research" and not deliverable.sources:
        return effective_sources(deliverable.deliverable_type, "cross_platform", None)
    return effective_sources(deliverable.deliverable_type, binding, deliverable.sources)


def run_deliverable(
    res: RunResources,
    *,
    deliverable_id: str,
    run_id: str,
    root_run_id: str | None = None,
    trigger: str = "manual",
    scope: Any = None,
    now: dt.datetime | None = None,
) -> RunOutcome:
    started = time.perf_counter()
    now = now or utcnow()
    root_run_id = root_run_id or run_id
    with res.session_factory() as session:
        d = service.get_deliverable(session, deliverable_id)
        user = session.get(User, d.user_id)
        assert user is not None
        session.expunge_all()
    dtype = get_type(d.deliverable_type)
    binding = binding_of(d.deliverable_type, d.type_config)
    timezone = (d.schedule or {}).get("timezone") or user.timezone or "UTC"
    outcome = RunOutcome(status="failed", deliverable_id=d.id, user_id=d.user_id, deliverable_type=dtype.name,
                         strategy=binding)
    steps = _Steps(res)
    outcome.steps = steps.steps

    with res.session_factory() as session:
        outcome.next_run_at = service.advance_schedule(session, d.id, now)
        service.claim_requests(session, d.id, run_id)

    # ---- freshness gate (scheduled runs only; manual, signal and request runs are forced)
    if (trigger == "schedule" and d.last_run_at is not None
            and not has_new_content(res.store, d.user_id, _skip_sources(binding, d), d.last_run_at)):
        outcome.status = "skipped"
        outcome.reason = f"no content newer than the last run ({d.last_run_at.isoformat()})"
        _event(res, d, outcome, key=f"skip:{d.id}:{root_run_id}", run_id=run_id, now=now)
        _finish(res, d.id, [run_id, root_run_id], ok=True)
        outcome.wall_ms = (time.perf_counter() - started) * 1000
        return outcome

    version, resumed = service.allocate_version(
        res.session_factory, deliverable_id=d.id, run_id=run_id, root_run_id=root_run_id, trigger=trigger,
        strategy=binding,
    )
    outcome.version_id, outcome.version_number, outcome.resumed = version.id, version.version_number, resumed
    steps.version_id = version.id
    dest = parse_destination(d.destination)  # the configured destination: nothing in the content changes it
    try:
        row = _gold_row(res.store, d.id, version.id) if resumed else None
        if row is not None and row.get("status") in ("generated", "delivered", "failed", "empty") \
                and row.get("generated_at") is not None:
            steps.skipped("generate", f"resumed version {version.version_number}: text already stored")
            prior = json.loads(row.get("steps") or "[]")
            steps.steps[:0] = [Step(name=s["name"], status=s["status"], started_at=s.get("started_at", ""),
                                    ms=s.get("ms", 0.0), detail=s.get("detail", {})) for s in prior
                               if s["name"] not in ("deliver",)]
        else:
            row = _generate(res, steps, d, user, dtype, binding, timezone, version, trigger, run_id, scope, now,
                            outcome, dest)
        outcome.row = row
        _deliver(res, steps, d, version, row, dest, run_id, outcome)
    except BaseException as exc:
        outcome.status = "failed"
        outcome.reason = f"{type(exc).__name__}: {exc}"[:1000]
        with res.session_factory() as session:
            v = session.get(DeliverableVersion, version.id)
            if v is not None:
                v.status, v.error = "failed", outcome.reason
                v.steps = [s.as_dict() for s in steps.steps]
        _finish(res, d.id, [run_id, root_run_id], ok=False)
        _event(res, d, outcome, key=f"{version.id}:{run_id}:failed", run_id=run_id, now=now,
               extra={"traceback": traceback.format_exc(limit=3)[-800:]})
        raise
    _event(res, d, outcome, key=version.id, run_id=run_id, now=now)
    _finish(res, d.id, [run_id, root_run_id], ok=outcome.status != "failed")
    outcome.wall_ms = (time.perf_counter() - started) * 1000
    return outcome


def _finish(res: RunResources, deliverable_id: str, run_ids: list[str], *, ok: bool) -> None:
    with res.session_factory() as session:
        service.finish_requests(session, deliverable_id, run_ids, ok=ok)


def _research(res: RunResources, steps: _Steps, inp: ComposeInput, d: Deliverable, scope: Any,
              n_results: int, usage: dict[str, Any]) -> Research:
    research = Research(provider=res.search.provider if res.search.online(res.llm) else "offline")
    with steps.step("plan") as s:
        system = ("You plan web research for a deliverable. Return 1-3 precise search queries and whether "
                  "academic papers would help.")
        prompt = (f"Deliverable: {inp.dtype.label}\nTopic: {inp.focus}\nTitle: {inp.title}\n"
                  f"Recipient: {inp.recipient_label}")
        result = res.llm.structured(
            task="generation", user_id=d.user_id, system=system, prompt=prompt, output=ResearchPlan,
            offline=lambda: ResearchPlan(search_terms=offline_plan_terms(inp),
                                         academic=inp.dtype.name == "research_brief"),
            scope=scope, max_tokens=400,
        )
        plan: ResearchPlan = result.value
        research.search_terms = [t.strip() for t in plan.search_terms if t.strip()][:3]
        _add_usage(usage, result.usage)
        s.detail.update({"search_terms": research.search_terms, "academic": plan.academic, "model": result.model})
    if not res.search.online(res.llm):
        research.notes.append("Web search and arXiv were not run (offline mode).")
        steps.skipped("search", "offline: no web access")
        steps.skipped("papers", "offline: no web access")
        return research
    with steps.step("search") as s:
        seen: set[str] = set()
        per_term = max(1, n_results // max(1, len(research.search_terms)) + 1)
        for term in research.search_terms:
            out: SearchOutcome = res.search.search(term, per_term, llm=res.llm)
            _search_usage(res, d, scope, out, usage)
            for r in out.results:
                if r.url not in seen and len(research.web_results) < n_results:
                    seen.add(r.url)
                    research.web_results.append(r)
        s.detail.update({"results": len(research.web_results), "provider": research.provider})
    if plan.academic:
        with steps.step("papers") as s:
            research.papers = res.search.papers(research.search_terms[0], 5, llm=res.llm)
            s.detail["papers"] = len(research.papers)
    else:
        steps.skipped("papers", "plan: not an academic topic")
    return research


def _add_usage(usage: dict[str, Any], u: Any) -> None:
    usage["input_tokens"] += int(getattr(u, "input_tokens", 0) or 0) + int(getattr(u, "cache_read_tokens", 0) or 0) \
        + int(getattr(u, "cache_write_tokens", 0) or 0)
    usage["output_tokens"] += int(getattr(u, "output_tokens", 0) or 0)
    usage["cost_usd"] += float(getattr(u, "cost_usd", 0.0) or 0.0)
    usage["calls"] += int(getattr(u, "calls", 0) or 0)


def _search_usage(res: RunResources, d: Deliverable, scope: Any, out: SearchOutcome, usage: dict[str, Any]) -> None:
    if out.provider == "anthropic" and out.model:
        recorded = res.llm.record_usage(task="generation", user_id=d.user_id, model=out.model, scope=scope,
                                        input_tokens=out.input_tokens, output_tokens=out.output_tokens)
        _add_usage(usage, recorded)
    usage["cost_usd"] += out.cost_usd
    usage["searches"] += out.searches


def _generate(res: RunResources, steps: _Steps, d: Deliverable, user: User, dtype: Any, binding: str, timezone: str,
              version: DeliverableVersion, trigger: str, run_id: str, scope: Any, now: dt.datetime,
              outcome: RunOutcome, dest: Destination) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "calls": 0, "searches": 0}
    read_sources = _read_sources(binding, d)
    with steps.step("context") as s:
        with res.session_factory() as session:
            memory = read_user_context(session, d.user_id)
        previous = previous_output(res.store, d.id, version.version_number)
        s.detail.update({"memory_chars": len(memory), "previous_chars": len(previous or "")})
    inp = ComposeInput(
        dtype=dtype, title=d.title, description=d.description, type_config=d.type_config or {},
        recipient=d.recipient_context or {}, user_name=user.name, timezone=timezone, now=now,
        platform=PlatformContext(), research=Research(), memory=memory, previous=previous, binding=binding,
    )

    def gather() -> PlatformContext:
        with steps.step("gather_platform") as s:
            pc = gather_platform_context(res.store, user_id=d.user_id, sources=read_sources, now=now,
                                         timezone=timezone, looks_ahead_days=dtype.looks_ahead_days)
            s.detail.update({"sources": len(pc.groups), "items_fetched": pc.items_fetched,
                             "items_in_prompt": pc.items_in_prompt})
            return pc

    n_results = dtype.research_results or (5 if binding == "research" else 3)
    if binding == "hybrid":
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="deliverable") as pool:
            platform_future = pool.submit(gather)
            research_future = pool.submit(_research, res, steps, inp, d, scope, n_results, usage)
            inp.platform = platform_future.result()
            inp.research = research_future.result()
    elif binding == "research":
        inp.platform = gather()
        inp.research = _research(res, steps, inp, d, scope, n_results, usage)
    else:
        inp.platform = gather()
    with steps.step("people") as s:
        found = people.for_deliverable(res.store, user_id=d.user_id, rows=inp.platform.in_prompt,
                                       queries=people_queries(inp), now=now, embedder=res.embedder, timezone=timezone)
        inp.people = found.text
        s.detail.update({"people": len(found.people), "related_items": len(found.related)})

    with res.session_factory() as session:
        snapshot, stale = source_snapshot(session, res.store, user_id=d.user_id, sources=read_sources, now=now,
                                          required_hours=dtype.freshness_requirement_hours,
                                          implicit=not normalize_sources(d.sources))

    system, prompt = build_prompt(inp)
    draft: str | None = None
    final: str | None = None
    model = None
    offline = bool(res.llm.is_offline)
    status = "generated"
    if not inp.has_material:
        steps.skipped("compose", EMPTY_RULE)
        status = "empty"
    else:
        with steps.step("compose") as s:
            result = res.llm.text(task="generation", user_id=d.user_id, system=system, prompt=prompt,
                                  offline=lambda: compose_offline(inp), scope=scope, max_tokens=MAX_TOKENS)
            _add_usage(usage, result.usage)
            draft, model, offline = result.text, result.model, bool(result.offline)
            s.detail.update({"model": model, "offline": offline, "chars": len(draft)})
        final = finalize(draft, dtype, stale=stale, offline=offline)

    with steps.step("store") as s:
        in_prompt = inp.platform.in_prompt
        row = {
            "deliverable_id": d.id, "version_id": version.id, "version_number": version.version_number,
            "user_id": d.user_id, "deliverable_type": dtype.name, "title": d.title, "strategy": binding,
            "trigger": trigger, "status": status, "draft_content": draft, "final_content": final,
            "offline": offline, "model": model, "input_tokens": usage["input_tokens"],
            "output_tokens": usage["output_tokens"], "cost_usd": round(usage["cost_usd"], 6),
            "prompt_chars": len(system) + len(prompt), "items_in_prompt": inp.platform.items_in_prompt,
            "sources_used": json.dumps(inp.platform.sources_used(), sort_keys=True),
            "source_snapshot": json.dumps(snapshot, sort_keys=True, default=str),
            "stale_sources": json.dumps(stale, sort_keys=True),
            "research": json.dumps({**inp.research.as_dict(), "searches": usage["searches"]}, sort_keys=True),
            "steps": "[]", "destination": json.dumps(dest.as_dict()), "delivery_status": None,
            "delivery_error": None, "delivered_at": None, "run_id": run_id,
            "created_at": version.created_at, "generated_at": utcnow(),
        }
        row["steps"] = json.dumps([x.as_dict() for x in steps.steps], sort_keys=True)
        write_gold(res.store, row)
        s.detail["status"] = status
    if not in_prompt.is_empty():
        with steps.step("retain") as s:
            outcome.retained = mark_retained(res.store, in_prompt, ref=version.id, now=now)
            s.detail["items_marked"] = outcome.retained
    with res.session_factory() as session:
        v = session.get(DeliverableVersion, version.id)
        assert v is not None
        v.status, v.generated_at = status, utcnow()
        dd = session.get(Deliverable, d.id)
        if dd is not None:
            dd.last_run_at = now
    return row


def people_queries(inp: ComposeInput, n_titles: int = 3) -> list[str]:
    """What the related items should be close to: the deliverable's focus and its material's titles."""
    titles = []
    rows = inp.platform.in_prompt
    if rows.height and "title" in rows.columns:
        titles = [t for t in rows["title"].drop_nulls().unique(maintain_order=True).to_list() if t.strip()]
    return list(dict.fromkeys([inp.focus, *titles[:n_titles]]))


def finalize(draft: str, dtype: Any, *, stale: list[dict[str, Any]], offline: bool) -> str:
    """The delivered text: the draft plus the stale-source line and the offline label, within limits."""
    parts = [draft.strip()]
    note = stale_note(stale)
    if note:
        parts.append(note)
    if offline:
        parts.append(OFFLINE_LABEL)
    text = "\n\n".join(parts)
    if dtype.max_chars and len(text) > dtype.max_chars:
        tail = "\n\n".join(parts[1:])
        room = max(200, dtype.max_chars - len(tail) - 4)
        text = parts[0][:room].rsplit("\n", 1)[0] + "\n…" + ("\n\n" + tail if tail else "")
    return text


def _deliver(res: RunResources, steps: _Steps, d: Deliverable, version: DeliverableVersion, row: dict[str, Any],
             dest: Destination, run_id: str, outcome: RunOutcome) -> None:
    final = row.get("final_content")
    if row.get("status") == "empty" or not (final or "").strip():
        steps.skipped("deliver", EMPTY_RULE)
        outcome.status = "empty"
        outcome.reason = EMPTY_RULE
        _record_delivery(res, d, version, row, steps, status="skipped", error=EMPTY_RULE, version_status="empty")
        return
    with steps.step("deliver") as s:
        result = deliver_once(res.session_factory, version_id=version.id, deliverable_id=d.id, dest=dest, run_id=run_id,
                              send=lambda: send_to(res.delivery, dest, d, version, final, row))
        s.detail.update({"channel": dest.channel, "target": dest.target, "status": result.status,
                         "duplicate": result.duplicate, "attempts": result.attempts})
        if result.status != "delivered":
            s.status = "failed"
            s.detail["error"] = result.error
    outcome.delivery = result
    outcome.status = "delivered" if result.status == "delivered" else "failed"
    outcome.reason = result.error
    _record_delivery(res, d, version, row, steps, status=result.status, error=result.error,
                     version_status=outcome.status)


def send_to(channels: DeliveryChannels, dest: Destination, d: Deliverable, version: DeliverableVersion,
            text: str, row: dict[str, Any]) -> str:
    """Send ``text`` to the deliverable's configured destination (the only place a recipient is chosen)."""
    subject = f"{d.title} (v{version.version_number})"
    if dest.channel == "email":
        return smtp_sender(channels).send(to=dest.target, subject=subject, markdown_text=text,
                                         message_id=f"<{version.id}@deliverables.yarnnn>")
    if dest.channel == "slack":
        return slack_sender(channels).send(channel=dest.target, title=subject, markdown_text=text)
    return file_outbox(channels).send(
        user_id=d.user_id, deliverable_id=d.id, version_number=version.version_number, version_id=version.id,
        title=subject, markdown_text=text,
        header={"deliverable": d.id, "type": d.deliverable_type, "version": str(version.version_number),
                "generated_at": str(row.get("generated_at")), "model": str(row.get("model")),
                "offline": str(row.get("offline")).lower()},
    )


def _record_delivery(res: RunResources, d: Deliverable, version: DeliverableVersion, row: dict[str, Any],
                     steps: _Steps, *, status: str, error: str | None, version_status: str) -> None:
    now = utcnow()
    with res.session_factory() as session:
        v = session.get(DeliverableVersion, version.id)
        assert v is not None
        v.delivery_status, v.delivery_error, v.status = status, error, version_status
        v.error = error if version_status == "failed" else None
        if status == "delivered":
            v.delivered_at = v.delivered_at or now
        v.steps = [s.as_dict() for s in steps.steps]
        delivered_at = v.delivered_at
    row.update({
        "status": version_status, "delivery_status": status, "delivery_error": error,
        "delivered_at": delivered_at, "steps": json.dumps([s.as_dict() for s in steps.steps], sort_keys=True),
    })
    write_gold(res.store, row)


def _event(res: RunResources, d: Deliverable, outcome: RunOutcome, *, key: str, run_id: str, now: dt.datetime,
           extra: dict[str, Any] | None = None) -> None:
    row = outcome.row or {}
    summary = {
        "delivered": f"Delivered {d.title} v{outcome.version_number}",
        "empty": f"{d.title} v{outcome.version_number}: nothing new to deliver",
        "skipped": f"Skipped {d.title}: no new content since the last run",
        "failed": f"{d.title} v{outcome.version_number} failed: {(outcome.reason or '')[:120]}",
    }[outcome.status]
    metadata = {
        "deliverable_id": d.id, "version_id": outcome.version_id, "version_number": outcome.version_number,
        "deliverable_type": d.deliverable_type, "strategy": outcome.strategy, "final_status": outcome.status,
        "delivery_error": outcome.reason if outcome.status == "failed" else None,
        "skip_reason": outcome.reason if outcome.status in ("skipped", "empty") else None,
        "input_tokens": row.get("input_tokens"), "output_tokens": row.get("output_tokens"),
        "cost_usd": row.get("cost_usd"), "offline": row.get("offline"), **(extra or {}),
    }
    write_events(res.store, [ActivityEvent(
        user_id=d.user_id, event_type="deliverable_run", summary=summary, idempotency_key=key,
        metadata=metadata, event_ref=outcome.version_id or d.id, created_at=now,
    )], run_id=run_id)


@contextmanager
def run_resources_from_settings(settings: Any) -> Iterator[RunResources]:
    """The asset's resources outside Dagster (CLI, tests): built as the definitions build them, with
    EnvVar secrets resolved (and torn down) the way a run does it."""
    from contextlib import ExitStack

    from resources.registry import build_resources

    r = build_resources(settings)
    with ExitStack() as stack:
        ready = {k: stack.enter_context(r[k].process_config_and_initialize_cm())
                 for k in ("warehouse", "control_plane", "llm", "search", "delivery", "embeddings")}
        cp = ready["control_plane"]
        yield RunResources(store=ready["warehouse"].store, session_factory=cp.session,
                           llm=ready["llm"], search=ready["search"], delivery=ready["delivery"],
                           embedder=ready["embeddings"].embedder())
