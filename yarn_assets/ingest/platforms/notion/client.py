"""The Notion API client (``notion_client.Client``, its retries off: ApiCaller retries), how its errors are
classified, and the provider's rate limit (3 requests/s per integration)."""

from __future__ import annotations

from typing import Any

from yarn_assets.ingest.api_calls import ApiCaller, Verdict, network_error, retry_after
from yarn_assets.ingest.api_clients import ClientConfig, require_credentials
from yarn_assets.ingest.budget import Rate

RATES: dict[str, Rate] = {"*": Rate(180, 3)}


def classify_notion(exc: BaseException) -> Verdict:
    from notion_client.errors import APIResponseError, HTTPResponseError, RequestTimeoutError

    if isinstance(exc, RequestTimeoutError):
        return Verdict("network", "notion request timed out")
    if isinstance(exc, HTTPResponseError):
        status = int(exc.status)
        code = str(getattr(exc, "code", "") or f"http_{status}")
        code = getattr(code, "value", code)
        if status == 429 or code == "rate_limited":
            return Verdict("rate_limited", f"notion {code}", retry_after(exc.headers))
        if status >= 500:
            return Verdict("server", f"notion HTTP {status}")
        if status == 401 or code == "unauthorized":
            return Verdict("auth", "Notion rejected the integration token (unauthorized)", status="revoked")
        if isinstance(exc, APIResponseError) and status in (403, 404):
            return Verdict("not_found", f"notion {code}")
        return Verdict("other", f"notion HTTP {status} {code}")
    if network_error(exc):
        return Verdict("network", f"network error: {type(exc).__name__}")
    return Verdict("other", f"{type(exc).__name__}: {exc}")


class NotionApi:
    def __init__(self, caller: ApiCaller, creds: dict[str, Any], config: ClientConfig, label: str) -> None:
        import logging

        from notion_client import Client

        require_credentials(creds, ("token",), label)
        self.call = caller
        quiet = logging.getLogger("yarnnn.notion_client")
        quiet.setLevel(logging.WARNING)
        self._client = Client(
            auth=creds["token"], base_url=config.notion_base_url.rstrip("/"),
            timeout_ms=int(config.timeout_seconds * 1000), retry=False, logger=quiet,
        )

    def me(self) -> dict[str, Any]:
        return self.call("users.me", lambda: self._client.users.me())  # type: ignore[return-value]

    def search(self, *, start_cursor: str | None, page_size: int = 100,
               object_type: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "sort": {"direction": "descending", "timestamp": "last_edited_time"}, "page_size": page_size,
        }
        if start_cursor:
            body["start_cursor"] = start_cursor
        if object_type:
            body["filter"] = {"property": "object", "value": object_type}
        return self.call("search", lambda: self._client.search(**body))  # type: ignore[return-value]

    def page(self, page_id: str) -> dict[str, Any]:
        return self.call("pages.retrieve", lambda: self._client.pages.retrieve(page_id=page_id))  # type: ignore[return-value]

    def block_children(self, block_id: str, *, start_cursor: str | None, page_size: int = 100) -> dict[str, Any]:
        kw: dict[str, Any] = {"block_id": block_id, "page_size": page_size}
        if start_cursor:
            kw["start_cursor"] = start_cursor
        return self.call("blocks.children.list", lambda: self._client.blocks.children.list(**kw))  # type: ignore[return-value]

    def query(self, data_source_id: str, *, start_cursor: str | None, page_size: int = 100,
              edited_since: str | None = None) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "data_source_id": data_source_id, "page_size": page_size,
            "sorts": [{"timestamp": "last_edited_time", "direction": "descending"}],
        }
        if start_cursor:
            kw["start_cursor"] = start_cursor
        if edited_since:
            kw["filter"] = {"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": edited_since}}
        return self.call("data_sources.query", lambda: self._client.data_sources.query(**kw))  # type: ignore[return-value]


def probe(api: NotionApi) -> tuple[str, str | None]:
    return f"Notion integration {api.me().get('name')!r}", None
