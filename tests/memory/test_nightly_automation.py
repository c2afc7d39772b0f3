"""The nightly memory chain is declarative automation: after 00:00 UTC the automation sensor asks for the
day that ended (silver chats from the chat app, then facts, summaries, patterns) in one go, and an
import that merges today's chats into silver never starts memory extraction for a day still going on.

Evaluated with Dagster's own evaluator against the real definitions; times are relative to now.
"""

import datetime as dt

import dagster as dg

from resources.settings import load_settings
from yarn_assets.definitions import build_definitions

NIGHTLY = {"silver/chat_sessions", "silver/chat_messages", "gold/memory_facts", "gold/session_summaries",
           "gold/activity_patterns"}


def _requested(result: dg.EvaluateAutomationConditionsResult) -> dict[str, list[str]]:
    out = {}
    for r in result.results:
        if r.true_subset.size:
            out[r.key.to_user_string()] = sorted(r.true_subset.expensively_compute_partition_keys())
    return out


def test_after_midnight_the_chain_runs_for_the_day_that_ended_once() -> None:
    defs = build_definitions(load_settings())
    instance = dg.DagsterInstance.ephemeral()
    midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    ended = (midnight - dt.timedelta(days=1)).date().isoformat()

    first = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                              evaluation_time=midnight - dt.timedelta(hours=2))
    assert not (NIGHTLY & set(_requested(first))), "nothing is due before the tick"

    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor,
                                             evaluation_time=midnight + dt.timedelta(minutes=5))
    memory = {k: v for k, v in _requested(tick).items() if k in NIGHTLY}
    assert memory == dict.fromkeys(NIGHTLY, [ended])

    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor,
                                              evaluation_time=midnight + dt.timedelta(minutes=10))
    assert not (NIGHTLY & set(_requested(again))), "one request per tick"


def test_todays_import_into_silver_does_not_start_memory_of_today() -> None:
    defs = build_definitions(load_settings())
    instance = dg.DagsterInstance.ephemeral()
    noon = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=noon)
    today = noon.date().isoformat()
    for key in (["silver", "chat_sessions"], ["silver", "chat_messages"]):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=today))
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor,
                                              evaluation_time=noon + dt.timedelta(minutes=1))
    assert not (NIGHTLY & set(_requested(after)))
