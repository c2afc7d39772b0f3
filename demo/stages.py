"""The demo's stages, in order: each domain contributes one (ingest first)."""

from __future__ import annotations

from collections.abc import Callable

from demo.context import DemoContext
from demo.ingest_stage import ingest_stage
from demo.memory_stage import memory_stage

Stage = Callable[[DemoContext], None]

STAGES: list[Stage] = [ingest_stage, memory_stage]
