"""``yarnnn``: the operator CLI (users, imports, connections, deliverables, status, demo).

Dagster's own CLI runs and backfills the assets; this one manages the control plane and
launches what Dagster cannot express (true asset backfills over GraphQL).
"""

from __future__ import annotations

import click

from yarn_assets.cli import common, core


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """yarnnn operator commands."""
    ctx.obj = common.CliState()


for group in core.GROUPS:
    main.add_command(group)
