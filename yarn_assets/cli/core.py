"""CLI groups for the foundation: database, users, imports, tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
import polars as pl
from sqlalchemy import select

from control_plane import db
from control_plane.models import ImportJob, User
from yarn_assets.cli.common import CliState, IsoDate, UserId, pass_state, table, wait_option
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


def _job_row(j: ImportJob) -> dict[str, object]:
    """One job as `import list` / `import run` show it: counts, attempts, first reject reason."""
    r = j.result or {}
    reasons = r.get("reject_reasons") or []
    rejected = int(r.get("rejected", 0) or 0) + int(r.get("silver_rejected", 0) or 0)
    def count(value: object) -> str:  # 0 is a count, not a blank
        return "" if value is None or value == "" else str(value)

    return {"id": j.id[:8], "user": j.user_id, "provider": j.provider, "file": j.original_name,
            "partition": f"{j.partition_date}|{j.platform}", "status": j.status, "attempts": str(j.attempts),
            "landed": count(r.get("objects")), "items": count(r.get("items")),
            "rejected": count(rejected if r else None), "why": (j.error or (reasons[0] if reasons else ""))[:80]}


JOB_COLUMNS = ["id", "user", "provider", "file", "partition", "status", "attempts", "landed", "items", "rejected",
               "why"]


@import_group.command("list")
@click.option("--status", type=click.Choice(["pending", "processing", "landed", "completed", "failed"]), default=None)
@click.option("--reasons", is_flag=True, help="Also print every job's first reject reasons in full.")
@pass_state
def import_list(state: CliState, status: str | None, reasons: bool) -> None:
    """Import jobs with their counts: landed = objects in bronze, items = rows in silver, rejected = both stages."""
    with state.session() as session:
        q = select(ImportJob).order_by(ImportJob.created_at)
        if status:
            q = q.where(ImportJob.status == status)
        jobs = list(session.scalars(q))
        rows = [_job_row(j) for j in jobs]
        details = [(j.id[:8], (j.result or {}).get("reject_reasons") or []) for j in jobs]
    click.echo(table(rows, JOB_COLUMNS))
    if reasons:
        for job_id, why in details:
            for reason in why:
                click.echo(f"{job_id}  {reason}")


@import_group.command("run")
@wait_option
@pass_state
def import_run(state: CliState, wait: bool) -> None:
    """Land pending import jobs and merge unmerged bronze batches now: one run per partition on the instance.

    What the daemon does with import_jobs_sensor and silver_catchup_sensor: jobs of runs that
    died go back to pending (up to the attempt limit), then every pending (day, platform) gets a
    bronze+silver run and every partition with batches no live run will merge a silver run.
    """
    from yarn_assets.cli.common import dagster_instance, quiet_run_config, submit
    from yarn_assets.core.partitions import ingest_key
    from yarn_assets.core.tables import PLATFORMS
    from yarn_assets.ingest import catchup
    from yarn_assets.ingest.sources import SILVER_CONTENT

    settings = state.settings
    stale = dt.timedelta(minutes=settings.import_stale_minutes)
    with dagster_instance(state) as instance, state.session() as session:
        reset, failed = import_jobs.reset_dead(session, instance, max_attempts=settings.import_max_attempts,
                                               stale_after=stale)
        plan = catchup.plan(session, instance, max_requests=settings.silver_max_catchup_runs, stale_after=stale)
        pending = sorted(k for k in import_jobs.pending_by_partition(session) if k[1] in PLATFORMS)
    for job_id in reset:
        click.echo(f"job {job_id[:8]}: its run died; pending again")
    for job_id in failed:
        click.echo(f"job {job_id[:8]}: failed after its last attempt")
    for batch_id, reason in plan.failed.items():
        click.echo(f"batch {batch_id[:24]}: {reason}")
    catch_up = sorted(k for k in plan.partitions if k not in pending and k[1] in PLATFORMS)
    if not pending and not catch_up:
        click.echo("no pending import jobs" + (f" ({plan.waiting} batch(es) owned by live runs)"
                                               if plan.waiting else ""))
        return
    runs = [(k, None) for k in pending] + [(k, [SILVER_CONTENT]) for k in catch_up]
    for (day, platform), selection in runs:
        what = "silver catch-up" if selection else "import"
        submit(state, "ingest_job", wait=wait, label=f"{day}|{platform} {what}", partition=ingest_key(day, platform),
               run_config=quiet_run_config(), asset_selection=selection)
    with state.session() as session:
        keys = {f"{d}|{p}" for (d, p), _ in runs}
        rows = [_job_row(j) for j in session.scalars(select(ImportJob).order_by(ImportJob.created_at))
                if f"{j.partition_date}|{j.platform}" in keys]
    click.echo(table(rows, JOB_COLUMNS))


@import_group.command("retry")
@click.argument("job_id")
@pass_state
def import_retry(state: CliState, job_id: str) -> None:
    """Put a failed job back to pending, with a fresh attempt budget."""
    with state.session() as session:
        job = session.scalars(select(ImportJob).where(ImportJob.id.startswith(job_id))).first()
        if job is None:
            raise click.ClickException(f"no import job {job_id}")
        if job.status in ("processing", "landed"):
            raise click.ClickException(f"job {job.id} is {job.status}: a run is working on it")
        job.status, job.error, job.progress, job.attempts = "pending", None, 0, 0
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


@click.command("preview")
@click.argument("table_name", metavar="TABLE")
@click.option("--user", "user_id", required=True, help="Whose rows (a preview never mixes users).")
@click.option("--date", "day", default=None, help="Only this day (YYYY-MM-DD) of the table's day partition.")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--columns", default=None, help="Comma-separated columns (default: the usual descriptive ones).")
@pass_state
def preview_cmd(state: CliState, table_name: str, user_id: str, day: str | None, limit: int,
                columns: str | None) -> None:
    """A few rows of one user's data, read from the current tables (run history keeps no item text)."""
    from yarn_assets.core.preview import PreviewError, preview

    try:
        when = dt.date.fromisoformat(day) if day else None
    except ValueError:
        raise click.BadParameter(f"{day!r} is not a date (YYYY-MM-DD)", param_hint="--date") from None
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    try:
        frame = preview(state.store, table_name, user_id=user_id, day=when, limit=limit, columns=cols)
    except PreviewError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(table(frame.to_dicts(), frame.columns) if frame.height else "(no rows)")


GROUPS: list[click.Command] = [db_group, users_group, import_group, tables_cmd, preview_cmd]
