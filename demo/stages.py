"""The demo's stages, in order: each domain contributes one (ingest first)."""

from __future__ import annotations

from collections.abc import Callable

from demo.context import DemoContext
from demo.deliverables_stage import deliverables_stage
from demo.ingest_stage import ingest_stage
from demo.memory_stage import memory_stage
from demo.ops_stage import ops_stage
from demo.people_stage import people_stage
from demo.signals_stage import signals_stage

Stage = Callable[[DemoContext], None]

#: memory first (working memory feeds signals and deliverables), then people (contacts and vectors feed
#: signals and deliverables), then signals, then deliverables; ops last: housekeeping and checks.
STAGES: list[Stage] = [ingest_stage, memory_stage, people_stage, signals_stage, deliverables_stage, ops_stage]
