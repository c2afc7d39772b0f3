"""Nightly memory on the sample week: junk-filter outcome, tokens per user-night, time per night.

    python -m benchmarks.memory_nightly

Runs in a temporary yarnnn home with the offline LLM (so it needs no key and is repeatable). Token
numbers are what the online path would send for the same nights: the exact request parameters
(``LLM.build_request``: system + tool schema + user turns) at four characters per token, the
estimate the LLM resource's budget check uses, and the offline answers' JSON as the output size.
The system prompt and tool schema are the cached prefix (identical for every call of a task).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="yarnnn_memory_bench_"))
    os.environ["YARNNN_HOME"] = str(home)
    os.environ["YARNNN_LLM_MODE"] = "offline"
    import polars as pl

    from control_plane import db
    from control_plane.models import User
    from demo.sample_chats import generate_chats
    from resources.registry import build_resources
    from resources.settings import load_settings
    from yarn_assets.definitions import build_definitions
    from yarn_assets.ingest import import_jobs
    from yarn_assets.memory import nightly
    from yarn_assets.memory.assets import day_keys
    from yarn_assets.memory.extraction import FactExtraction, SessionSummary
    from yarn_assets.memory.tables import FACT_CANDIDATES

    settings = load_settings()
    now = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    zones = {"alice": "Europe/Paris", "bob": "America/New_York"}
    url = settings.resolved_control_plane_url
    db.upgrade(url)
    with db.session_scope(url) as s:
        for uid, tz in zones.items():
            s.add(User(id=uid, email=f"{uid}@example.com", timezone=tz, created_at=now - dt.timedelta(days=60)))
    with db.session_scope(url) as s:
        for uid, path in generate_chats(home / "ws", now, zones).items():
            import_jobs.register_import(s, user_id=uid, path=path, provider="chat_jsonl",
                                        archive_root=home / "imports", partition_date=now.date())
    defs = build_definitions(settings)
    defs.resolve_job_def("chat_ingest_job").execute_in_process(partition_key=now.date().isoformat())
    job = defs.resolve_job_def("memory_nightly_job")
    days = [(now.date() - dt.timedelta(days=n)).isoformat() for n in range(7, 0, -1)]
    seconds = []
    for day in days:  # a night is every user shard of the day
        started = time.perf_counter()
        for key in day_keys(day, settings.user_shards):
            assert job.execute_in_process(partition_key=key).success
        seconds.append(time.perf_counter() - started)

    llm = build_resources(settings)["llm"]
    store = build_resources(settings)["warehouse"].store
    per_user_night: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"prefix": 0, "input": 0,
                                                                                 "output": 0, "calls": 0})
    for day in days:
        for minimum, system_prompt, output, offline in (
            (nightly.MIN_USER_MESSAGES_FACTS, nightly.facts_request_parts, FactExtraction, nightly.offline_facts_for),
            (nightly.MIN_USER_MESSAGES_SUMMARY, nightly.summary_request_parts, SessionSummary,
             nightly.offline_summary_for),
        ):
            for s in nightly.due_sessions(store, day, minimum):
                system, prompt = system_prompt(s)
                params = llm.build_request(task="memory", system=system, prompt=prompt, max_tokens=1024, output=output)
                prefix = len(json.dumps(params["tools"])) + len(system)
                tally = per_user_night[(s.user_id, day)]
                tally["prefix"] += prefix // 4
                tally["input"] += len(json.dumps(params["messages"])) // 4
                tally["output"] += len(offline(s).model_dump_json()) // 4
                tally["calls"] += 1
    facts = store.read(FACT_CANDIDATES)
    decisions = dict(facts.group_by("decision").len().iter_rows())
    reasons = dict(facts.filter(pl.col("decision") == "rejected").group_by("reason").len().sort("reason").iter_rows())
    totals = [t["prefix"] + t["input"] + t["output"] for t in per_user_night.values()]
    print(f"sample week: {len(days)} nights, {len(zones)} users, {len(per_user_night)} user-nights with due sessions")
    print(f"facts: {facts.height} candidates -> kept {decisions.get('kept', 0)}, "
          f"outranked {decisions.get('outranked', 0)}, rejected {decisions.get('rejected', 0)} {reasons}")
    print(f"tokens per user-night (est., 4 chars/token): mean {statistics.mean(totals):.0f}, max {max(totals)}; "
          f"of which cached prefix mean {statistics.mean(t['prefix'] for t in per_user_night.values()):.0f}, "
          f"user turns mean {statistics.mean(t['input'] for t in per_user_night.values()):.0f}, "
          f"output mean {statistics.mean(t['output'] for t in per_user_night.values()):.0f}, "
          f"calls mean {statistics.mean(t['calls'] for t in per_user_night.values()):.1f}")
    print(f"time per night (offline, 2 users): median {statistics.median(seconds):.2f}s, max {max(seconds):.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
