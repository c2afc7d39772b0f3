"""CLI groups for the foundation: database, users, imports, tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
import polars as pl
from sqlalchemy import select

from control_plane import db
from control_plane.models import ImportJob, User
from yarn_assets.cli.common import CliState, IsoDate, UserId, pass_state, table
from yarn_assets.core.catalog import all_tables
from yarn_assets.ingest import import_jobs

TIERS = ("free", "starter", "pro")


@click.group("db")
def db_group() -> None:
    """Control-plane schema."""


@db_group.command("upgrade")
@pass_state
def db_upgrade(state: CliState) -> None:
    """Apply pending migrations."""
    rev = db.upgrade(state.settings.resolved_control_plane_url)
    click.echo(f"control plane at revision {rev}")


@click.group("users")
def users_group() -> None:
    """Users (tier and timezone drive sync windows, budgets and schedules)."""


@users_group.command("add")
@click.argument("user_id", type=UserId())
@click.option("--email", required=True)
@click.option("--name", default=None)
@click.option("--tier", type=click.Choice(TIERS), default="free", show_default=True)
@click.option("--timezone", "tz", default="UTC", show_default=True)
@pass_state
def users_add(state: CliState, user_id: str, email: str, name: str | None, tier: str, tz: str) -> None:
    """Add or update a user.

    USER_ID: 1-64 characters, a letter or digit first, then letters, digits, '.', '_', '@' or '-'
    (it names the user's inbox folder).
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if "@" not in email or any(c.isspace() for c in email.strip()):
        raise click.BadParameter(f"{email!r} is not an email address", param_hint="--email")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown timezone {tz!r}", param_hint="--timezone") from None
    with state.session() as session:
        user = session.get(User, user_id)
        created = user is None
        if user is None:
            user = User(id=user_id, email=email)
            session.add(user)
        user.email, user.name, user.tier, user.timezone = email, name or user.name, tier, tz
    click.echo(f"{'added' if created else 'updated'} user {user_id} ({tier}, {tz})")


@users_group.command("list")
@pass_state
def users_list(state: CliState) -> None:
    with state.session() as session:
        rows = [
            {"id": u.id, "email": u.email, "tier": u.tier, "timezone": u.timezone}
            for u in session.scalars(select(User).order_by(User.id))
        ]
    click.echo(table(rows, ["id", "email", "tier", "timezone"]))


@click.group("import")
def import_group() -> None:
    """Import jobs (export files -> bronze -> silver)."""


@import_group.command("add")
@click.option("--user", "user_id", required=True, type=UserId())
@click.option("--provider", type=click.Choice(sorted(import_jobs.PROVIDER_PLATFORM)), default=None,
              help="Export type; guessed from the file when omitted.")
@click.option("--date", "day", type=IsoDate(), default=None, help="Ingest day (UTC, YYYY-MM-DD); default today.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_state
def import_add(state: CliState, user_id: str, provider: str | None, day: dt.date | None,
               paths: tuple[Path, ...]) -> None:
    """Register export files or folders; the import sensor (or `yarnnn import run`) lands them.

    Symlinks, devices, FIFOs and sockets are refused (also inside a folder), never read.
    """
    from resources.input_limits import InputLimits

    archive = state.settings.resolved_home / "imports"
    limits = InputLimits.from_settings(state.settings)
    failed: list[str] = []
    with state.session() as session:
        for path in paths:
            try:  # a refused path adds nothing to the session, so the others still register
                job, created = import_jobs.register_import(
                    session, user_id=user_id, path=path, archive_root=archive, provider=provider,
                    partition_date=day, limits=limits,
                )
            except import_jobs.ImportError_ as exc:
                failed.append(str(exc))
                click.echo(f"refused: {exc}", err=True)
                continue
            verb = "registered" if created else "already registered"
            click.echo(f"{verb}: {job.id} {job.provider} {path.name} -> partition {job.partition_date}|{job.platform}")
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(paths)} path(s) refused")


@import_group.command("list")
@click.option("--status", default=None)
@pass_state
def import_list(state: CliState, status: str | None) -> None:
    with state.session() as session:
        q = select(ImportJob).order_by(ImportJob.created_at)
        if status:
            q = q.where(ImportJob.status == status)
        rows = [
            {"id": j.id[:8], "user": j.user_id, "provider": j.provider, "file": j.original_name,
             "partition": f"{j.partition_date}|{j.platform}", "status": j.status,
             "objects": (j.result or {}).get("objects", ""), "error": (j.error or "")[:60]}
            for j in session.scalars(q)
        ]
    click.echo(table(rows, ["id", "user", "provider", "file", "partition", "status", "objects", "error"]))


@import_group.command("run")
@pass_state
def import_run(state: CliState) -> None:
    """Land every pending import job now, in this process (what the sensor does via the daemon)."""
    from yarn_assets.cli.common import dagster_instance, quiet_run_config
    from yarn_assets.core.partitions import ingest_key
    from yarn_assets.definitions import build_definitions

    with state.session() as session:
        pending = sorted(import_jobs.pending_by_partition(session))
    if not pending:
        click.echo("no pending import jobs")
        return
    job = build_definitions(state.settings).resolve_job_def("ingest_job")
    with dagster_instance() as instance:
        for day, platform in pending:
            result = job.execute_in_process(
                instance=instance, partition_key=ingest_key(day, platform), run_config=quiet_run_config(),
                tags={"yarnnn/trigger": "cli"}, raise_on_error=False,
            )
            click.echo(f"{day}|{platform}: {'ok' if result.success else 'FAILED'} (run {result.run_id})")


@import_group.command("retry")
@click.argument("job_id")
@pass_state
def import_retry(state: CliState, job_id: str) -> None:
    """Put a failed job back to pending."""
    with state.session() as session:
        job = session.scalars(select(ImportJob).where(ImportJob.id.startswith(job_id))).first()
        if job is None:
            raise click.ClickException(f"no import job {job_id}")
        job.status, job.error, job.progress = "pending", None, 0
    click.echo(f"job {job.id} pending again")


@click.command("tables")
@pass_state
def tables_cmd(state: CliState) -> None:
    """Warehouse tables, their locations and row counts."""
    store = state.store
    rows = []
    for spec in all_tables():
        dt_ = store.table(spec)
        if dt_ is None:
            rows.append({"table": spec.name, "rows": "(absent)", "version": "", "location": store.uri(spec)})
            continue
        count = store.scan(spec).select(pl.len()).collect().item()
        rows.append({"table": spec.name, "rows": count, "version": dt_.version(), "location": store.uri(spec)})
    click.echo(table(rows, ["table", "rows", "version", "location"]))


GROUPS: list[click.Command] = [db_group, users_group, import_group, tables_cmd]
