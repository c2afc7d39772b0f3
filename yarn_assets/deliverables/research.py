"""The research part of a run (research and hybrid bindings): plan -> web search -> arXiv papers.

The plan is an LLM call (offline: deterministic terms from the deliverable's focus); search and
papers go through the ``search`` resource, whose Anthropic web-search tokens are recorded in
``llm_usage`` like any other call. Offline runs say so in the research notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from resources.search import SearchOutcome, WebSearch
from yarn_assets.deliverables.offline import offline_plan_terms
from yarn_assets.deliverables.prompting import ComposeInput, Research
from yarn_assets.deliverables.steps import StepLog

PLAN_SYSTEM = ("You plan web research for a deliverable. Return 1-3 precise search queries and whether "
               "academic papers would help.")


class ResearchPlan(BaseModel):
    """Search terms for the web and whether academic papers (arXiv) are relevant."""

    search_terms: list[str] = Field(min_length=1, max_length=5, description="1-5 web search queries")
    academic: bool = Field(description="true when arXiv papers would help (scientific or technical topic)")


@dataclass
class Usage:
    """Tokens, cost, calls and searches of one run (LLM calls and paid web searches)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    searches: int = 0

    def add(self, u: Any) -> None:
        """Add an LLM result's usage (cache reads and writes count as input)."""
        self.input_tokens += int(getattr(u, "input_tokens", 0) or 0) + int(getattr(u, "cache_read_tokens", 0) or 0) \
            + int(getattr(u, "cache_write_tokens", 0) or 0)
        self.output_tokens += int(getattr(u, "output_tokens", 0) or 0)
        self.cost_usd += float(getattr(u, "cost_usd", 0.0) or 0.0)
        self.calls += int(getattr(u, "calls", 0) or 0)

    def add_search(self, llm: Any, out: SearchOutcome, *, user_id: str, scope: Any) -> None:
        """A search's cost; Anthropic web search also spends model tokens, recorded in ``llm_usage``."""
        if out.provider == "anthropic" and out.model:
            self.add(llm.record_usage(task="generation", user_id=user_id, model=out.model, scope=scope,
                                      input_tokens=out.input_tokens, output_tokens=out.output_tokens))
        self.cost_usd += out.cost_usd
        self.searches += out.searches


def gather_research(*, llm: Any, search: WebSearch, steps: StepLog, inp: ComposeInput, user_id: str, scope: Any,
                    n_results: int, usage: Usage) -> Research:
    """Plan, search and (when the plan says so) read papers; each a timed step."""
    online = search.online(llm)
    research = Research(provider=search.provider if online else "offline")
    with steps.step("plan") as s:
        prompt = (f"Deliverable: {inp.dtype.label}\nTopic: {inp.focus}\nTitle: {inp.title}\n"
                  f"Recipient: {inp.recipient_label}")
        result = llm.structured(
            task="generation", user_id=user_id, system=PLAN_SYSTEM, prompt=prompt, output=ResearchPlan,
            offline=lambda: ResearchPlan(search_terms=offline_plan_terms(inp),
                                         academic=inp.dtype.name == "research_brief"),
            scope=scope, max_tokens=400,
        )
        plan: ResearchPlan = result.value
        research.search_terms = [t.strip() for t in plan.search_terms if t.strip()][:3]
        usage.add(result.usage)
        s.detail.update({"search_terms": research.search_terms, "academic": plan.academic, "model": result.model})
    if not online:
        research.notes.append("Web search and arXiv were not run (offline mode).")
        steps.skipped("search", "offline: no web access")
        steps.skipped("papers", "offline: no web access")
        return research
    with steps.step("search") as s:
        seen: set[str] = set()
        per_term = max(1, n_results // max(1, len(research.search_terms)) + 1)
        for term in research.search_terms:
            out = search.search(term, per_term, llm=llm)
            usage.add_search(llm, out, user_id=user_id, scope=scope)
            for r in out.results:
                if r.url not in seen and len(research.web_results) < n_results:
                    seen.add(r.url)
                    research.web_results.append(r)
        s.detail.update({"results": len(research.web_results), "provider": research.provider})
    if plan.academic:
        with steps.step("papers") as s:
            research.papers = search.papers(research.search_terms[0], 5, llm=llm)
            s.detail["papers"] = len(research.papers)
    else:
        steps.skipped("papers", "plan: not an academic topic")
    return research
