"""Google (Gmail and Calendar share one OAuth credential): the API client over ``googleapiclient``
(``static_discovery``, ``client_options={"api_endpoint": ...}`` over ``google_auth_httplib2``; the refresh
token is exchanged at ``token_uri`` on first use) and how its errors are classified."""

from __future__ import annotations

from typing import Any

from yarn_assets.ingest.api_calls import ApiCaller, Verdict, network_error, retry_after
from yarn_assets.ingest.api_clients import ClientConfig, require_credentials

#: One Google consent serves Gmail and Calendar; each platform gets its own connection, cursors and errors.
GOOGLE_CREDENTIALS = ("refresh_token", "client_id", "client_secret")


def classify_google(exc: BaseException) -> Verdict:
    from google.auth.exceptions import RefreshError, TransportError
    from googleapiclient.errors import HttpError

    if isinstance(exc, RefreshError):
        text = str(exc.args[0]) if exc.args else str(exc)
        code = text.split(":", 1)[0].strip() or "refresh_failed"
        status = "revoked" if code == "invalid_grant" else "error"
        return Verdict("auth", f"Google refused to refresh the OAuth token ({code})", status=status)
    if isinstance(exc, HttpError):
        status = int(exc.resp.status)
        reason = ""
        try:
            import json

            body = json.loads(exc.content.decode("utf-8", "replace"))
            errors = (body.get("error") or {}).get("errors") or []
            reason = str(errors[0].get("reason", "")) if errors else ""
        except (ValueError, AttributeError, IndexError):
            reason = ""
        if status == 429 or (status == 403 and reason in ("rateLimitExceeded", "userRateLimitExceeded")):
            return Verdict("rate_limited", f"google HTTP {status} {reason}".strip(), retry_after(exc.resp))
        if status >= 500:
            return Verdict("server", f"google HTTP {status}")
        if status == 401:
            return Verdict("auth", "Google rejected the access token (HTTP 401)")
        if status in (403, 404):
            return Verdict("not_found", f"google HTTP {status} {reason}".strip())
        if status == 410:
            return Verdict("gone", "google HTTP 410 (sync token expired)")
        return Verdict("other", f"google HTTP {status} {reason}".strip())
    if isinstance(exc, TransportError) or network_error(exc):
        return Verdict("network", f"network error: {type(exc).__name__}")
    return Verdict("other", f"{type(exc).__name__}: {exc}")


class GoogleApi:
    """Gmail and Calendar share one OAuth credential (one refresh per run)."""

    def __init__(self, caller: ApiCaller, creds: dict[str, Any], config: ClientConfig, label: str) -> None:
        from google.oauth2.credentials import Credentials

        require_credentials(creds, GOOGLE_CREDENTIALS, label)
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
