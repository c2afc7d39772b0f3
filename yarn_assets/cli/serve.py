"""``yarnnn serve api`` (the HTTP API) and ``yarnnn users token USER`` (a user's bearer token for it)."""

from __future__ import annotations

import datetime as dt

import click

from yarn_assets.cli.common import CliState, UserId, pass_state


@click.group("serve")
def serve_group() -> None:
    """Serve yarnnn to its users (HTTP API)."""


@serve_group.command("api")
@click.option("--host", default=None, help="Default: YARNNN_API_HOST (127.0.0.1).")
@click.option("--port", type=int, default=None, help="Default: YARNNN_API_PORT (8000).")
def serve_api(host: str | None, port: int | None) -> None:
    """The HTTP API (FastAPI + uvicorn; OpenAPI docs at /docs). Runs are queued on DAGSTER_HOME's instance."""
    from yarn_assets.api.__main__ import serve

    serve(host, port)


@click.command("token")
@click.argument("user_id", type=UserId())
@click.option("--hours", type=int, default=None, help="Lifetime; default YARNNN_API_TOKEN_TTL_HOURS (30 days).")
@pass_state
def users_token(state: CliState, user_id: str, hours: int | None) -> None:
    """Mint USER's bearer token for the API (signed with YARNNN_AUTH_SIGNING_KEY)."""
    from control_plane.models import User
    from yarn_assets.api import auth

    with state.session() as session:
        if session.get(User, user_id) is None:
            raise click.ClickException(f"unknown user {user_id!r}")
    key = state.settings.auth_signing_key
    try:
        token = auth.issue(key.get_secret_value() if key else None, user_id,
                           ttl=dt.timedelta(hours=hours or state.settings.api_token_ttl_hours))
    except auth.SigningKeyMissing as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(token)


def _register() -> list[click.Command]:
    from yarn_assets.cli.core import users_group

    users_group.add_command(users_token)
    return [serve_group]


COMMANDS = _register()
