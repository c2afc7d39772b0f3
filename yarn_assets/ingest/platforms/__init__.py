"""Ingest platforms: one package per platform, one registry (the layout of dlt's verified sources).

A platform package ``platforms/<name>/`` holds all the product knows about one platform:

* ``export.py``    export-file readers, ``read(path, limits) -> Iterator[RawObject | Reject]``;
* ``api.py``       the live-API sync: a ``Fetcher`` over a client of the official SDK;
* ``normalize.py`` bronze objects -> ``ContentItem`` (silver rows) or ``Reject``;

(plus small extra modules when one of those would grow past ~400 lines), and declares what it
provides in its ``__init__.py`` as ``PLATFORM = Platform(...)``. The shared machinery (readers and
normalizer dispatch, bronze, silver merge, import jobs, batches, the sync runner, rate budgets,
connections) reaches a platform only through :func:`get` / :func:`all_platforms`, never by name.

Adding a platform: write the package, add its name to :data:`NAMES`; ``tests/ingest/test_platforms.py``
checks that every declared provider, object type and credential is consistent.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resources.input_limits import InputLimits
    from yarn_assets.ingest.api_calls import ApiCaller, Verdict
    from yarn_assets.ingest.api_clients import ClientConfig
    from yarn_assets.ingest.budget import Rate
    from yarn_assets.ingest.fetch import Fetcher, Resource
    from yarn_assets.ingest.normalize import FrameNormalizer, Normalizer
    from yarn_assets.ingest.objects import RawObject, Reject

    Reader = Callable[[Path, InputLimits | None], Iterator[RawObject | Reject]]

#: Registry order is detection order (the first platform that claims an export wins).
NAMES: tuple[str, ...] = ("slack", "gmail", "calendar", "notion", "chat")

BRONZE_ITEMS_TABLE = "bronze/platform_items"
SILVER_CONTENT_TABLE = "silver/platform_content"


def _first(resources: list[Resource]) -> list[Resource]:
    return list(resources)


def _never(resource_id: str) -> bool:
    return False


@dataclass(frozen=True)
class LiveApi:
    """What a platform's live sync provides to the shared runner, budget, retries and connections."""

    provider: str  #: bronze ``provider`` of synced objects, e.g. ``slack_api``
    credentials: tuple[str, ...]  #: keys the stored (encrypted) credential JSON must hold
    client: Callable[[ApiCaller, dict[str, Any], ClientConfig, str], Any]  #: (caller, creds, config, label)
    fetcher: Callable[[Any, Mapping[str, Any] | None], Fetcher]  #: (client, limit overrides)
    classify: Callable[[BaseException], Verdict]  #: SDK error -> rate_limited | server | auth | not_found ...
    rates: Mapping[str, Rate]  #: the provider's request limits per API method ("*" = any other)
    probe: Callable[[Any], tuple[str, str | None]]  #: one cheap call: (detail, account label or None)
    tier_limits: Mapping[str, int | None]  #: sources auto-selected per user tier (None = all)
    resource_type: str  #: type of a selected source id the landscape does not list
    rank: Callable[[list[Resource]], list[Resource]] = _first  #: auto-selection order (best first)
    resource_id: Callable[[str], str] = str.strip  #: canonical id of an operator-typed source id
    never_select: Callable[[str], bool] = _never  #: sources no selection may include without force


@dataclass(frozen=True)
class Platform:
    """The protocol every platform package implements (as ``PLATFORM`` in its ``__init__.py``)."""

    name: str  #: the ``platform`` partition / column value
    label: str  #: how messages name it ("Google Calendar")
    readers: Mapping[str, Reader] = field(default_factory=dict)  #: export provider -> reader
    #: (file name, member names of a zip or folder or None for a plain file, is a folder) -> provider or None
    detect: Callable[[str, list[str] | None, bool], str | None] | None = None
    normalizers: Mapping[str, Normalizer] = field(default_factory=dict)  #: object type -> per-object normalizer
    frame_normalizers: Mapping[str, FrameNormalizer] = field(default_factory=dict)  #: object type -> vectorized
    context_types: frozenset[str] = frozenset()  #: object types read by normalizers as context, never rows
    api: LiveApi | None = None  #: the live-API sync, when the platform has one
    bronze_table: str = BRONZE_ITEMS_TABLE  #: where its raw objects land
    silver_tables: tuple[str, ...] = (SILVER_CONTENT_TABLE,)  #: what its normalized rows feed
    #: bump when a normalizer's output changes: silver's code_version includes it, so silver shows stale
    normalize_version: str = "1"

    @property
    def providers(self) -> tuple[str, ...]:
        """Every source name its bronze rows carry: export providers, then the API's."""
        return (*self.readers, *((self.api.provider,) if self.api else ()))


def fetcher_of(fetcher: Callable[[Any, Any], Fetcher], limits: Callable[..., Any]
               ) -> Callable[[Any, Mapping[str, Any] | None], Fetcher]:
    """``LiveApi.fetcher`` for a fetcher class taking (client, limits dataclass): overrides by field name."""
    def make(client: Any, overrides: Mapping[str, Any] | None) -> Fetcher:
        return fetcher(client, limits(**(overrides or {})))

    return make


@cache
def get(name: str) -> Platform:
    """The platform ``name`` (``ValueError`` naming the known ones otherwise)."""
    if name not in NAMES:
        raise ValueError(f"unknown platform {name!r}; known: {', '.join(NAMES)}")
    platform: Platform = importlib.import_module(f"{__name__}.{name}").PLATFORM
    return platform


def all_platforms() -> list[Platform]:
    return [get(n) for n in NAMES]


def live() -> list[Platform]:
    """The platforms with a live-API sync."""
    return [p for p in all_platforms() if p.api is not None]


def api_of(name: str) -> LiveApi:
    api = get(name).api
    if api is None:
        raise ValueError(f"platform {name!r} has no live API sync")
    return api


def provider_platform() -> dict[str, str]:
    """Export provider -> the platform whose partitions its objects land in."""
    return {provider: p.name for p in all_platforms() for provider in p.readers}


def reader(provider: str) -> Reader:
    for p in all_platforms():
        if provider in p.readers:
            return p.readers[provider]
    raise ValueError(f"unknown import provider {provider!r}; known: {sorted(provider_platform())}")


def normalizer_tables() -> tuple[dict[str, Normalizer], dict[str, FrameNormalizer], frozenset[str]]:
    """(per-object normalizers, vectorized normalizers, context-only object types) of every platform."""
    per_object: dict[str, Normalizer] = {}
    per_frame: dict[str, FrameNormalizer] = {}
    context: set[str] = set()
    for p in all_platforms():
        per_object.update(p.normalizers)
        per_frame.update(p.frame_normalizers)
        context |= p.context_types
    return per_object, per_frame, frozenset(context)
