"""The MCP server (official ``mcp`` SDK, ``MCPServer``): one user's context for that user's assistant.

Who the user is comes from the transport, never from a tool argument:

* streamable HTTP: every request carries ``Authorization: Bearer <token>`` (a ``yarn_assets.core.auth``
  token with audience ``mcp``), checked by the SDK's bearer middleware through :class:`UserTokenVerifier`;
  the tools read the verified subject with ``get_access_token()``;
* stdio: the process is started for one user (its token is verified once at start-up).

Tools only read, except ``remember`` which records a fact the user states (source ``user_stated``,
through memory's own priority rule). Ids of other users' objects answer "not found".
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from yarn_assets.core import auth
from yarn_assets.mcp.reads import BadRequest, NotFound, UserReads

log = logging.getLogger("yarnnn.mcp")

INSTRUCTIONS = (
    "Read-only access to one person's own context in yarnnn: their synced Slack, Gmail, Notion and "
    "Calendar content (search_content, read_item), upcoming meetings, what yarnnn remembers about them "
    "(memory_facts) and their recent deliverables. Use remember only for something the person states "
    "about themselves, in their own words."
)


class UserTokenVerifier:
    """The SDK's ``TokenVerifier``: a valid ``mcp`` token names its user as ``subject``."""

    def __init__(self, signing_key: Callable[[], str | None]) -> None:
        self._key = signing_key

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            user_id = auth.verify(self._key(), token, audience="mcp")
        except auth.InvalidToken as exc:
            log.info("rejected MCP token: %s", exc)
            return None
        return AccessToken(token=token, client_id=user_id, subject=user_id, scopes=["read"])


def http_user() -> str:
    token = get_access_token()
    if token is None or not token.subject:
        raise ToolError("not authenticated")
    return token.subject


def build_server(reads: UserReads, current_user: Callable[[], str], *, token_verifier: UserTokenVerifier | None = None,
                 auth_settings: AuthSettings | None = None) -> MCPServer:
    """The server with its tools; ``current_user`` resolves the caller (see the module docstring)."""
    server: MCPServer = MCPServer(name="yarnnn", instructions=INSTRUCTIONS, token_verifier=token_verifier,
                                  auth=auth_settings)

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        user_id = current_user()  # resolved here, in the request's context, before the worker thread
        try:
            return await anyio.to_thread.run_sync(functools.partial(fn, user_id, *args))
        except NotFound:
            raise ToolError("not found") from None
        except BadRequest as exc:
            raise ToolError(str(exc)) from None

    @server.tool()
    async def search_content(query: str, k: int = 10, platforms: list[str] | None = None) -> dict[str, Any]:
        """Search the user's synced content by meaning. platforms: any of slack, gmail, notion, calendar."""
        return {"results": await run(reads.search, query, k, platforms)}

    @server.tool()
    async def read_item(item_key: str) -> dict[str, Any]:
        """Read one message, email, page or event (item_key from search_content), with its thread."""
        return await run(reads.read_item, item_key)

    @server.tool()
    async def upcoming_meetings(days: int = 7) -> dict[str, Any]:
        """The user's calendar events from now to `days` ahead (cancelled ones left out)."""
        return {"meetings": await run(reads.upcoming_meetings, days)}

    @server.tool()
    async def memory_facts(limit: int = 50) -> dict[str, Any]:
        """What yarnnn currently knows about the user: facts, preferences, instructions (best first)."""
        return {"facts": await run(reads.memory, limit)}

    @server.tool()
    async def recent_deliverables(limit: int = 5) -> dict[str, Any]:
        """The user's deliverables most recently run, each with a preview of its latest version."""
        return {"deliverables": await run(reads.recent_deliverables, limit)}

    @server.tool()
    async def read_deliverable(deliverable_id: str) -> dict[str, Any]:
        """One deliverable of the user with the full text of its latest version."""
        return await run(reads.read_deliverable, deliverable_id)

    @server.tool()
    async def remember(key: str, value: str) -> dict[str, Any]:
        """Record something the user states about themselves. key: fact:<name>, preference:<name> or
        instruction:<name> (lowercase, digits, underscores); it outranks anything yarnnn inferred."""
        return await run(reads.remember, key, value)

    return server
