"""What a deliverable run needs (store, control plane, LLM, search, delivery, embeddings), and how the
CLI and tests build it outside Dagster the way the definitions build it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from io_managers.delta_store import DeltaStore
from resources.search import WebSearch
from yarn_assets.deliverables.delivery.resource import DeliveryChannels

SessionFactory = Callable[[], AbstractContextManager[Session]]


@dataclass
class RunResources:
    store: DeltaStore
    session_factory: SessionFactory
    llm: Any  # resources.llm.LLM
    search: WebSearch
    delivery: DeliveryChannels
    log: Any = None
    embedder: Any = None  # resources.embeddings.Embedder: semantic context from the people domain


@contextmanager
def run_resources_from_settings(settings: Any) -> Iterator[RunResources]:
    """The asset's resources outside Dagster (CLI, tests): built as the definitions build them, with
    EnvVar secrets resolved (and torn down) the way a run does it."""
    from contextlib import ExitStack

    from resources.registry import build_resources

    r = build_resources(settings)
    with ExitStack() as stack:
        ready = {k: stack.enter_context(r[k].process_config_and_initialize_cm())
                 for k in ("warehouse", "control_plane", "llm", "search", "delivery", "embeddings")}
        cp = ready["control_plane"]
        yield RunResources(store=ready["warehouse"].store, session_factory=cp.session,
                           llm=ready["llm"], search=ready["search"], delivery=ready["delivery"],
                           embedder=ready["embeddings"].embedder())
