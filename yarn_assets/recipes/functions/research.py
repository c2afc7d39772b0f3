"""Functions and flows of the research recipe (``research_email``): the built-in research strategy,
step by step, from the deliverables domain's own building blocks.

The seed pipeline's four steps (parse the request -> search -> papers -> compose) become
``research.request`` (the deliverable, its version, memory and previous output),
``research.gather_platform`` (the user's own grounding content), the ``research.plan`` flow (search
terms and whether papers help), ``research.web_search``, ``research.arxiv_papers``, the
``deliverables.compose`` flow and ``research.store_version``; the recipe's ``output`` step delivers.
Each function reuses what ``yarn_assets.deliverables.run`` uses, so the recipe writes the same
version (text, research, sources, stale note) as the built-in run on the same inputs.

Step outputs are JSON: platform rows are carried as dicts (times as ISO strings) and turned
back into frames where the deliverables code needs them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl

from control_plane.models import utcnow
from io_managers.json_steps import to_jsonable
from resources.search import Paper, WebResult
from yarn_assets.core.tables import PLATFORM_CONTENT
from yarn_assets.deliverables import run_state
from yarn_assets.deliverables.content import PlatformContext, SourceGroup, gather_platform_context
from yarn_assets.deliverables.freshness import source_snapshot
from yarn_assets.deliverables.offline import compose_offline, offline_plan_terms
from yarn_assets.deliverables.prompting import MAX_TOKENS, ComposeInput, Research, build_prompt, finalize
from yarn_assets.deliverables.research import ResearchPlan
from yarn_assets.deliverables.retention import mark_retained
from yarn_assets.deliverables.sources import effective_sources, normalize_sources, parse_source
from yarn_assets.deliverables.types import binding_of, get_type
from yarn_assets.deliverables.user_context import read_user_context
from yarn_assets.deliverables.versions import previous_output, write_gold
from yarn_assets.recipes.delivery import load_deliverable, version_for_run
from yarn_assets.recipes.executors import StepError
from yarn_assets.recipes.registry import FlowCall, recipe_flow, recipe_function
from yarn_assets.recipes.runtime import StepRuntime, parse_time

OFFLINE_NOTE = "Web search and arXiv were not run (offline mode)."

_ROW_TIMES = ("occurred_at", "ends_at", "fetched_at", "expires_at", "sort_at")


# ------------------------------------------------------------------------------------------ request
@recipe_function("research.request", outputs=("deliverable_id", "user_id", "version_id", "version_number", "binding",
                                               "focus", "n_results", "timezone"))
def request(rt: StepRuntime, *, deliverable_id: str) -> dict[str, Any]:
    """Parse the request: the deliverable's configuration, this run's version, memory and previous output."""
    d, user = load_deliverable(rt, deliverable_id)
    dtype = get_type(d.deliverable_type)
    binding = binding_of(d.deliverable_type, d.type_config)
    if binding not in ("research", "hybrid"):
        raise StepError(f"deliverable {d.id} is a {dtype.name} ({binding}); the research recipe runs research and "
                        "hybrid deliverables")
    version, resumed = version_for_run(rt, d.id, strategy=binding)
    with rt.session_factory() as session:
        memory = read_user_context(session, d.user_id)
    out = {
        "deliverable_id": d.id, "user_id": d.user_id, "title": d.title, "description": d.description,
        "deliverable_type": dtype.name, "binding": binding, "type_config": d.type_config or {},
        "recipient": d.recipient_context or {}, "user_name": user.name,
        "timezone": (d.schedule or {}).get("timezone") or user.timezone or "UTC",
        "sources": d.sources or [], "destination": d.destination or {},
        "version_id": version.id, "version_number": version.version_number, "resumed": resumed,
        "version_created_at": version.created_at.isoformat() if version.created_at else None,
        "memory": memory, "previous": previous_output(rt.store, d.id, version.version_number),
        "n_results": dtype.research_results or (5 if binding == "research" else 3),
    }
    out["focus"] = _compose_input(out, rt.now).focus
    return out


def _compose_input(req: dict[str, Any], now: dt.datetime, platform: PlatformContext | None = None,
                   research: Research | None = None) -> ComposeInput:
    return ComposeInput(
        dtype=get_type(req["deliverable_type"]), title=req["title"], description=req.get("description"),
        type_config=req.get("type_config") or {}, recipient=req.get("recipient") or {},
        user_name=req.get("user_name"), timezone=req["timezone"], now=now,
        platform=platform or PlatformContext(), research=research or Research(), memory=req.get("memory") or "",
        previous=req.get("previous"), binding=req["binding"],
    )


def read_sources(req: dict[str, Any]) -> list[Any]:
    """As the built-in: research without configured sources grounds itself across platforms."""
    if req["binding"] == "research" and not req.get("sources"):
        return effective_sources(req["deliverable_type"], "cross_platform", None)
    return effective_sources(req["deliverable_type"], req["binding"], req.get("sources"))


# ------------------------------------------------------------------------------------------ platform
def _row_json(row: dict[str, Any]) -> dict[str, Any]:
    return to_jsonable({k: v for k, v in row.items()})


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema: dict[str, Any] = {c: PLATFORM_CONTENT.schema[c] for c in rows[0] if c in PLATFORM_CONTENT.schema} \
        if rows else {}
    schema["sort_at"] = pl.Datetime("us", "UTC")
    schema["_group_name"] = pl.Utf8
    fixed = []
    for r in rows:
        r = dict(r)
        for c in _ROW_TIMES:
            if r.get(c) is not None:
                r[c] = parse_time(r[c], c)
        fixed.append(r)
    return pl.DataFrame(fixed, schema={c: schema.get(c, pl.Utf8) for c in (rows[0] if rows else schema)})


@recipe_function("research.gather_platform", outputs=("groups", "text", "items_in_prompt", "items_fetched",
                                                       "sources_used", "snapshot", "stale"))
def gather_platform(rt: StepRuntime, *, request: dict[str, Any]) -> dict[str, Any]:
    """The user's own silver content for grounding (the built-in's caps and rendering) and the source snapshot."""
    dtype = get_type(request["deliverable_type"])
    sources = read_sources(request)
    pc = gather_platform_context(rt.store, user_id=request["user_id"], sources=sources, now=rt.now,
                                 timezone=request["timezone"], looks_ahead_days=dtype.looks_ahead_days)
    with rt.session_factory() as session:
        snapshot, stale = source_snapshot(session, rt.store, user_id=request["user_id"], sources=sources, now=rt.now,
                                          required_hours=dtype.freshness_requirement_hours,
                                          implicit=not normalize_sources(request.get("sources")))
    groups = [{"source": g.source.as_dict(), "platform": g.platform, "resource_id": g.resource_id,
               "resource_name": g.resource_name, "items_fetched": g.fetched.height,
               "rows": [_row_json(r) for r in g.rendered.iter_rows(named=True)]} for g in pc.groups]
    return {"groups": groups, "text": pc.text, "items_in_prompt": pc.items_in_prompt,
            "items_fetched": pc.items_fetched, "sources_used": pc.sources_used(),
            "snapshot": to_jsonable(snapshot), "stale": to_jsonable(stale)}


def platform_context(platform: dict[str, Any]) -> PlatformContext:
    ctx = PlatformContext(text=platform.get("text") or "")
    for g in platform.get("groups") or []:
        rendered = _frame(g["rows"])
        ctx.groups.append(SourceGroup(parse_source(g["source"]), g["platform"], g.get("resource_id"),
                                      g["resource_name"], rendered, rendered))
    return ctx


# ------------------------------------------------------------------------------------------ research
PLAN_SYSTEM = ("You plan web research for a deliverable. Return 1-3 precise search queries and whether "
               "academic papers would help.")


@recipe_flow("research.plan", output=ResearchPlan, task="generation", estimate_input_tokens=150,
             estimate_output_tokens=400)
def plan(rt: StepRuntime, *, request: dict[str, Any]) -> FlowCall:
    """Plan web research for a deliverable: 1-3 queries and whether papers help (the built-in's plan step)."""
    inp = _compose_input(request, rt.now)
    prompt = (f"Deliverable: {inp.dtype.label}\nTopic: {inp.focus}\nTitle: {inp.title}\n"
              f"Recipient: {inp.recipient_label}")
    call = FlowCall(
        system=PLAN_SYSTEM, prompt=prompt, max_tokens=400,
        offline=lambda: ResearchPlan(search_terms=offline_plan_terms(inp), academic=inp.dtype.name == "research_brief"),
        post=lambda answer: {"search_terms": [t.strip() for t in answer.search_terms if t.strip()][:3],
                             "academic": bool(answer.academic)},
    )
    call.user_id = request["user_id"]
    return call


@recipe_function("research.web_search", outputs=("online", "provider", "results", "notes", "usage"))
def web_search(rt: StepRuntime, *, terms: list[str], n_results: int, user_id: str) -> dict[str, Any]:
    """Web results for the plan's terms (deduplicated by URL, at most ``n_results``); offline: none, with a note."""
    usage = {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "calls": 0, "searches": 0}
    if not rt.search.online(rt.llm):
        return {"online": False, "provider": "offline", "results": [], "notes": [OFFLINE_NOTE], "usage": usage}
    seen: set[str] = set()
    results: list[dict[str, Any]] = []
    per_term = max(1, n_results // max(1, len(terms)) + 1)
    for term in terms:
        out = rt.search.search(term, per_term, llm=rt.llm)
        if out.provider == "anthropic" and out.model:
            recorded = rt.llm.record_usage(task="generation", user_id=user_id, model=out.model, scope=rt.scope,
                                           input_tokens=out.input_tokens, output_tokens=out.output_tokens)
            usage["input_tokens"] += recorded.input_tokens + recorded.cache_read_tokens + recorded.cache_write_tokens
            usage["output_tokens"] += recorded.output_tokens
            usage["cost_usd"] += recorded.cost_usd
            usage["calls"] += recorded.calls
        usage["cost_usd"] += out.cost_usd
        usage["searches"] += out.searches
        for r in out.results:
            if r.url not in seen and len(results) < n_results:
                seen.add(r.url)
                results.append(r.as_dict())
    return {"online": True, "provider": rt.search.provider, "results": results, "notes": [], "usage": usage}


@recipe_function("research.arxiv_papers", outputs=("papers",))
def arxiv_papers(rt: StepRuntime, *, terms: list[str], max_results: int = 5) -> dict[str, Any]:
    """arXiv papers for the first search term (the seed pipeline's ArXiv helper)."""
    if not terms:
        return {"papers": []}
    return {"papers": [p.as_dict() for p in rt.search.papers(terms[0], max_results, llm=rt.llm)]}


def research_of(research: dict[str, Any]) -> Research:
    return Research(
        search_terms=list(research.get("search_terms") or []),
        web_results=[WebResult(**r) for r in research.get("web_results") or []],
        papers=[Paper(**p) for p in research.get("papers") or []],
        provider=str(research.get("provider") or "none"),
        notes=list(research.get("notes") or []),
    )


@recipe_function("research.has_material", outputs=("has_material", "items_in_prompt", "research_results"))
def has_material(rt: StepRuntime, *, platform: dict[str, Any], research: dict[str, Any]) -> dict[str, Any]:
    """Whether there is anything to write about (platform items in the prompt, or research results)."""
    r = research_of(research)
    return {"has_material": int(platform.get("items_in_prompt") or 0) > 0 or not r.empty,
            "items_in_prompt": int(platform.get("items_in_prompt") or 0),
            "research_results": len(r.web_results) + len(r.papers)}


# ------------------------------------------------------------------------------------------ compose
@recipe_flow("deliverables.compose", output=None, task="generation", estimate_input_tokens=12_000,
             estimate_output_tokens=MAX_TOKENS)
def compose(rt: StepRuntime, *, request: dict[str, Any], platform: dict[str, Any],
            research: dict[str, Any]) -> FlowCall:
    """The deliverable's text from the built-in prompt (type prompt, sections, material, research, memory,
    previous version); offline, the deterministic composer of the type."""
    inp = _compose_input(request, rt.now, platform_context(platform), research_of(research))
    system, prompt = build_prompt(inp)
    call = FlowCall(system=system, prompt=prompt, offline=lambda: compose_offline(inp), max_tokens=MAX_TOKENS,
                    post=lambda text: {"text": text, "prompt_chars": len(system) + len(prompt)})
    call.user_id = request["user_id"]
    return call


# ------------------------------------------------------------------------------------------ store
def _sum_usage(*usages: dict[str, Any] | None) -> dict[str, Any]:
    total = {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "searches": 0}
    for u in usages:
        for k in total:
            total[k] += (u or {}).get(k) or 0
    return total


@recipe_function("research.store_version", outputs=("status", "final", "version_id", "retained"))
def store_version(rt: StepRuntime, *, request: dict[str, Any], platform: dict[str, Any], research: dict[str, Any],
                  compose: dict[str, Any] | None = None, usage: list[dict[str, Any]] | None = None
                  ) -> dict[str, Any]:
    """Write the version's gold row (draft, final with stale note and offline label, research, sources, tokens),
    mark the prompt's items retained and record the version as generated (or empty without material)."""
    dtype = get_type(request["deliverable_type"])
    draft = compose.get("text") if compose else None
    llm = (compose or {}).get("llm") or {}
    offline = bool(llm.get("offline", getattr(rt.llm, "is_offline", True)))
    status = "generated" if draft else "empty"
    final = finalize(draft, dtype, stale=platform.get("stale") or [], offline=offline) if draft else None
    total = _sum_usage(*(usage or []), llm)
    r = research_of(research)
    created = parse_time(request["version_created_at"], "version_created_at") \
        if request.get("version_created_at") else utcnow()
    row = {
        "deliverable_id": request["deliverable_id"], "version_id": request["version_id"],
        "version_number": request["version_number"], "user_id": request["user_id"],
        "deliverable_type": dtype.name, "title": request["title"], "strategy": request["binding"],
        "trigger": "manual", "status": status, "draft_content": draft, "final_content": final,
        "offline": offline, "model": llm.get("model"), "input_tokens": int(total["input_tokens"]),
        "output_tokens": int(total["output_tokens"]), "cost_usd": round(float(total["cost_usd"]), 6),
        "prompt_chars": (compose or {}).get("prompt_chars") or 0,
        "items_in_prompt": int(platform.get("items_in_prompt") or 0),
        "sources_used": json.dumps(platform.get("sources_used") or [], sort_keys=True),
        "source_snapshot": json.dumps(platform.get("snapshot") or [], sort_keys=True, default=str),
        "stale_sources": json.dumps(platform.get("stale") or [], sort_keys=True),
        "research": json.dumps({**r.as_dict(), "searches": int(total["searches"])}, sort_keys=True),
        "steps": json.dumps([{"name": f"recipe:{rt.recipe_id}", "status": "ok", "run_id": rt.run_id}]),
        "destination": json.dumps(request.get("destination") or {"platform": "file", "target": "outbox"}),
        "delivery_status": None, "delivery_error": None, "delivered_at": None, "run_id": rt.run_id,
        "created_at": created, "generated_at": utcnow(),
    }
    write_gold(rt.store, row)
    in_prompt = platform_context(platform).in_prompt
    retained = mark_retained(rt.store, in_prompt, ref=request["version_id"], now=rt.now) if in_prompt.height else 0
    with rt.session_factory() as session:
        run_state.settle_version(session, request["version_id"], status, generated=True)
        run_state.mark_ran(session, request["deliverable_id"], rt.now)
    return {"status": status, "final": final, "version_id": request["version_id"], "retained": retained}
