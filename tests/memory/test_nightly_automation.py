"""The nightly memory chain is declarative automation: after 00:00 UTC the automation sensor asks for the
day that ended (silver chats from the chat app, and activity patterns of every user shard of the day), then,
once silver has landed, facts and summaries of every shard of that day; and an import that merges today's
chats into silver never starts memory extraction for a day still going on.

Evaluated with Dagster's own evaluator against the real definitions; times are relative to now.
"""

import datetime as dt

import dagster as dg
import pytest

from resources.settings import load_settings
from yarn_assets.definitions import build_definitions
from yarn_assets.memory.assets import day_keys

HEADS = {"silver/chat_sessions", "silver/chat_messages", "gold/activity_patterns"}
FOLLOWERS = {"gold/memory_facts", "gold/session_summaries"}
NIGHTLY = HEADS | FOLLOWERS
SILVER = (["silver", "chat_sessions"], ["silver", "chat_messages"])


def _requested(result: dg.EvaluateAutomationConditionsResult) -> dict[str, list[str]]:
    out = {}
    for r in result.results:
        if r.true_subset.size:
            out[r.key.to_user_string()] = sorted(r.true_subset.expensively_compute_partition_keys())
    return out


@pytest.mark.parametrize("shards", [1, 3])
def test_after_midnight_the_chain_runs_for_the_day_that_ended_once(shards, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YARNNN_USER_SHARDS", str(shards))
    defs = build_definitions(load_settings())
    instance = dg.DagsterInstance.ephemeral()
    midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    ended = (midnight - dt.timedelta(days=1)).date().isoformat()
    every_shard = sorted(day_keys(ended, shards))
    assert len(every_shard) == shards

    first = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                              evaluation_time=midnight - dt.timedelta(hours=2))
    assert not (NIGHTLY & set(_requested(first))), "nothing is due before the tick"

    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor,
                                             evaluation_time=midnight + dt.timedelta(minutes=5))
    memory = {k: v for k, v in _requested(tick).items() if k in NIGHTLY}
    # the followers cannot share a run with the day-partitioned silver: they wait for it to land
    assert memory == {"silver/chat_sessions": [ended], "silver/chat_messages": [ended],
                      "gold/activity_patterns": every_shard}

    for key in SILVER:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=ended))
    landed = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor,
                                               evaluation_time=midnight + dt.timedelta(minutes=6))
    assert {k: v for k, v in _requested(landed).items() if k in NIGHTLY} == {key: every_shard for key in FOLLOWERS}

    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=landed.cursor,
                                              evaluation_time=midnight + dt.timedelta(minutes=10))
    assert not (NIGHTLY & set(_requested(again))), "one request per tick"


def test_todays_import_into_silver_does_not_start_memory_of_today() -> None:
    defs = build_definitions(load_settings())
    instance = dg.DagsterInstance.ephemeral()
    noon = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=noon)
    today = noon.date().isoformat()
    for key in SILVER:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=today))
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor,
                                              evaluation_time=noon + dt.timedelta(minutes=1))
    assert not (NIGHTLY & set(_requested(after)))
