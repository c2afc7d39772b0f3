"""``yarnnn serve mcp`` (the MCP server for a user's assistant) and ``yarnnn serve mcp-token USER``.

The commands join the ``serve`` group of ``yarn_assets.cli.serve`` (the HTTP API's ``serve api``)
when that module exists, and bring their own ``serve`` group otherwise.
"""

from __future__ import annotations

import datetime as dt
from importlib import import_module

import click

from yarn_assets.cli.common import CliState, UserId, pass_state


@click.command("mcp")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="http: address to listen on.")
@click.option("--port", type=int, default=8765, show_default=True, help="http: port (endpoint /mcp).")
@click.option("--token-env", default="YARNNN_MCP_TOKEN", show_default=True,
              help="stdio: environment variable holding the user's token.")
def serve_mcp(transport: str, host: str, port: int, token_env: str) -> None:
    """The MCP server: a user's assistant reads that user's context (same as python -m yarn_assets.mcp)."""
    from yarn_assets.mcp.app import run

    run(transport, host=host, port=port, token_env=token_env)


@click.command("mcp-token")
@click.argument("user_id", type=UserId())
@click.option("--days", type=click.IntRange(1, 365), default=30, show_default=True)
@pass_state
def serve_mcp_token(state: CliState, user_id: str, days: int) -> None:
    """Print USER's token for the MCP server (audience mcp; put it in their assistant's config)."""
    from control_plane.models import User
    from yarn_assets.core import auth

    with state.session() as session:
        if session.get(User, user_id) is None:
            raise click.ClickException(f"unknown user {user_id!r}")
    key = state.settings.auth_signing_key
    try:
        click.echo(auth.issue(key.get_secret_value() if key else None, user_id, audience="mcp",
                              ttl=dt.timedelta(days=days)))
    except auth.SigningKeyMissing as exc:
        raise click.ClickException(str(exc)) from None


def _serve_group() -> click.Group:
    try:
        group = getattr(import_module("yarn_assets.cli.serve"), "serve_group", None)
    except ImportError:
        group = None
    if not isinstance(group, click.Group):
        @click.group("serve")
        def group() -> None:
            """Serve yarnnn to its users."""

    return group


def _register() -> list[click.Command]:
    group = _serve_group()
    group.add_command(serve_mcp)
    group.add_command(serve_mcp_token)
    return [group]


COMMANDS = _register()
