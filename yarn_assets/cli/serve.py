"""``yarnnn serve``: serve yarnnn to its users (the MCP server) and issue their tokens."""

from __future__ import annotations

import datetime as dt

import click

from yarn_assets.cli.common import CliState, UserId, pass_state


@click.group("serve")
def serve_group() -> None:
    """Serve yarnnn to its users: the MCP server for their assistants, user tokens."""


@serve_group.command("mcp")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="http: address to listen on.")
@click.option("--port", type=int, default=8765, show_default=True, help="http: port (endpoint /mcp).")
@click.option("--token-env", default="YARNNN_MCP_TOKEN", show_default=True,
              help="stdio: environment variable holding the user's token.")
def serve_mcp(transport: str, host: str, port: int, token_env: str) -> None:
    """The MCP server: a user's assistant reads that user's context (same as python -m yarn_assets.mcp)."""
    from yarn_assets.mcp.app import run

    run(transport, host=host, port=port, token_env=token_env)


@serve_group.command("token")
@click.option("--user", "user_id", type=UserId(), required=True)
@click.option("--audience", type=click.Choice(["mcp", "api"]), default="mcp", show_default=True)
@click.option("--days", type=click.IntRange(1, 365), default=30, show_default=True)
@pass_state
def serve_token(state: CliState, user_id: str, audience: str, days: int) -> None:
    """Print a signed token for USER (give it to their assistant's MCP config, or the front end)."""
    from control_plane.models import User
    from yarn_assets.core import auth

    with state.session() as session:
        if session.get(User, user_id) is None:
            raise click.ClickException(f"unknown user {user_id!r}")
    key = state.settings.auth_signing_key
    try:
        click.echo(auth.issue(key.get_secret_value() if key else None, user_id, audience=audience,
                              ttl=dt.timedelta(days=days)))
    except auth.SigningKeyMissing as exc:
        raise click.ClickException(str(exc)) from None
