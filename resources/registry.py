"""Builds every resource from the validated settings: the one place configuration meets code.

Secrets are passed as ``EnvVar`` so Dagster resolves them at run time and shows only the
variable's name in the UI and run config.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from io_managers.delta_io_manager import DeltaPolarsIOManager
from resources.control_plane import ControlPlane
from resources.credentials import CredentialVault
from resources.platform_clients import PlatformClients
from resources.runtime import Runtime
from resources.settings import YarnSettings
from resources.warehouse import Warehouse


def _secret(settings_value: object, variable: str) -> Any:
    """EnvVar when the variable is set in the environment, the literal value otherwise (tests)."""
    if settings_value is None:
        return None
    if os.environ.get(variable):
        return dg.EnvVar(variable)
    getter = getattr(settings_value, "get_secret_value", None)
    return getter() if getter else settings_value


def build_resources(settings: YarnSettings) -> dict[str, Any]:
    home = settings.resolved_home
    root = settings.resolved_warehouse_root
    options = dict(settings.warehouse_storage_options)
    control_plane_url: Any = settings.resolved_control_plane_url
    if settings.control_plane_url and os.environ.get("YARNNN_CONTROL_PLANE_URL"):
        control_plane_url = dg.EnvVar("YARNNN_CONTROL_PLANE_URL")
    return {
        "warehouse": Warehouse(root=root, storage_options=options),
        "io_manager": DeltaPolarsIOManager(root=root, storage_options=options),
        "control_plane": ControlPlane(url=control_plane_url, auto_migrate=settings.control_plane_auto_migrate),
        "credentials": CredentialVault(encryption_key=_secret(settings.encryption_key, "YARNNN_ENCRYPTION_KEY")),
        "platform_clients": PlatformClients(
            slack_base_url=settings.slack_base_url,
            google_api_base_url=settings.google_api_base_url,
            google_token_uri=settings.google_token_uri,
            notion_base_url=settings.notion_base_url,
            timeout_seconds=settings.platform_timeout_seconds,
            max_attempts=settings.platform_max_attempts,
            backoff_seconds=settings.platform_backoff_seconds,
            rate_limits=dict(settings.platform_rate_limits),
        ),
        "runtime": Runtime(
            home=str(home),
            inbox_dir=str(settings.resolved_inbox_dir),
            archive_dir=str(home / "imports"),
            outbox_dir=str(home / "outbox"),
        ),
    }
