"""Thin wrappers over the official SDKs: one method per API call we make, each through ApiCaller.

* Slack: ``slack_sdk.WebClient(base_url=...)`` with its retry handlers off (ApiCaller retries);
* Gmail / Calendar: ``googleapiclient.discovery.build(..., static_discovery=True,
  client_options={"api_endpoint": ...})`` over ``google_auth_httplib2.AuthorizedHttp``; the
  refresh token is exchanged at ``token_uri`` (settings ``google_token_uri``) on first use;
* Notion: ``notion_client.Client(base_url=...)`` with its retries off.

Tokens live only inside the SDK objects; nothing here logs or returns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yarn_assets.ingest.sync.calls import ApiCaller
from yarn_assets.ingest.sync.errors import CredentialProblem


@dataclass(frozen=True)
class ClientConfig:
    slack_base_url: str = "https://slack.com/api/"
    google_api_base_url: str | None = None  # None = Google's public endpoints
    google_token_uri: str = "https://oauth2.googleapis.com/token"
    notion_base_url: str = "https://api.notion.com"
    timeout_seconds: float = 30.0


def _require(creds: dict[str, Any], keys: tuple[str, ...], label: str) -> None:
    missing = [k for k in keys if not creds.get(k)]
    if missing:
        raise CredentialProblem(f"{label}: stored credentials lack {', '.join(missing)}; reconnect it")


class SlackApi:
    def __init__(self, caller: ApiCaller, creds: dict[str, Any], config: ClientConfig, label: str) -> None:
        from slack_sdk import WebClient

        _require(creds, ("bot_token",), label)
        self.call = caller
        self._client = WebClient(
            token=creds["bot_token"], base_url=config.slack_base_url, timeout=int(max(1, config.timeout_seconds)),
            retry_handlers=[],
        )

    def auth_test(self) -> dict[str, Any]:
        return self.call("auth.test", lambda: self._client.auth_test().data)  # type: ignore[return-value]

    def conversations_list(self, cursor: str | None = None, limit: int = 200) -> dict[str, Any]:
        return self.call("conversations.list", lambda: self._client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True, limit=limit, cursor=cursor,
        ).data)  # type: ignore[return-value]

    def history(self, channel: str, *, oldest: str | None, cursor: str | None, limit: int) -> dict[str, Any]:
        return self.call("conversations.history", lambda: self._client.conversations_history(
            channel=channel, oldest=oldest, cursor=cursor, limit=limit,
        ).data)  # type: ignore[return-value]

    def replies(self, channel: str, ts: str, *, oldest: str | None, cursor: str | None, limit: int) -> dict[str, Any]:
        return self.call("conversations.replies", lambda: self._client.conversations_replies(
            channel=channel, ts=ts, oldest=oldest, cursor=cursor, limit=limit,
        ).data)  # type: ignore[return-value]

    def join(self, channel: str) -> dict[str, Any]:
        return self.call("conversations.join", lambda: self._client.conversations_join(channel=channel).data)  # type: ignore[return-value]

    def users_info(self, user: str) -> dict[str, Any]:
        return self.call("users.info", lambda: self._client.users_info(user=user).data)  # type: ignore[return-value]


class GoogleApi:
    """Gmail and Calendar share one OAuth credential (one refresh per run)."""

    def __init__(self, caller: ApiCaller, creds: dict[str, Any], config: ClientConfig, label: str) -> None:
        from google.oauth2.credentials import Credentials

        _require(creds, ("refresh_token", "client_id", "client_secret"), label)
        self.call = caller
        self._config = config
        self._credentials = Credentials(
            token=None, refresh_token=creds["refresh_token"], client_id=creds["client_id"],
            client_secret=creds["client_secret"], token_uri=config.google_token_uri,
        )
        self._services: dict[str, Any] = {}

    def _service(self, name: str) -> Any:
        if name not in self._services:
            import google_auth_httplib2
            import httplib2
            from googleapiclient import discovery

            version = {"gmail": "v1", "calendar": "v3"}[name]
            options: dict[str, Any] = {}
            base = self._config.google_api_base_url
            if base:
                root = base.rstrip("/") + "/"
                options["api_endpoint"] = root if name == "gmail" else root + "calendar/v3/"
            http = google_auth_httplib2.AuthorizedHttp(
                self._credentials, http=httplib2.Http(timeout=self._config.timeout_seconds)
            )
            self._services[name] = discovery.build(
                name, version, http=http, static_discovery=True, cache_discovery=False,
                client_options=options or None,
            )
        return self._services[name]

    def _exec(self, method: str, request: Any, **kw: Any) -> dict[str, Any]:
        return self.call(method, lambda: request.execute(num_retries=0), **kw)

    # --- Gmail
    def gmail_profile(self) -> dict[str, Any]:
        return self._exec("users.getProfile", self._service("gmail").users().getProfile(userId="me"))

    def gmail_labels(self) -> dict[str, Any]:
        return self._exec("labels.list", self._service("gmail").users().labels().list(userId="me"))

    def gmail_list(self, *, label: str, q: str, page_token: str | None, max_results: int) -> dict[str, Any]:
        req = self._service("gmail").users().messages().list(
            userId="me", labelIds=[label], q=q, pageToken=page_token, maxResults=max_results,
        )
        return self._exec("messages.list", req)

    def gmail_history(self, *, start: str, label: str, page_token: str | None) -> dict[str, Any]:
        req = self._service("gmail").users().history().list(
            userId="me", startHistoryId=start, labelId=label, pageToken=page_token,
            historyTypes=["messageAdded", "labelAdded"], maxResults=500,
        )
        return self._exec("history.list", req)

    def gmail_raw(self, message_id: str) -> dict[str, Any]:
        req = self._service("gmail").users().messages().get(userId="me", id=message_id, format="raw")
        return self._exec("messages.get", req)

    # --- Calendar
    def calendar_list(self, page_token: str | None = None) -> dict[str, Any]:
        req = self._service("calendar").calendarList().list(pageToken=page_token, maxResults=250)
        return self._exec("calendarList.list", req)

    def events(self, calendar_id: str, **params: Any) -> dict[str, Any]:
        req = self._service("calendar").events().list(calendarId=calendar_id, **params)
        return self._exec("events.list", req, allow_gone=True)


class NotionApi:
    def __init__(self, caller: ApiCaller, creds: dict[str, Any], config: ClientConfig, label: str) -> None:
        import logging

        from notion_client import Client

        _require(creds, ("token",), label)
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


API_CLASSES: dict[str, type] = {"slack": SlackApi, "gmail": GoogleApi, "calendar": GoogleApi, "notion": NotionApi}


def open_api(platform: str, caller: ApiCaller, creds: dict[str, Any], config: ClientConfig, label: str) -> Any:
    return API_CLASSES[platform](caller, creds, config, label)
