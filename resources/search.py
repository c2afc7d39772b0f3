"""Web search and arXiv for the research strategy, each reachable by base URL (tests serve both on loopback).

Providers:

* ``anthropic`` (default): the Messages API's server-side web search tool
  (``web_search_20250305``); results come back as ``web_search_tool_result`` blocks and cited
  passages as ``web_search_result_location`` citations.
* ``exa``: Exa's ``POST /search`` (the seed pipeline's search API) with ``contents.text``.
* ``offline``: no web access; research runs on platform grounding only and says so.

arXiv goes through its public Atom API (``/api/query?search_query=...``), parsed with the
stdlib XML parser. Every call has a timeout and bounded retries on connection errors and 5xx.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import dagster as dg
import requests
from pydantic import Field
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

ATOM = "{http://www.w3.org/2005/Atom}"

#: web search tool price (USD per search) on top of tokens
WEB_SEARCH_USD = 0.01


class SearchError(RuntimeError):
    """A search provider or arXiv failed after retries, or is misconfigured (names the setting)."""


@dataclass
class WebResult:
    title: str
    url: str
    snippet: str = ""
    published: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Paper:
    title: str
    url: str
    summary: str
    authors: list[str] = field(default_factory=list)
    published: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchOutcome:
    results: list[WebResult]
    provider: str
    input_tokens: int = 0
    output_tokens: int = 0
    searches: int = 0
    cost_usd: float = 0.0
    model: str | None = None


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    name = type(exc).__name__
    return name in ("APIConnectionError", "APITimeoutError", "InternalServerError", "RateLimitError")


_retry = retry(retry=retry_if_exception(_transient), stop=stop_after_attempt(3),
               wait=wait_exponential(multiplier=0.2, max=2), reraise=True)


def parse_arxiv_atom(xml_text: str) -> list[Paper]:
    """Entries of an arXiv Atom feed (title, abstract, authors, date, abs URL)."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise SearchError(f"arXiv returned malformed XML: {exc}") from None
    papers = []
    for entry in root.findall(f"{ATOM}entry"):
        title = " ".join((entry.findtext(f"{ATOM}title") or "").split())
        url = (entry.findtext(f"{ATOM}id") or "").strip()
        if not title or not url:
            continue
        summary = " ".join((entry.findtext(f"{ATOM}summary") or "").split())
        authors = [" ".join((a.findtext(f"{ATOM}name") or "").split()) for a in entry.findall(f"{ATOM}author")]
        papers.append(Paper(title=title, url=url, summary=summary, authors=[a for a in authors if a],
                            published=(entry.findtext(f"{ATOM}published") or "").strip() or None))
    return papers


class WebSearch(dg.ConfigurableResource):
    """Web search (configurable provider) and arXiv paper lookup."""

    provider: Literal["anthropic", "exa", "offline"] = Field(default="anthropic")
    base_url: str | None = Field(default=None, description="Exa base URL (tests: loopback); Anthropic's is the LLM's.")
    api_key: str | None = Field(default=None, description="Exa key (an EnvVar); 'anthropic' uses the LLM resource.")
    model: str = Field(default="claude-haiku-4-5-20251001", description="Model that runs the web search tool.")
    arxiv_base_url: str = Field(default="https://export.arxiv.org/api/query")
    timeout_seconds: float = Field(default=30.0)

    def online(self, llm: Any = None) -> bool:
        """Whether searches reach the web (the anthropic provider is offline with an offline LLM)."""
        if self.provider == "anthropic":
            return llm is not None and not llm.is_offline
        return self.provider != "offline"

    def _need_key(self) -> str:
        if not self.api_key:
            raise SearchError(f"web search provider {self.provider!r} needs YARNNN_SEARCH_API_KEY to be set")
        return self.api_key

    # ------------------------------------------------------------------ web
    def search(self, query: str, max_results: int = 5, llm: Any = None) -> SearchOutcome:
        """Web results for ``query``; the ``anthropic`` provider runs through ``llm`` (the LLM resource)."""
        if self.provider == "offline":
            return SearchOutcome(results=[], provider="offline")
        if self.provider == "exa":
            return self._exa(query, max_results)
        return self._anthropic(query, max_results, llm)

    def _exa(self, query: str, max_results: int) -> SearchOutcome:
        key = self._need_key()
        url = (self.base_url or "https://api.exa.ai").rstrip("/") + "/search"
        body = {"query": query, "numResults": max_results, "contents": {"text": {"maxCharacters": 1200}}}

        @_retry
        def call() -> dict[str, Any]:
            resp = requests.post(url, json=body, headers={"x-api-key": key}, timeout=self.timeout_seconds)
            resp.raise_for_status()
            return resp.json()

        try:
            data = call()
        except requests.RequestException as exc:
            raise SearchError(f"exa search failed: {type(exc).__name__}: {_safe(exc)}") from None
        results = [
            WebResult(title=str(r.get("title") or r.get("url")), url=str(r["url"]),
                      snippet=" ".join(str(r.get("text") or r.get("summary") or "").split())[:800],
                      published=r.get("publishedDate"))
            for r in data.get("results", []) if r.get("url")
        ][:max_results]
        cost = float((data.get("costDollars") or {}).get("total") or 0.0)
        return SearchOutcome(results=results, provider="exa", searches=1, cost_usd=cost)

    def _anthropic(self, query: str, max_results: int, llm: Any) -> SearchOutcome:
        """One Messages call with the web search tool, through the LLM resource's client (its key,
        base URL, timeouts and retries); the caller records the usage."""
        import anthropic

        if llm is None or llm.is_offline:
            return SearchOutcome(results=[], provider="offline")
        try:
            msg = llm.client().messages.create(
                model=self.model,
                max_tokens=1024,
                tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}],
                messages=[{"role": "user", "content": (
                    f"Search the web for: {query}\nReply with the {max_results} most relevant findings, "
                    "one sentence each, citing the page.")}],
            )
        except anthropic.APIError as exc:
            raise SearchError(f"anthropic web search failed: {type(exc).__name__}: {_safe(exc)}") from None
        results: dict[str, WebResult] = {}
        for block in msg.content:
            if block.type == "web_search_tool_result" and isinstance(block.content, list):
                for r in block.content:
                    results.setdefault(r.url, WebResult(title=r.title, url=r.url, published=r.page_age))
            elif block.type == "text":
                for cite in getattr(block, "citations", None) or []:
                    if getattr(cite, "type", "") == "web_search_result_location":
                        res = results.setdefault(cite.url, WebResult(title=cite.title or cite.url, url=cite.url))
                        if cite.cited_text and cite.cited_text not in res.snippet:
                            res.snippet = (res.snippet + " " + cite.cited_text).strip()[:800]
        usage = msg.usage
        searches = int(getattr(getattr(usage, "server_tool_use", None), "web_search_requests", 0) or 0)
        return SearchOutcome(
            results=list(results.values())[:max_results], provider="anthropic",
            input_tokens=int(usage.input_tokens or 0), output_tokens=int(usage.output_tokens or 0),
            searches=searches, cost_usd=searches * WEB_SEARCH_USD, model=msg.model,
        )

    # ------------------------------------------------------------------ arXiv
    def papers(self, query: str, max_results: int = 5, llm: Any = None) -> list[Paper]:
        if not self.online(llm):
            return []
        terms = " AND ".join(f"all:{w}" for w in query.split() if w.isalnum())[:300] or f"all:{query}"
        params = {"search_query": terms, "start": 0, "max_results": max_results, "sortBy": "relevance",
                  "sortOrder": "descending"}

        @_retry
        def call() -> str:
            resp = requests.get(self.arxiv_base_url, params=params, timeout=self.timeout_seconds,
                                headers={"User-Agent": "yarnnn-research/0.1"})
            resp.raise_for_status()
            return resp.text

        try:
            return parse_arxiv_atom(call())[:max_results]
        except requests.RequestException as exc:
            raise SearchError(f"arXiv query failed: {type(exc).__name__}: {_safe(exc)}") from None


def _safe(exc: BaseException) -> str:
    """An error message without query strings (which could carry keys)."""
    return str(exc).split("?")[0][:300]
