"""``yarnnn``: the operator CLI (users, imports, connections, signals, deliverables, memory, people, ops).

Dagster's own CLI runs and backfills the assets; this one manages the control plane and
launches what Dagster cannot express (true asset backfills over GraphQL).
"""

from __future__ import annotations

from importlib import import_module

import click

from yarn_assets.cli import common

#: (module, attribute) of every command or list of commands; each domain owns its module.
COMMANDS = (
    ("yarn_assets.cli.core", "GROUPS"),
    ("yarn_assets.cli.connections", "connections_group"),
    ("yarn_assets.cli.signals", "signals_group"),
    ("yarn_assets.cli.deliverables", "deliverables_group"),
    ("yarn_assets.cli.memory", "memory_group"),
    ("yarn_assets.cli.people", "COMMANDS"),
    ("yarn_assets.cli.ops", "OPS_COMMANDS"),
    ("yarn_assets.cli.recipes", "recipes_group"),
    ("yarn_assets.cli.serve", "COMMANDS"),
    ("yarn_assets.cli.serve_mcp", "COMMANDS"),
)


class YarnnnCli(click.Group):
    """The top-level group: the product's own validation errors become ``Error: …`` (exit 1).

    Commands raise ``click`` errors for bad arguments (exit 2); a validation error raised deeper
    (a service refusing a deliverable, an import refused…) is caught here once, so no command
    needs its own try/except to avoid a traceback. Other exceptions are bugs and keep theirs.
    """

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except common.product_errors() as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=YarnnnCli, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """yarnnn operator commands."""
    ctx.obj = common.CliState()


for _module, _attr in COMMANDS:
    _found = getattr(import_module(_module), _attr)
    for _command in _found if isinstance(_found, list) else [_found]:
        main.add_command(_command)
