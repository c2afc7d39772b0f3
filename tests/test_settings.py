"""Settings: validated at load, errors name the variable, nothing read at import time."""

from __future__ import annotations

import subprocess
import sys

import pytest

from resources.settings import SettingsError, load_settings


def test_defaults_are_local_and_offline(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YARNNN_HOME", str(tmp_path))
    s = load_settings()
    assert s.resolved_warehouse_root == str(tmp_path / "warehouse")
    assert s.resolved_control_plane_url == f"sqlite:///{tmp_path / 'control_plane.db'}"
    assert s.llm_offline


@pytest.mark.parametrize(
    "env,needle",
    [
        ({"YARNNN_ENCRYPTION_KEY": "not-a-key"}, "YARNNN_ENCRYPTION_KEY"),
        ({"YARNNN_WAREHOUSE_STORAGE_OPTIONS": "[1, 2]"}, "YARNNN_WAREHOUSE_STORAGE_OPTIONS"),
        ({"YARNNN_SMTP_PORT": "twenty-five"}, "YARNNN_SMTP_PORT"),
        ({"YARNNN_LLM_MODE": "api"}, "ANTHROPIC_API_KEY"),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError, match=needle):
        load_settings()


def test_object_store_root_passes_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YARNNN_WAREHOUSE_ROOT", "s3://bucket/prefix")
    monkeypatch.setenv("YARNNN_WAREHOUSE_STORAGE_OPTIONS", '{"AWS_REGION": "eu-west-1"}')
    s = load_settings()
    assert s.resolved_warehouse_root == "s3://bucket/prefix"
    assert s.warehouse_storage_options == {"AWS_REGION": "eu-west-1"}


def test_api_key_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-topsecret")
    s = load_settings()
    assert not s.llm_offline
    assert "topsecret" not in repr(s) and "topsecret" not in str(s.model_dump())


def test_importing_the_code_location_reads_no_settings() -> None:
    """A broken environment must not break imports; it fails when definitions load, by name."""
    code = (
        "import os; os.environ['YARNNN_ENCRYPTION_KEY']='broken'\n"
        "import yarn_assets.definitions as d\n"
        "try:\n    d.defs()\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "SettingsError" in out.stdout and "YARNNN_ENCRYPTION_KEY" in out.stdout
