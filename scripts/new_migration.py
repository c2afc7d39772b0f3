"""Autogenerate an Alembic migration from control_plane.models (dev tool).

usage: python scripts/new_migration.py "add chat tables" 0003
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from control_plane.db import alembic_config, upgrade


def main() -> None:
    message, rev_id = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'gen.db'}"
        upgrade(url)  # bring a scratch database to the current head, then diff the models against it
        command.revision(alembic_config(url), message=message, autogenerate=True, rev_id=rev_id)


if __name__ == "__main__":
    main()
