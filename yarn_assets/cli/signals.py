"""``yarnnn signals``: trigger one user's passes now, backfill hours, inspect recent passes."""

from __future__ import annotations

import datetime as dt

import click
import polars as pl

from io_managers.predicates import In, Window, all_of
from yarn_assets.cli.common import CliState, pass_state, quiet_run_config, submit, table, wait_option

PASS_CHOICES = ("all", "calendar_only", "non_calendar")


def _passes(choice: str) -> list[str]:
    from yarn_assets.signals.tables import PASSES

    return list(PASSES) if choice == "all" else [choice]


def _execute(state: CliState, keys: list[str], config: dict[str, object], trigger_tag: str,
             wait: bool) -> list[tuple[str, bool]]:
    """One run of ``signals_job`` per (hour, user shard), submitted to the instance in order; only the
    named users' shards when narrowed."""
    import dagster as dg

    from yarn_assets.core.shards import shard_keys, shard_of

    run_config = {**quiet_run_config(), "ops": {"signal_passes": {"config": config}}}
    n = state.settings.user_shards
    users = list(config.get("user_ids") or [])  # type: ignore[call-overload]
    shards = sorted({shard_of(u, n) for u in users}, key=int) if users else shard_keys(n)
    out = []
    for key in keys:
        ok = True
        for shard in shards:
            partition = str(dg.MultiPartitionKey({"hour": key, "shard": shard}))
            ok = submit(state, "signals_job", wait=wait, label=partition, partition=partition,
                        run_config=run_config, tags={"yarnnn/trigger": trigger_tag}) and ok
        out.append((key, ok))
    return out


def _hour(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d-%H:00")


def _report(state: CliState, keys: list[str], trigger: str, users: list[str] | None) -> None:
    from yarn_assets.signals.tables import SIGNAL_SUMMARIES

    starts = [dt.datetime.strptime(k, "%Y-%m-%d-%H:%M").replace(tzinfo=dt.UTC) for k in keys]
    pred = all_of(
        Window("partition_hour", min(starts), max(starts) + dt.timedelta(hours=1)),
        In("user_id", users) if users else None,
    )
    rows = state.store.read(SIGNAL_SUMMARIES, pred).filter(pl.col("trigger") == trigger)
    rows = rows.sort(["partition_hour", "user_id", "pass"])
    click.echo(table([
        {"hour": f"{r['partition_hour']:%Y-%m-%d %H:00}", "user": r["user_id"], "pass": r["pass"],
         "items": r["items_total"], "status": r["status"], "why": r["skip_reason"] or (r["error"] or "")[:50],
         "created": r["deliverables_created"], "triggered": r["deliverables_triggered"], "engine": r["engine"],
         "cost": f"{r['cost_usd'] or 0:.4f}"}
        for r in rows.iter_rows(named=True)
    ], ["hour", "user", "pass", "items", "status", "why", "created", "triggered", "engine", "cost"]))


@click.group("signals")
def signals_group() -> None:
    """Hourly signal processing (gold/signal_summaries, gold/signal_actions)."""


@signals_group.command("run")
@click.option("--user", "user_id", required=True, help="The user whose passes run now.")
@click.option("--pass", "pass_choice", type=click.Choice(PASS_CHOICES), default="all", show_default=True)
@click.option("--respect-wake-gate", is_flag=True, help="Skip the decision if nothing changed (default: evaluate).")
@click.option("--dry-run", is_flag=True, help="Record the decision without creating or triggering deliverables.")
@wait_option
@pass_state
def signals_run(state: CliState, user_id: str, pass_choice: str, respect_wake_gate: bool, dry_run: bool,
                wait: bool) -> None:
    """Run one user's signal passes now (the current hour), with the 5-minute cooldown."""
    from yarn_assets.signals.manual import ManualTriggerRefused, claim_manual_trigger

    now = dt.datetime.now(dt.UTC)
    try:
        with state.session() as session:
            claim_manual_trigger(session, user_id, now=now,
                                 cooldown_seconds=state.settings.signals_manual_cooldown_seconds,
                                 excluded_tiers=state.settings.signals_excluded_tiers)
    except ManualTriggerRefused as exc:
        raise click.ClickException(str(exc)) from None
    key = _hour(now)
    config = {"user_ids": [user_id], "passes": _passes(pass_choice), "ignore_wake_gate": not respect_wake_gate,
              "execute": not dry_run, "trigger": "manual"}
    ((_, ok),) = _execute(state, [key], config, "manual", wait)
    _report(state, [key], "manual", [user_id])
    if not ok:
        raise click.ClickException(f"the signal run for {user_id} failed; see the run in the Dagster UI")


@signals_group.command("backfill")
@click.option("--from", "start", required=True,
              help="First hour, YYYY-MM-DD-HH:00 (UTC); every user shard of each hour runs.")
@click.option("--to", "end", required=True, help="Last hour, inclusive.")
@click.option("--user", "user_ids", multiple=True, help="Only these users (repeatable).")
@click.option("--dry-run", is_flag=True, help="Record decisions without creating or triggering deliverables.")
@pass_state
def signals_backfill(state: CliState, start: str, end: str, user_ids: tuple[str, ...], dry_run: bool) -> None:
    """Process a range of hours in order, one run per hour on the instance, each followed to its end
    (safe to repeat: every hour is idempotent)."""
    import dagster as dg

    from yarn_assets.signals.tables import signal_hours

    start, end = start.split("|")[0], end.split("|")[0]  # an hour, or an (hour|shard) key: every shard runs
    try:
        keys = signal_hours.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
    except Exception as exc:
        raise click.BadParameter(f"not an hour range of signal partitions: {exc}") from None
    if not keys:
        raise click.BadParameter(f"no hours between {start} and {end}")
    config = {"user_ids": list(user_ids), "execute": not dry_run}
    results = _execute(state, keys, config, "cli_backfill", wait=True)
    for key, ok in results:
        if not ok:
            click.echo(f"{key}: FAILED", err=True)
    _report(state, keys, "schedule", list(user_ids) or None)
    failed = [k for k, ok in results if not ok]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(keys)} hours failed: {', '.join(failed[:5])}")
    click.echo(f"{len(keys)} hour(s) processed")


@signals_group.command("show")
@click.option("--user", "user_ids", multiple=True)
@click.option("--hours", default=24, show_default=True, help="How many hours back.")
@pass_state
def signals_show(state: CliState, user_ids: tuple[str, ...], hours: int) -> None:
    """Recent passes: items, status, skip reasons, actions and cost."""
    now = dt.datetime.now(dt.UTC)
    keys = [_hour(now - dt.timedelta(hours=h)) for h in range(hours, -1, -1)]
    for trigger in ("schedule", "manual"):
        click.echo(f"-- {trigger} passes")
        _report(state, keys, trigger, list(user_ids) or None)
