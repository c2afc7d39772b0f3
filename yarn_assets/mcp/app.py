"""Build the MCP server from settings and run it on stdio or streamable HTTP.

``python -m yarn_assets.mcp --transport stdio`` (the user's token in ``YARNNN_MCP_TOKEN``, or the
variable named by ``--token-env``) or ``--transport http --host 127.0.0.1 --port 8765`` (each request
carries its own ``Authorization: Bearer`` token; ``yarnnn serve mcp-token U`` issues one).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from yarn_assets.core import auth

# The heavy imports (the SDK, polars, SQLAlchemy ORM) wait until the token and key are checked, so
# a misconfigured start fails in a fraction of a second.
DEFAULT_TOKEN_ENV = "YARNNN_MCP_TOKEN"


def reads_from_settings(settings: Any) -> Any:
    from sqlalchemy.orm import Session

    from control_plane import db
    from io_managers.delta_store import DeltaStore
    from resources.registry import build_embeddings
    from yarn_assets.mcp.reads import UserReads

    url = settings.resolved_control_plane_url
    db.ensure_schema(url, settings.control_plane_auto_migrate)

    @contextmanager
    def sessions() -> Iterator[Session]:
        with db.session_scope(url) as session:
            yield session

    embedder = functools.cache(lambda: build_embeddings(settings).embedder())
    return UserReads(store=DeltaStore(settings.resolved_warehouse_root, settings.warehouse_storage_options),
                     sessions=sessions, embedder=embedder, max_k=min(50, settings.retrieval_max_k))


def _key(settings: Any) -> str | None:
    return settings.auth_signing_key.get_secret_value() if settings.auth_signing_key else None


def stdio_user(settings: Any, token_env: str) -> str:
    """The user of a stdio server: its token is checked once, at start."""
    try:
        return auth.verify(_key(settings), os.environ.get(token_env), audience="mcp")
    except auth.InvalidToken:
        raise SystemExit(f"yarnnn mcp: ${token_env} does not hold a valid MCP token "
                         "(issue one with `yarnnn serve mcp-token <user>`)") from None
    except auth.SigningKeyMissing as exc:
        raise SystemExit(f"yarnnn mcp: {exc}") from None


def http_app(settings: Any, host: str, port: int) -> Any:
    """The Starlette app of the streamable-HTTP transport (stateless: each request authenticates)."""
    if len(_key(settings) or "") < auth.MIN_KEY_CHARS:
        raise SystemExit(f"yarnnn mcp: YARNNN_AUTH_SIGNING_KEY must be set to at least {auth.MIN_KEY_CHARS} "
                         "characters (it checks the users' tokens)")
    from mcp.server.auth.settings import AuthSettings

    from yarn_assets.mcp.server import UserTokenVerifier, build_server, http_user

    base = f"http://{host}:{port}"
    server = build_server(
        reads_from_settings(settings), http_user, token_verifier=UserTokenVerifier(lambda: _key(settings)),
        auth_settings=AuthSettings(issuer_url=base, resource_server_url=f"{base}/mcp"),  # type: ignore[arg-type]
    )
    return server.streamable_http_app(stateless_http=True, json_response=True, host=host)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m yarn_assets.mcp", description=__doc__.split("\n\n")[0])
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token-env", default=DEFAULT_TOKEN_ENV, help="stdio: variable holding the user's token")
    args = parser.parse_args(argv)
    run(args.transport, host=args.host, port=args.port, token_env=args.token_env)


def run(transport: str, *, host: str = "127.0.0.1", port: int = 8765, token_env: str = DEFAULT_TOKEN_ENV) -> None:
    from resources.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise SystemExit(f"yarnnn mcp: {exc}") from None
    if transport == "stdio":
        user_id = stdio_user(settings, token_env)
        from yarn_assets.mcp.server import build_server

        print(f"yarnnn mcp: serving {user_id} on stdio", file=sys.stderr)
        build_server(reads_from_settings(settings), lambda: user_id).run("stdio")
        return
    import uvicorn

    app = http_app(settings, host, port)
    print(f"yarnnn mcp: streamable HTTP on http://{host}:{port}/mcp", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning")
