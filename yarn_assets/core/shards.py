"""User shards: the dimension that spreads one hour (night, round) of per-user work over workers.

A user's shard is ``sha256(user_id) mod N``: stable for a user whatever other users are added or
removed (no rebalancing when users sign up), uniform enough to give shards of similar size, and
computable anywhere without a lookup table. ``N`` is the ``user_shards`` setting; changing it
re-keys the partitions (runs of the old keys stay in history), so pick it once per deployment,
above the number of workers you expect (16 for a handful of workers, 64 for dozens).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import dagster as dg

SHARD_DIMENSION = "shard"
DEFAULT_SHARDS = 1
MAX_SHARDS = 256


def shard_keys(n: int) -> list[str]:
    """``"0"`` .. ``"n-1"`` (shard ``"0"`` exists for every ``n``: the key of a single-shard setup)."""
    if not 1 <= n <= MAX_SHARDS:
        raise ValueError(f"user shards must be between 1 and {MAX_SHARDS}, got {n}")
    return [str(i) for i in range(n)]


def shard_of(user_id: str, n: int) -> str:
    """The shard key of ``user_id`` among ``n`` shards."""
    index = int.from_bytes(hashlib.sha256(user_id.encode("utf-8")).digest()[:8], "big") % n
    return shard_keys(n)[index]


def in_shard(user_ids: Iterable[str], shard: str, n: int) -> list[str]:
    return [u for u in user_ids if shard_of(u, n) == shard]


def shard_partitions(n: int) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(shard_keys(n))


def shard_in_key(partition_key: object) -> str:
    """The shard of an (hour|shard) or (date|shard) partition key: a ``MultiPartitionKey`` in-process, the
    plain string ``"2026-11-23-13:00|0"`` in a run launched from the queue (dimensions in name order: the
    time dimension, then shard)."""
    if isinstance(partition_key, dg.MultiPartitionKey):
        return partition_key.keys_by_dimension[SHARD_DIMENSION]
    return str(partition_key).rsplit("|", 1)[-1]


def time_in_key(partition_key: object) -> str:
    """The time part of a (time|shard) partition key (``"2026-11-23"`` of ``"2026-11-23|0"``); a key
    without a shard is returned whole."""
    return str(partition_key).split("|", 1)[0]
