"""Shared CLI plumbing: settings loaded once, clear errors instead of tracebacks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

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


class IsoDate(click.ParamType):
    """A calendar date written ``YYYY-MM-DD`` (anything else is a usage error naming the format)."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a date in the format YYYY-MM-DD (e.g. 2026-03-12)", param, ctx)


class UserId(click.ParamType):
    """A user id in the documented character set (``control_plane.user_ids``)."""

    name = "USER_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from control_plane.user_ids import InvalidUserId, validate_user_id

        try:
            return validate_user_id(str(value))
        except InvalidUserId as exc:
            self.fail(str(exc), param, ctx)


def product_errors() -> tuple[type[Exception], ...]:
    """The product's own validation errors: shown as ``Error: <message>`` (exit 1), never a traceback.

    Anything else (a bug) still raises with its traceback.
    """
    from control_plane.crypto import CredentialError
    from control_plane.db import SchemaOutOfDate
    from control_plane.user_ids import InvalidUserId
    from resources.input_limits import LimitExceeded
    from yarn_assets.deliverables.delivery.base import DestinationError
    from yarn_assets.deliverables.schedule import ScheduleError
    from yarn_assets.deliverables.service import DeliverableError
    from yarn_assets.deliverables.sources import SourceError
    from yarn_assets.ingest.archive import UnreadableArchive
    from yarn_assets.ingest.import_jobs import ImportError_
    from yarn_assets.ingest.sync.connections import ConnectionError_
    from yarn_assets.memory.user_context import InvalidAssertion
    from yarn_assets.signals.manual import ManualTriggerRefused

    return (SettingsError, SchemaOutOfDate, CredentialError, InvalidUserId, LimitExceeded, DestinationError,
            ScheduleError, DeliverableError, SourceError, ImportError_, UnreadableArchive, ConnectionError_,
            InvalidAssertion, ManualTriggerRefused)


@contextmanager
def dagster_instance(state: CliState) -> Iterator[dg.DagsterInstance]:
    """The instance the UI reads: DAGSTER_HOME when set, else ``<yarnnn home>/dagster_home``."""
    from yarn_assets.core.instance import instance_for

    with instance_for(state.settings.resolved_home) as instance:
        yield instance


wait_option = click.option("--wait/--no-wait", default=False, show_default=True,
                           help="Follow the run to the end: print its status, exit 1 unless it succeeds.")


def submit(state: CliState, job_name: str, *, wait: bool, label: str, **kwargs: Any) -> bool:
    """Submit one run through :func:`yarn_assets.core.submit.submit_run` and say what happened.

    Returns whether it succeeded (a queued run not waited for counts as accepted).
    """
    from yarn_assets.core.submit import submit_run

    with dagster_instance(state) as instance:
        run = submit_run(job_name, settings=state.settings, instance=instance, wait=wait,
                         on_status=(lambda s: click.echo(f"{label}: {s}")) if wait else None, **kwargs)
    how = "queued" if run.queued else "ran here (no daemon serves the run queue; start `dg dev`)"
    ok = run.success if run.finished else True
    state_word = ("ok" if run.success else "FAILED") if run.finished else run.status
    click.echo(f"{label}: {state_word} (run {run.run_id}, {how})")
    return ok


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
