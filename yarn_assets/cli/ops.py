"""Operations commands: asset backfills over GraphQL, concurrency pools, system status."""

from __future__ import annotations

import click

from yarn_assets.cli.backfill import backfill_cmd
from yarn_assets.cli.pools import pools_group
from yarn_assets.cli.status import status_cmd

OPS_COMMANDS: list[click.Command] = [backfill_cmd, pools_group, status_cmd]
