"""``yarnnn pools``: show and apply the concurrency pool limits of the Dagster instance."""

from __future__ import annotations

import click

from yarn_assets.cli.common import CliState, pass_state, table
from yarn_assets.core.pools import POOLS, apply_pool_limits, instance_pool_limits, pool_limits


def _instance():  # type: ignore[no-untyped-def]
    import os

    import dagster as dg

    if not os.environ.get("DAGSTER_HOME"):
        raise click.ClickException("DAGSTER_HOME is not set: pools live in the Dagster instance")
    return dg.DagsterInstance.get()


@click.group("pools")
def pools_group() -> None:
    """Concurrency pools (LLM and platform APIs) of the Dagster instance."""


@pools_group.command("show")
@pass_state
def pools_show(state: CliState) -> None:
    wanted = pool_limits(state.settings.pool_limits)
    with _instance() as instance:
        have = instance_pool_limits(instance)
    rows = [{"pool": name, "configured": wanted.get(name, ""), "instance": have.get(name, "(default)"),
             "why": POOLS.get(name, (0, ""))[1]} for name in sorted(set(wanted) | set(have))]
    click.echo(table(rows, ["pool", "configured", "instance", "why"]))


@pools_group.command("apply")
@pass_state
def pools_apply(state: CliState) -> None:
    """Write the configured limits (defaults + YARNNN_POOL_LIMITS) into the instance."""
    try:
        limits = pool_limits(state.settings.pool_limits)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    with _instance() as instance:
        changes = apply_pool_limits(instance, limits)
    for name, (before, after) in changes.items():
        verb = "unchanged" if before == after else f"{'(default)' if before is None else before} -> {after}"
        click.echo(f"{name}: {after} ({verb})")
