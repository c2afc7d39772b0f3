"""Recipes domain definitions: every recipe component of the dg defs folder (``yarn_assets/defs``)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg


def definitions() -> dg.Definitions:
    import yarn_assets.defs as defs_module

    project_root = Path(defs_module.__file__).resolve().parents[2]
    tree = dg.ComponentTree.from_module(defs_module=defs_module, project_root=project_root)
    return tree.build_defs()
