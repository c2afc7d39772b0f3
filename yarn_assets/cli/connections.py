"""``yarnnn connections``: platform connections, their sources and manual syncs.

Secrets are never command-line arguments (they would land in shell history and ``ps``): they
are read from a named environment variable (``--token-env``) or prompted for without echo.
"""

from __future__ import annotations

import os
from typing import Any

import click
from sqlalchemy import select

from control_plane.crypto import CredentialError, TokenCipher
from control_plane.models import PlatformConnection, SyncRegistry, utcnow
from yarn_assets.cli.common import CliState, pass_state, table
from yarn_assets.core.activity_log import ActivityEvent, write_events
from yarn_assets.ingest.api_calls import RetrySettings
from yarn_assets.ingest.api_clients import ClientConfig
from yarn_assets.ingest.sync import connections as svc
from yarn_assets.ingest.sync.landscape import landscape_resources, selection_ids

PLATFORM_CHOICES = ("slack", "gmail", "calendar", "notion", "google")


def _cipher(state: CliState) -> TokenCipher:
    key = state.settings.encryption_key
    try:
        return TokenCipher(key.get_secret_value() if key else None)
    except CredentialError as exc:
        raise click.ClickException(str(exc)) from None


def _client_config(state: CliState) -> tuple[ClientConfig, RetrySettings]:
    s = state.settings
    return (
        ClientConfig(slack_base_url=s.slack_base_url, google_api_base_url=s.google_api_base_url,
                     google_token_uri=s.google_token_uri, notion_base_url=s.notion_base_url,
                     timeout_seconds=s.platform_timeout_seconds),
        RetrySettings(max_attempts=s.platform_max_attempts, backoff_seconds=s.platform_backoff_seconds),
    )


def _secret(env_name: str | None, prompt: str, keep_allowed: bool = False) -> str:
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise click.ClickException(f"environment variable {env_name} is not set (it should hold the {prompt})")
        return value
    if keep_allowed:  # Google re-consent may not return a refresh token: empty keeps the stored one
        return str(click.prompt(f"{prompt} (empty = keep the stored one)", hide_input=True, default="",
                                show_default=False))
    return str(click.prompt(prompt, hide_input=True))


def _event(state: CliState, conn: PlatformConnection, event_type: str, summary: str) -> None:
    now = utcnow()
    write_events(state.store, [ActivityEvent(
        user_id=conn.user_id, event_type=event_type, summary=summary,
        idempotency_key=f"{conn.id}:{event_type}:{now.isoformat()}", event_ref=conn.id, created_at=now,
        metadata={"platform": conn.platform, "connection_id": conn.id},
    )])


@click.group("connections")
def connections_group() -> None:
    """Platform connections (Slack, Gmail, Google Calendar, Notion) and live syncs."""


@connections_group.command("add")
@click.option("--user", "user_id", required=True)
@click.option("--platform", type=click.Choice(PLATFORM_CHOICES), required=True,
              help="google = one OAuth consent for both gmail and calendar.")
@click.option("--token-env", default=None, help="Env var holding the Slack bot token / Notion integration token.")
@click.option("--client-id", default=None, help="Google OAuth client id.")
@click.option("--client-secret-env", default=None, help="Env var holding the Google OAuth client secret.")
@click.option("--refresh-token-env", default=None, help="Env var holding the Google refresh token.")
@click.option("--label", "account_label", default=None, help="Workspace name or account shown in listings.")
@click.option("--test/--no-test", "run_test", default=False, help="Call the API once to check the credentials.")
@pass_state
def connections_add(state: CliState, user_id: str, platform: str, token_env: str | None, client_id: str | None,
                    client_secret_env: str | None, refresh_token_env: str | None, account_label: str | None,
                    run_test: bool) -> None:
    """Add (or update) a connection; credentials are stored encrypted."""
    cipher = _cipher(state)
    platforms = ["gmail", "calendar"] if platform == "google" else [platform]
    if platform in ("slack", "notion"):
        name = "Slack bot token (xoxb-...)" if platform == "slack" else "Notion integration token"
        creds: dict[str, Any] = {"bot_token" if platform == "slack" else "token": _secret(token_env, name)}
    else:
        creds = {
            "client_id": client_id or click.prompt("Google OAuth client id"),
            "client_secret": _secret(client_secret_env, "Google OAuth client secret"),
            "refresh_token": _secret(refresh_token_env, "Google OAuth refresh token", keep_allowed=True),
        }
    config, retry = _client_config(state)
    for p in platforms:
        with state.session() as session:
            try:
                conn, created = svc.add(session, cipher, user_id=user_id, platform=p, credentials=creds,
                                        account_label=account_label)
            except svc.ConnectionError_ as exc:
                raise click.ClickException(str(exc)) from None
            detail = ""
            if run_test:
                result = svc.probe(session, conn, lambda: cipher, config, retry)
                detail = f" - {'ok' if result.ok else 'FAILED'}: {result.detail}"
            conn_id = conn.id
        click.echo(f"{'added' if created else 'updated'} {p} connection {conn_id} for {user_id}{detail}")
        if created:
            with state.session() as session:
                _event(state, session.get(PlatformConnection, conn_id), "integration_connected",  # type: ignore[arg-type]
                       f"Connected {p}")


@connections_group.command("list")
@click.option("--user", "user_id", default=None)
@click.option("--resources", "show_resources", is_flag=True, help="Per-source cursors and errors.")
@pass_state
def connections_list(state: CliState, user_id: str | None, show_resources: bool) -> None:
    """Connections with their status, selection (*: operator override), last sync and error."""
    with state.session() as session:
        q = select(PlatformConnection).order_by(PlatformConnection.user_id, PlatformConnection.platform)
        if user_id:
            q = q.where(PlatformConnection.user_id == user_id)
        conns = list(session.scalars(q))
        rows = [{
            "id": c.id[:8], "user": c.user_id, "platform": c.platform, "status": c.status,
            "account": c.account_label or "",
            "selected": f"{len(selection_ids(c.selected_sources))}/{len(landscape_resources(c.landscape))}"
                        + ("*" if c.selection_overridden else ""),
            "last_synced": c.last_synced_at.isoformat(timespec="minutes") if c.last_synced_at else "never",
            "error": (c.last_error or "")[:70],
        } for c in conns]
        click.echo(table(rows, ["id", "user", "platform", "status", "account", "selected", "last_synced", "error"]))
        if show_resources:
            reg = select(SyncRegistry).order_by(SyncRegistry.user_id, SyncRegistry.platform, SyncRegistry.resource_id)
            if user_id:
                reg = reg.where(SyncRegistry.user_id == user_id)
            rrows = [{
                "user": r.user_id, "platform": r.platform, "source": r.resource_name or r.resource_id,
                "cursor": (r.platform_cursor or "")[:24], "items": r.item_count,
                "last_synced": r.last_synced_at.isoformat(timespec="minutes") if r.last_synced_at else "",
                "error": (r.last_error or "")[:60],
            } for r in session.scalars(reg)]
            click.echo("")
            click.echo(table(rrows, ["user", "platform", "source", "cursor", "items", "last_synced", "error"]))


@connections_group.command("test")
@click.argument("ref")
@pass_state
def connections_test(state: CliState, ref: str) -> None:
    """Check a connection's credentials with one API call (REF: id, id prefix or user:platform)."""
    config, retry = _client_config(state)
    with state.session() as session:
        try:
            conn = svc.find(session, ref)
        except svc.ConnectionError_ as exc:
            raise click.ClickException(str(exc)) from None
        result = svc.probe(session, conn, lambda: _cipher(state), config, retry)
    if not result.ok:
        raise click.ClickException(result.detail)
    click.echo(f"ok: {result.detail}")


@connections_group.command("remove")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def connections_remove(state: CliState, ref: str, yes: bool) -> None:
    """Delete a connection, its stored credentials and its cursors (synced content expires by TTL)."""
    with state.session() as session:
        try:
            conn = svc.find(session, ref)
        except svc.ConnectionError_ as exc:
            raise click.ClickException(str(exc)) from None
        if not yes:
            click.confirm(f"remove {conn.platform} connection {conn.id} of {conn.user_id}?", abort=True)
        snapshot = PlatformConnection(id=conn.id, user_id=conn.user_id, platform=conn.platform)
        rows = svc.remove(session, conn)
    _event(state, snapshot, "integration_disconnected", f"Disconnected {snapshot.platform}")
    click.echo(f"removed {snapshot.platform} connection {snapshot.id} ({rows} cursor rows)")


@connections_group.command("landscape")
@click.argument("ref")
@click.option("--refresh/--no-refresh", default=True, help="Ask the API for the current sources first.")
@pass_state
def connections_landscape(state: CliState, ref: str, refresh: bool) -> None:
    """Show the sources a connection can see; * marks the selected ones."""
    config, retry = _client_config(state)
    with state.session() as session:
        try:
            conn = svc.find(session, ref)
            if refresh:
                svc.refresh_landscape(session, conn, lambda: _cipher(state), config, retry)
        except (svc.ConnectionError_, svc.SyncError) as exc:
            raise click.ClickException(str(exc)) from None
        chosen = set(selection_ids(conn.selected_sources))
        rows = [{"": "*" if r.id in chosen else "", "id": r.id, "name": r.name, "type": r.type,
                 "info": ", ".join(f"{k}={v}" for k, v in r.metadata.items() if v not in (None, ""))[:60]}
                for r in landscape_resources(conn.landscape)]
        mode = "operator override" if conn.selection_overridden else "auto-selection"
    click.echo(table(rows, ["", "id", "name", "type", "info"]))
    click.echo(f"{len(chosen)} selected ({mode})")


@connections_group.command("select")
@click.argument("ref")
@click.option("--set", "set_ids", default=None, help="Comma-separated source ids (replaces the selection).")
@click.option("--add", "add_ids", multiple=True)
@click.option("--remove", "remove_ids", multiple=True)
@click.option("--auto", is_flag=True, help="Back to the automatic selection (by tier).")
@click.option("--force", is_flag=True, help="Allow ids outside the landscape or beyond the tier's limit.")
@pass_state
def connections_select(state: CliState, ref: str, set_ids: str | None, add_ids: tuple[str, ...],
                       remove_ids: tuple[str, ...], auto: bool, force: bool) -> None:
    """Override which sources a connection syncs."""
    with state.session() as session:
        try:
            conn = svc.find(session, ref)
            ids = svc.select_sources(
                session, conn, set_ids=[i for i in set_ids.split(",") if i.strip()] if set_ids is not None else None,
                add_ids=list(add_ids), remove_ids=list(remove_ids), auto=auto, force=force,
            )
        except svc.ConnectionError_ as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{len(ids)} selected: {', '.join(ids) or '(none)'}")


@connections_group.command("sync")
@click.argument("ref", required=False)
@click.option("--user", "user_id", default=None, help="With --platform instead of REF.")
@click.option("--platform", type=click.Choice(PLATFORM_CHOICES[:-1]), default=None)
@click.option("--full-resync", is_flag=True, help="Ignore stored cursors.")
@pass_state
def connections_sync(state: CliState, ref: str | None, user_id: str | None, platform: str | None,
                     full_resync: bool) -> None:
    """Sync one connection now (bronze, then silver), recorded in the Dagster instance."""
    from yarn_assets.ingest.sync.manual import run_sync

    with state.session() as session:
        try:
            conn = svc.find(session, ref) if ref else svc.find(session, f"{user_id}:{platform}")
        except (svc.ConnectionError_, ValueError) as exc:
            raise click.ClickException(str(exc) if ref or (user_id and platform)
                                       else "give a connection REF or --user and --platform") from None
        conn_id, label = conn.id, f"{conn.platform} connection {conn.id[:8]} of {conn.user_id}"
    outcome = run_sync(state.settings, conn_id, full_resync=full_resync)
    click.echo(f"{label}: {outcome.summary}")
    if not outcome.success:
        raise click.ClickException(outcome.error or "sync failed")

