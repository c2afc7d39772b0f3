"""``yarnnn deliverables``: create, list, show, edit, pause/resume/archive, run now, resend."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy import select

from control_plane.models import Deliverable, DeliverableDelivery, DeliverableVersion
from yarn_assets.cli.common import CliState, pass_state, table, wait_option
from yarn_assets.deliverables import service
from yarn_assets.deliverables.schedule import FREQUENCIES, describe
from yarn_assets.deliverables.types import LENGTH_PRESETS, TYPES


def _schedule(frequency: str | None, time_: str | None, day: str | None, cron: str | None,
              tz: str | None) -> dict[str, Any] | None:
    if not any((frequency, time_, day, cron, tz)):
        return None
    s: dict[str, Any] = {"frequency": frequency or ("cron" if cron else "weekly")}
    for key, value in (("time", time_), ("day", day), ("cron", cron), ("timezone", tz)):
        if value:
            s[key] = value
    return s


def _destination(email: str | None, slack: str | None, to_file: bool) -> dict[str, Any] | None:
    chosen = [x for x in (email, slack, "file" if to_file else None) if x]
    if len(chosen) > 1:
        raise click.UsageError("choose one destination: --email, --slack or --file")
    if email:
        return {"platform": "email", "target": email}
    if slack:
        return {"platform": "slack", "target": slack}
    if to_file:
        return {"platform": "file"}
    return None


def _destination_label(destination: dict[str, Any] | None) -> str:
    """``email:a@b``, ``email:(user)+slack:(user)``, or ``default`` (the user's email and Slack DM)."""
    from yarn_assets.deliverables.delivery.base import DestinationError, parse_destination

    try:
        plan = parse_destination(destination)
    except DestinationError:
        return "invalid"
    return "+".join(d.label for d in plan.destinations) or "default (user)"


def _recipient(name: str | None, role: str | None, priorities: tuple[str, ...]) -> dict[str, Any] | None:
    if not (name or role or priorities):
        return None
    r: dict[str, Any] = {}
    if name:
        r["name"] = name
    if role:
        r["role"] = role
    if priorities:
        r["priorities"] = list(priorities)
    return r


def _add_partition(state: CliState, deliverable_id: str) -> str:
    """Register the dynamic partition key on the instance the UI reads (the sensor would do it too)."""
    from yarn_assets.cli.common import dagster_instance
    from yarn_assets.deliverables.assets import deliverable_partitions

    with dagster_instance(state) as instance:
        instance.add_dynamic_partitions(deliverable_partitions.name, [deliverable_id])
    return ""


schedule_options = [
    click.option("--frequency", type=click.Choice(FREQUENCIES), default=None),
    click.option("--time", "time_", default=None, help="HH:MM in the schedule's timezone."),
    click.option("--day", default=None, help="Weekday (weekly/biweekly/monthly) or 1-28 (monthly)."),
    click.option("--cron", default=None, help="Cron expression, evaluated in the schedule's timezone."),
    click.option("--timezone", "tz", default=None, help="IANA timezone; default the user's."),
    click.option("--email", default=None, help="Deliver by email to this address."),
    click.option("--slack", default=None, help="Deliver to this Slack channel id."),
    click.option("--file", "to_file", is_flag=True,
                 help="Deliver to the file outbox (the demo's transport; default: the user's email and Slack DM)."),
    click.option("--recipient-name", default=None),
    click.option("--recipient-role", default=None),
    click.option("--priority", "priorities", multiple=True, help="Recipient priority (repeatable)."),
    click.option("--focus", default=None, help="Topic (research, custom) stored in type_config.focus."),
    click.option("--length", type=click.Choice(sorted(LENGTH_PRESETS)), default=None),
]


def _with_options(fn):  # type: ignore[no-untyped-def]
    for opt in reversed(schedule_options):
        fn = opt(fn)
    return fn


@click.group("deliverables")
def deliverables_group() -> None:
    """Deliverables (digests, briefs, reports) and their versions."""


@deliverables_group.command("types")
def types_cmd() -> None:
    """The deliverable types with binding, platform, freshness and length preset."""
    rows = [{"type": t.name, "binding": t.binding, "platform": t.primary_platform or "-",
             "freshness_h": t.freshness_requirement_hours, "length": t.length} for t in TYPES.values()]
    click.echo(table(rows, ["type", "binding", "platform", "freshness_h", "length"]))


@deliverables_group.command("create")
@click.option("--user", "user_id", required=True)
@click.option("--type", "dtype", type=click.Choice(sorted(TYPES)), required=True)
@click.option("--title", required=True)
@click.option("--description", default=None)
@click.option("--source", "sources", multiple=True,
              help="platform or platform:resource_id (repeatable), e.g. slack:C024BE91L, gmail:INBOX.")
@_with_options
@click.option("--run-now", is_flag=True, help="Make it due now (the due sensor runs it).")
@pass_state
def create_cmd(state: CliState, user_id: str, dtype: str, title: str, description: str | None,
               sources: tuple[str, ...], frequency: str | None, time_: str | None, day: str | None, cron: str | None,
               tz: str | None, email: str | None, slack: str | None, to_file: bool, recipient_name: str | None,
               recipient_role: str | None, priorities: tuple[str, ...], focus: str | None, length: str | None,
               run_now: bool) -> None:
    """Create a deliverable; its first run time follows the schedule in the user's timezone."""
    type_config = {k: v for k, v in (("focus", focus), ("length", length)) if v}
    try:
        with state.session() as session:
            d = service.create_deliverable(
                session, user_id=user_id, deliverable_type=dtype, title=title, description=description,
                sources=list(sources), schedule=_schedule(frequency, time_, day, cron, tz),
                destination=_destination(email, slack, to_file),
                recipient_context=_recipient(recipient_name, recipient_role, priorities),
                type_config=type_config, run_now=run_now,
            )
            did, nxt, sched = d.id, d.next_run_at, describe(d.schedule)
    except service.DeliverableError as exc:
        raise click.ClickException(str(exc)) from None
    note = _add_partition(state, did)
    click.echo(f"created deliverable {did} ({dtype}), {sched}; next run {nxt.isoformat() if nxt else '-'}{note}")
    _warn_delivery(state, _destination(email, slack, to_file))


def _warn_delivery(state: CliState, destination: dict[str, Any] | None) -> None:
    """Email delivery configured (explicitly or as the default) without SMTP: say so now, not at the first run."""
    from resources.registry import build_delivery
    from yarn_assets.deliverables.delivery.dispatch import configured_but_unusable

    for warning in configured_but_unusable(build_delivery(state.settings), destination):
        click.echo(f"Warning: {warning}", err=True)


@deliverables_group.command("list")
@click.option("--user", "user_id", default=None)
@click.option("--all", "show_all", is_flag=True, help="Include archived deliverables.")
@pass_state
def list_cmd(state: CliState, user_id: str | None, show_all: bool) -> None:
    with state.session() as session:
        q = select(Deliverable).order_by(Deliverable.user_id, Deliverable.created_at)
        if user_id:
            q = q.where(Deliverable.user_id == user_id)
        if not show_all:
            q = q.where(Deliverable.status != "archived")
        rows = []
        for d in session.scalars(q):
            last = service.previous_versions(session, d.id, limit=1)
            rows.append({
                "id": d.id[:8], "user": d.user_id, "type": d.deliverable_type, "title": d.title[:40],
                "status": d.status, "destination": _destination_label(d.destination),
                "next_run": d.next_run_at.strftime("%Y-%m-%d %H:%M") if d.next_run_at else "-",
                "last": f"v{last[0].version_number} {last[0].status}" if last else "-",
            })
    click.echo(table(rows, ["id", "user", "type", "title", "status", "destination", "next_run", "last"]))


@deliverables_group.command("show")
@click.argument("deliverable_id")
@click.option("--versions", "n", default=5, show_default=True)
@pass_state
def show_cmd(state: CliState, deliverable_id: str, n: int) -> None:
    """Configuration and the latest versions with their steps and delivery."""
    try:
        with state.session() as session:
            d = service.get_deliverable(session, deliverable_id)
            click.echo(json.dumps({
                "id": d.id, "user": d.user_id, "type": d.deliverable_type, "title": d.title, "status": d.status,
                "origin": d.origin, "sources": d.sources, "schedule": describe(d.schedule),
                "destination": d.destination, "recipient_context": d.recipient_context, "type_config": d.type_config,
                "next_run_at": d.next_run_at.isoformat() if d.next_run_at else None,
                "last_run_at": d.last_run_at.isoformat() if d.last_run_at else None,
            }, indent=2))
            rows = []
            for v in service.previous_versions(session, d.id, limit=n):
                steps = " ".join(f"{s['name']}:{s['status']}({s['ms']:.0f}ms)" for s in (v.steps or []))
                rows.append({"v": v.version_number, "status": v.status, "trigger": v.trigger,
                             "delivery": v.delivery_status, "error": (v.delivery_error or v.error or "")[:50],
                             "created": v.created_at.strftime("%Y-%m-%d %H:%M"), "steps": steps})
    except service.DeliverableError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(table(rows, ["v", "status", "trigger", "delivery", "created", "error", "steps"]))


@deliverables_group.command("edit")
@click.argument("deliverable_id")
@click.option("--title", default=None)
@click.option("--source", "sources", multiple=True, help="Replace the sources (repeatable).")
@click.option("--clear-sources", is_flag=True)
@_with_options
@pass_state
def edit_cmd(state: CliState, deliverable_id: str, title: str | None, sources: tuple[str, ...], clear_sources: bool,
             frequency: str | None, time_: str | None, day: str | None, cron: str | None, tz: str | None,
             email: str | None, slack: str | None, to_file: bool, recipient_name: str | None,
             recipient_role: str | None, priorities: tuple[str, ...], focus: str | None, length: str | None) -> None:
    """Edit sources, schedule, destination, recipient context or focus."""
    changes: dict[str, Any] = {}
    if title:
        changes["title"] = title
    if sources or clear_sources:
        changes["sources"] = list(sources)
    sched = _schedule(frequency, time_, day, cron, tz)
    dest = _destination(email, slack, to_file)
    try:
        with state.session() as session:
            d = service.get_deliverable(session, deliverable_id)
            if sched is not None:
                changes["schedule"] = {**(d.schedule or {}), **sched}
            if dest is not None:
                changes["destination"] = dest
            recipient = _recipient(recipient_name, recipient_role, priorities)
            if recipient is not None:
                changes["recipient_context"] = {**(d.recipient_context or {}), **recipient}
            if focus or length:
                cfg = dict(d.type_config or {})
                cfg.update({k: v for k, v in (("focus", focus), ("length", length)) if v})
                changes["type_config"] = cfg
            if not changes:
                raise click.UsageError("nothing to change")
            d = service.update_deliverable(session, d.id, **changes)
            nxt = d.next_run_at
    except service.DeliverableError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"updated {', '.join(sorted(changes))}; next run {nxt.isoformat() if nxt else '-'}")


def _status_cmd(name: str, status: str, help_: str) -> None:
    @deliverables_group.command(name, help=help_)
    @click.argument("deliverable_id")
    @pass_state
    def cmd(state: CliState, deliverable_id: str) -> None:
        try:
            with state.session() as session:
                d = service.set_status(session, deliverable_id, status)
                nxt = d.next_run_at
        except service.DeliverableError as exc:
            raise click.ClickException(str(exc)) from None
        extra = f"; next run {nxt.isoformat()}" if status == "active" and nxt else ""
        click.echo(f"deliverable {deliverable_id} {status}{extra}")


_status_cmd("pause", "paused", "Stop scheduled runs (manual runs still work).")
_status_cmd("resume", "active", "Resume scheduled runs; the next run is computed from now.")
_status_cmd("archive", "archived", "Archive: no runs at all.")


@deliverables_group.command("run")
@click.argument("deliverable_id")
@click.option("--inline", is_flag=True, help="Submit a run to the Dagster instance now instead of requesting one.")
@click.option("--reason", default="manual run from the CLI", show_default=True)
@wait_option
@pass_state
def run_cmd(state: CliState, deliverable_id: str, inline: bool, reason: str, wait: bool) -> None:
    """Generate now: a request the requests sensor launches within 30 s, or --inline a run on the instance."""
    try:
        with state.session() as session:
            d = service.get_deliverable(session, deliverable_id)
            did = d.id
            if not inline:
                req = service.request_generation(session, did, "manual", requested_by="cli", note=reason)
                click.echo(f"requested generation of {did} (request {req.id}); the requests sensor launches it")
                return
    except service.DeliverableError as exc:
        raise click.ClickException(str(exc)) from None
    from yarn_assets.cli.common import dagster_instance
    from yarn_assets.core.submit import submit_run
    from yarn_assets.deliverables.assets import TRIGGER_TAG, deliverable_partitions

    with dagster_instance(state) as instance:
        instance.add_dynamic_partitions(deliverable_partitions.name, [did])
        run = submit_run("deliverable_job", settings=state.settings, instance=instance, partition=did,
                         tags={TRIGGER_TAG: "manual"}, wait=wait)
    if not run.finished:
        click.echo(f"run {run.run_id}: {run.status} (queued; `--wait` follows it)")
        return
    with state.session() as session:
        last = service.previous_versions(session, did, limit=1)
        summary = f"v{last[0].version_number} {last[0].status}, delivery {last[0].delivery_status}" if last else "-"
    click.echo(f"run {run.run_id}: {'success' if run.success else 'FAILED'}; {summary}")
    if not run.success:
        raise SystemExit(1)


@deliverables_group.command("resend")
@click.argument("deliverable_id")
@click.argument("version_number", type=int)
@pass_state
def resend_cmd(state: CliState, deliverable_id: str, version_number: int) -> None:
    """Deliver a stored version again (after an interrupted send); the operator decides, not a retry."""
    from yarn_assets.deliverables.delivery.dispatch import deliver_all
    from yarn_assets.deliverables.run_resources import run_resources_from_settings
    from yarn_assets.deliverables.versions import _gold_row

    try:
        with state.session() as session:
            d = service.get_deliverable(session, deliverable_id)
            v = session.scalars(select(DeliverableVersion).where(
                DeliverableVersion.deliverable_id == d.id, DeliverableVersion.version_number == version_number)).first()
            if v is None:
                raise click.ClickException(f"deliverable {d.id} has no version {version_number}")
            session.expunge_all()
    except service.DeliverableError as exc:
        raise click.ClickException(str(exc)) from None
    row = _gold_row(state.store, d.id, v.id)
    if not row or not (row.get("final_content") or "").strip():
        raise click.ClickException(f"version {version_number} has no stored text to deliver")
    with run_resources_from_settings(state.settings) as resources:
        outcome = deliver_all(state.session, resources.delivery, deliverable=d, version=v,
                              text=row["final_content"], row=row, force=True)
    with state.session() as session:
        vv = session.get(DeliverableVersion, v.id)
        if vv is not None:
            vv.delivery_status, vv.delivery_error = outcome.status, outcome.error
            rows = session.scalars(select(DeliverableDelivery).where(DeliverableDelivery.version_id == v.id)).all()
    click.echo(f"{outcome.status} to {outcome.channel}:{outcome.target}"
               + (f" ({outcome.error})" if outcome.error else "") + f"; {len(rows)} outbox row(s)")
