"""The control-plane database (SQLAlchemy) as a Dagster resource."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field
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

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction; commits on success."""
        db.ensure_schema(self.url, self.auto_migrate)
        with db.session_scope(self.url) as session:
            yield session
