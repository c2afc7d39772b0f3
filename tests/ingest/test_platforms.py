"""The platform registry is consistent, and every ingest asset carries a code version that tells the truth."""

from __future__ import annotations

import dataclasses

import pytest

from yarn_assets.ingest import platforms, sources
from yarn_assets.ingest.normalize import context_only


def test_every_platform_declares_consistent_parts() -> None:
    seen_providers: list[str] = []
    seen_types: list[str] = []
    for p in platforms.all_platforms():
        assert p is platforms.get(p.name) and p.label
        seen_providers += p.providers
        seen_types += [*p.normalizers, *p.frame_normalizers.keys() - p.normalizers.keys()]
        assert not p.context_types & (p.normalizers.keys() | p.frame_normalizers.keys())
        for provider, reader in p.readers.items():
            assert callable(reader) and platforms.reader(provider) is reader
        if p.api is not None:
            assert p.api.credentials and set(p.api.tier_limits) == {"free", "starter", "pro"}
            assert "*" in p.api.rates or p.api.rates  # a budget for every method it calls
    assert len(seen_providers) == len(set(seen_providers)), "a provider name belongs to one platform"
    assert len(seen_types) == len(set(seen_types)), "an object type belongs to one platform"
    assert context_only() == frozenset().union(*(p.context_types for p in platforms.all_platforms()))
    with pytest.raises(ValueError, match="unknown platform"):
        platforms.get("myspace")


def test_live_platforms_are_the_partitioned_ones() -> None:
    from yarn_assets.core.tables import PLATFORMS

    assert sorted(p.name for p in platforms.live()) == sorted(PLATFORMS)


def test_a_normalizer_bump_changes_silvers_code_version(monkeypatch: pytest.MonkeyPatch) -> None:
    from yarn_assets.ingest.assets import bronze_imported_items, silver_platform_content
    from yarn_assets.ingest.sync.asset import bronze_synced_items

    for asset in (bronze_imported_items, bronze_synced_items, silver_platform_content):
        assert all(asset.code_versions_by_key.values()), asset.key
    before = sources.silver_code_version()
    assert silver_platform_content.code_versions_by_key[sources.SILVER_CONTENT] == before
    slack = platforms.get("slack")
    monkeypatch.setattr(platforms, "get", lambda name, _get=platforms.get: (
        dataclasses.replace(slack, normalize_version="2") if name == "slack" else _get(name)))
    assert sources.silver_code_version() != before and "slack=2" in sources.silver_code_version()
