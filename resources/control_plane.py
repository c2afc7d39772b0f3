"""The control-plane database (SQLAlchemy) as a Dagster resource."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field, PrivateAttr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from control_plane import db


class ControlPlane(dg.ConfigurableResource):
    """Users, connections, cursors, import jobs, deliverables, signal history, LLM usage."""

    url: str = Field(description="SQLAlchemy URL; pass an EnvVar when it holds a password.")
    auto_migrate: bool = Field(default=True, description="Apply pending migrations on first use.")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        db.ensure_schema(self.url, self.auto_migrate)

    @property
    def engine(self) -> Engine:
        return db.get_engine(self.url)

    _schema_checked: bool = PrivateAttr(default=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction; commits on success. The schema is checked on this resource's first
        session only (a revision query per session was a third of a signal hour's control-plane time)."""
        if not self._schema_checked:
            db.ensure_schema(self.url, self.auto_migrate)
            self._schema_checked = True
        with db.session_scope(self.url) as session:
            yield session
