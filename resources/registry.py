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
        "runtime": Runtime(
            home=str(home),
            inbox_dir=str(settings.resolved_inbox_dir),
            archive_dir=str(home / "imports"),
            outbox_dir=str(home / "outbox"),
        ),
    }
