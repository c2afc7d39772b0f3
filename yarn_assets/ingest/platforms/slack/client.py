"""The Slack Web API client (``slack_sdk.WebClient``, its retry handlers off: ApiCaller retries), how its
errors are classified, and the provider's rate limits per method."""

from __future__ import annotations

from typing import Any

from yarn_assets.ingest.api_calls import ApiCaller, Verdict, network_error, retry_after
from yarn_assets.ingest.api_clients import ClientConfig, require_credentials
from yarn_assets.ingest.budget import Rate

#: Slack's tiers per method; "*" = every other method.
RATES: dict[str, Rate] = {
    "auth.test": Rate(100, 5),
    "conversations.list": Rate(20, 3),  # Tier 2
    "conversations.history": Rate(50, 5),  # Tier 3
    "conversations.replies": Rate(50, 5),  # Tier 3
    "conversations.join": Rate(50, 2),  # Tier 3
    "users.info": Rate(100, 10),  # Tier 4
    "*": Rate(20, 2),
}

#: Slack ``error`` codes meaning the token itself is unusable.
SLACK_AUTH_ERRORS = {
    "invalid_auth": "revoked",
    "token_revoked": "revoked",
    "account_inactive": "revoked",
    "not_authed": "error",
    "token_expired": "expired",
    "no_permission": "error",
    "missing_scope": "error",
    "org_login_required": "error",
}


def classify_slack(exc: BaseException) -> Verdict:
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200)
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        code = str(data.get("error") or f"http_{status}")
        if status == 429 or code == "ratelimited":
            return Verdict("rate_limited", f"slack {code}", retry_after(exc.response.headers))
        if status >= 500:
            return Verdict("server", f"slack HTTP {status}")
        if code in SLACK_AUTH_ERRORS:
            return Verdict("auth", f"Slack rejected the bot token ({code})", status=SLACK_AUTH_ERRORS[code])
        if code in ("channel_not_found", "thread_not_found", "user_not_found", "not_in_channel", "is_archived"):
            return Verdict("not_found", f"slack {code}")
        return Verdict("other", f"slack {code}")
    if network_error(exc):
        return Verdict("network", f"network error: {type(exc).__name__}")
    return Verdict("other", f"{type(exc).__name__}: {exc}")


class SlackApi:
    def __init__(self, caller: ApiCaller, creds: dict[str, Any], config: ClientConfig, label: str) -> None:
        from slack_sdk import WebClient

        require_credentials(creds, ("bot_token",), label)
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


def probe(api: SlackApi) -> tuple[str, str | None]:
    data = api.auth_test()
    return f"Slack workspace {data.get('team')!r} as {data.get('user')!r}", data.get("team")
