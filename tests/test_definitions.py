"""The code location loads, validates from the CLI, and its graph matches the reviewed snapshot.

Regenerate the snapshot after an intended graph change: ``UPDATE_SNAPSHOTS=1 pytest tests/test_definitions.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from resources.settings import load_settings
from yarn_assets.definitions import build_definitions

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"
REPO = Path(__file__).resolve().parents[1]


def graph_snapshot(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        pdef = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(d.to_user_string() for d in node.parent_keys),
            "partitions": type(pdef).__name__ if pdef else None,
            "checks": sorted(c.name for c in node.check_keys),
            "automation": node.automation_condition.get_label() if node.automation_condition else None,
            "kinds": sorted(node.kinds),
        }
    return {
        "assets": assets,
        "jobs": sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")),
        "schedules": sorted(s.name for s in defs.schedules or []),
        "sensors": sorted(s.name for s in defs.sensors or []),
        "resources": sorted((defs.resources or {}).keys()),
    }


def test_definitions_load_and_validate() -> None:
    defs = build_definitions(load_settings())
    dg.Definitions.validate_loadable(defs)
    snap = graph_snapshot(defs)
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(snap, indent=2, sort_keys=True) + "\n")
    assert snap == json.loads(SNAPSHOT.read_text()), "asset graph changed: review, then UPDATE_SNAPSHOTS=1"


def test_every_asset_is_described_and_owned() -> None:
    defs = build_definitions(load_settings())
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_external:
            continue
        assert node.description, f"{key.to_user_string()} has no description"
        assert node.group_name and node.group_name != "default", f"{key.to_user_string()} has no group"


def test_dagster_cli_validates_the_workspace() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
