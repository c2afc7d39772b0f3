"""Shared CLI plumbing: settings loaded once, clear errors instead of tracebacks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

import click
import dagster as dg
from sqlalchemy.orm import Session

from control_plane import db
from io_managers.delta_store import DeltaStore
from resources.settings import SettingsError, YarnSettings, load_settings


@dataclass
class CliState:
    overrides: dict[str, object] = field(default_factory=dict)

    @cached_property
    def settings(self) -> YarnSettings:
        try:
            return load_settings(**self.overrides)
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from None

    @contextmanager
    def session(self) -> Iterator[Session]:
        url = self.settings.resolved_control_plane_url
        db.ensure_schema(url, self.settings.control_plane_auto_migrate)
        with db.session_scope(url) as session:
            yield session

    @property
    def store(self) -> DeltaStore:
        return DeltaStore(self.settings.resolved_warehouse_root, self.settings.warehouse_storage_options)


pass_state = click.make_pass_decorator(CliState)


@contextmanager
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    """The instance under DAGSTER_HOME when set (runs show in the UI), else an ephemeral one."""
    import os

    if os.environ.get("DAGSTER_HOME"):
        yield dg.DagsterInstance.get()
    else:
        with dg.DagsterInstance.ephemeral() as instance:
            yield instance


def quiet_run_config(level: str = "WARNING") -> dict[str, object]:
    """Run config that keeps in-process runs from flooding the terminal with DEBUG events."""
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def table(rows: list[dict[str, object]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, "") or "")) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "") or "").ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)
