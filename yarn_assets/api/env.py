"""What every route uses: settings, control-plane sessions, the warehouse, the Dagster instance, rate limits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from fastapi import HTTPException
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.orm import Session

from control_plane import db
from io_managers.delta_store import DeltaStore
from resources.settings import YarnSettings


@dataclass
class ApiEnv:
    """Built once per app by :func:`yarn_assets.api.app.create_app` from the settings it was given."""

    settings: YarnSettings
    instance: dg.DagsterInstance | None = None  # None: DAGSTER_HOME's instance, opened on first use
    _definitions: dg.Definitions | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _limiter: MovingWindowRateLimiter = field(
        default_factory=lambda: MovingWindowRateLimiter(MemoryStorage()), repr=False)

    def __post_init__(self) -> None:
        self.url = self.settings.resolved_control_plane_url
        db.ensure_schema(self.url, self.settings.control_plane_auto_migrate)
        self.store = DeltaStore(self.settings.resolved_warehouse_root, self.settings.warehouse_storage_options)
        self.limits = parse_many(self.settings.api_trigger_rate_limit)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with db.session_scope(self.url) as s:
            yield s

    def signing_key(self) -> str | None:
        key = self.settings.auth_signing_key
        return key.get_secret_value() if key is not None else None

    def dagster(self) -> dg.DagsterInstance:
        """The instance runs are submitted to (the one the daemon serves); 503 when none is configured."""
        with self._lock:
            if self.instance is None:
                try:
                    self.instance = dg.DagsterInstance.get()
                except Exception:
                    raise HTTPException(503, "no Dagster instance is configured (DAGSTER_HOME)") from None
            return self.instance

    def job(self, name: str) -> Any:
        """A job of the domains the triggers run, resolved for the run's plan snapshot. The run itself is
        executed by the daemon's worker from the code location's own definitions (same job name);
        ``yarn_assets.definitions`` (the assembly) is above this serving layer and is not imported."""
        from resources.registry import build_resources
        from yarn_assets.deliverables.definitions import definitions as deliverables
        from yarn_assets.ingest.definitions import definitions as ingest
        from yarn_assets.signals.definitions import definitions as signals

        with self._lock:
            if self._definitions is None:
                self._definitions = dg.Definitions.merge(
                    ingest(), signals(), deliverables(), dg.Definitions(resources=build_resources(self.settings)))
            return self._definitions.resolve_job_def(name)

    def rate_limit(self, user_id: str, route: str) -> None:
        """Per user and route; 429 with Retry-After when a window is full."""
        for item in self.limits:
            if not self._limiter.hit(item, "api", route, user_id):
                reset, _remaining = self._limiter.get_window_stats(item, "api", route, user_id)
                import time

                wait = max(1, int(reset - time.time()))
                raise HTTPException(429, f"rate limit {item} reached", headers={"Retry-After": str(wait)})
