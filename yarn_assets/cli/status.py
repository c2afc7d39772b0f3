"""``yarnnn status``: per user, sync freshness, last signal pass, deliverables, memory, imports and
recent run failures, plus the Dagster daemons' heartbeats. Read-only (see yarn_assets.ops.status)."""

from __future__ import annotations

import datetime as dt
import json
import os
from contextlib import ExitStack
from pathlib import Path

import click

from yarn_assets.cli.common import CliState, pass_state, table
from yarn_assets.ops.status import SystemStatus, UserStatus, collect


def _ago(value: dt.datetime | None, now: dt.datetime) -> str:
    if value is None:
        return "never"
    minutes = int((now - value).total_seconds() // 60)
    if minutes < 0:
        return f"{value:%Y-%m-%d %H:%M} (in {-minutes} min)"
    span = f"{minutes} min" if minutes < 120 else (f"{minutes // 60} h" if minutes < 2880 else f"{minutes // 1440} d")
    return f"{value:%Y-%m-%d %H:%M} ({span} ago)"


def _render_user(s: UserStatus, now: dt.datetime) -> list[str]:
    out = [f"user {s.user_id}" + (f" ({s.tier}, {s.timezone})" if s.tier else "")]
    if s.connections:
        rows = [{"platform": c["platform"], "status": c["status"], "last sync": _ago(c["last_synced_at"], now),
                 "error": (c["last_error"] or "")[:60]} for c in s.connections]
        out += ["  connections:", *("    " + line for line in table(rows, ["platform", "status", "last sync",
                                                                            "error"]).splitlines())]
    if s.sources:
        rows = [{"platform": x["platform"], "sources": str(x["sources"]), "items": str(x["items"]),
                 "newest": _ago(x["newest_sync"], now), "oldest": _ago(x["oldest_sync"], now),
                 "never": str(x["never_synced"]), "errors": str(len(x["errors"]))} for x in s.sources]
        out += ["  sync freshness (sync_registry):",
                *("    " + line for line in table(rows, ["platform", "sources", "items", "newest", "oldest", "never",
                                                          "errors"]).splitlines())]
        for x in s.sources:
            out += [f"    ! {x['platform']} {name}: {err}" for name, err in x["errors"].items()]
    elif not s.connections:
        out.append("  syncs: no connections")
    sig = s.last_signal_pass
    out.append(f"  last signal pass: {_ago(sig['at'], now)} {sig['summary']}" if sig else "  last signal pass: never")
    d = s.deliverables
    if d:
        out.append(f"  deliverables: {d['active']} active, {d['paused']} paused, {len(d['due'])} due now, "
                   f"{len(d['failed'])} failed; next run {_ago(d['next'], now)}")
        out += [f"    due: {x['title']} (since {x['next_run_at']:%Y-%m-%d %H:%M})" for x in d["due"]]
        out += [f"    failed: {x['title']} v{x['version']}: {x['error']}" for x in d["failed"]]
    else:
        out.append("  deliverables: none")
    mem = s.last_memory_run
    out.append(f"  last memory run: {_ago(mem['at'], now)} [{mem['event']}] {mem['summary']}" if mem
               else "  last memory run: never")
    imp = s.imports
    if imp:
        counts = ", ".join(f"{k} {v}" for k, v in imp["by_status"].items())
        out.append(f"  import jobs: {counts}; last {_ago(imp['last'], now)}")
        out += [f"    failed: {x['file']}: {x['error']}" for x in imp["failed"]]
    else:
        out.append("  import jobs: none")
    if s.run_failures:
        out.append(f"  run failures ({len(s.run_failures)}):")
        out += [f"    {r['run_id'][:8]} {r['job']} [{r['partition'] or '-'}] {_ago(r['ended_at'], now)}"
                for r in s.run_failures[:10]]
    else:
        out.append("  run failures: none")
    return out


def render(status: SystemStatus) -> str:
    now = status.now
    lines = [f"yarnnn status at {now:%Y-%m-%d %H:%M} UTC"]
    if status.daemons:
        bad = [d["daemon"] for d in status.daemons if not d["healthy"]]
        lines.append("dagster daemons: " + ("all healthy" if not bad else "UNHEALTHY: " + ", ".join(bad))
                     + " (" + ", ".join(f"{d['daemon']} {_ago(d['last_heartbeat'], now)}" for d in status.daemons)
                     + ")")
    if status.operator_failures:
        lines.append(f"operator run failures ({len(status.operator_failures)}):")
        lines += [f"  {r['run_id'][:8]} {r['job']} [{r['partition'] or '-'}] {_ago(r['ended_at'], now)}"
                  for r in status.operator_failures[:10]]
    lines += [f"note: {n}" for n in status.notes]
    for user_id in sorted(status.users):
        lines.append("")
        lines += _render_user(status.users[user_id], now)
    return "\n".join(lines)


@click.command("status")
@click.option("--user", "user_id", default=None, help="Only this user.")
@click.option("--days", default=7, show_default=True, help="Look-back for run failures and events.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def status_cmd(state: CliState, user_id: str | None, days: int, as_json: bool) -> None:
    """What ran, what is stale, what failed (reads; never writes)."""
    settings = state.settings
    with ExitStack() as stack:
        instance = None
        home = os.environ.get("DAGSTER_HOME")
        if home and any((Path(home) / name).exists() for name in ("dagster.yaml", "storage")):
            import dagster as dg

            instance = stack.enter_context(dg.DagsterInstance.get())
        result = collect(control_plane_url=settings.resolved_control_plane_url, store=state.store, instance=instance,
                         user_id=user_id, days=days)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    else:
        click.echo(render(result))
