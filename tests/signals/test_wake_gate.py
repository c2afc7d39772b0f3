"""The wake gate on a small workspace over one day: LLM calls per user-day with the gate on and off.

Run with ``-s`` to see the numbers (they are also asserted against the gate's own rule).
"""

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, select

from control_plane.models import LlmUsage
from io_managers.delta_store import DeltaStore
from resources.control_plane import ControlPlane
from resources.llm import LLM, LLMScope
from tests.signals.seed import add_users, email, event, hour, land, page, slack
from yarn_assets.signals.assets import hour_key
from yarn_assets.signals.processing import HourSpec, Policy, process_hour, run_hour
from yarn_assets.signals.tables import SIGNAL_SUMMARIES

DAY = hour(dt.datetime.now(dt.UTC)).replace(hour=0) - dt.timedelta(days=3)
USERS = {"busy": "busy@acme.example", "steady": "steady@acme.example", "quiet": "quiet@acme.example"}


def seed_day(store: DeltaStore, url: str) -> None:
    add_users(url, *[(u, e, "pro") for u, e in USERS.items()])
    t0 = DAY - dt.timedelta(hours=1)
    for user, me in USERS.items():
        land(store, user, "calendar", [
            event(f"{user}-e{i}", f"Meeting {i}", DAY + dt.timedelta(hours=20 + 3 * i),
                  [me, f"a{i}@client.example", f"b{i}@client.example"] if i % 2 == 0 else [me])
            for i in range(4)
        ], t0)
        land(store, user, "gmail", [
            email(f"{user}-m{i}", f"{user}-t{i}", f"Topic {i}", f"c{i}@client.example", [me],
                  DAY - dt.timedelta(days=2, hours=12 - 6 * i)) for i in range(5)
        ], t0)
    for h in range(8, 19):  # the busy user's Slack channel talks every working hour
        at = DAY + dt.timedelta(hours=h, minutes=10)
        land(store, "busy", "slack", [slack(f"{h}.000", "C-eng", f"update {h}", "Kim", at)], at)
    for h in (9, 13, 17):
        at = DAY + dt.timedelta(hours=h, minutes=20)
        land(store, "busy", "gmail", [email(f"busy-n{h}", f"busy-n{h}", f"New {h}", "c9@client.example",
                                            [USERS["busy"]], at)], at)
    for h in (10, 15):
        at = DAY + dt.timedelta(hours=h, minutes=5)
        land(store, "steady", "gmail", [email(f"steady-n{h}", f"steady-n{h}", f"Ping {h}", "c8@client.example",
                                              [USERS["steady"]], at)], at)
    at = DAY + dt.timedelta(hours=11, minutes=30)
    land(store, "steady", "notion", [page("steady-p", "Plan", "Q1 plan draft", at)], at)


def simulate(root: Path, wake_gate: bool) -> tuple[int, pl.DataFrame]:
    store = DeltaStore(str(root / "warehouse"))
    url = f"sqlite:///{root / 'cp.db'}"
    seed_day(store, url)
    cp = ControlPlane(url=url)
    llm = LLM(control_plane=cp, offline=True)
    policy = Policy(wake_gate=wake_gate)
    now = dt.datetime.now(dt.UTC)
    summaries = []
    for h in range(24):
        start = DAY + dt.timedelta(hours=h)
        spec = HourSpec.for_window(hour_key(start), start, start + dt.timedelta(hours=1), now)
        kwargs = {"store": store, "session_factory": cp.session, "llm": llm, "spec": spec, "policy": policy,
                  "scope": LLMScope(run_id=f"sim-{h}", partition_key=spec.partition_key)}
        if wake_gate:  # the gate reads the previous passes back from the table
            run_hour(**kwargs)
        else:  # without the gate nothing is read back: skip the writes to keep the test fast
            summaries.append(process_hour(**kwargs).summary_frame())
    with cp.session() as s:
        calls = int(s.scalar(select(func.count()).select_from(LlmUsage)) or 0)
    table = store.read(SIGNAL_SUMMARIES) if wake_gate else pl.concat(summaries)
    return calls, table.sort(["user_id", "pass", "partition_hour"])


@pytest.mark.slow
def test_wake_gate_cuts_calls_and_only_skips_unchanged_passes(tmp_path: Path) -> None:
    off_calls, off = simulate(tmp_path / "off", wake_gate=False)
    on_calls, on = simulate(tmp_path / "on", wake_gate=True)
    users = len(USERS)
    print(f"\nLLM calls per user-day: wake gate off {off_calls / users:.1f}, on {on_calls / users:.1f} "
          f"({1 - on_calls / off_calls:.0%} fewer)")
    for user in USERS:
        per = on.filter(pl.col("user_id") == user)
        print(f"  {user:<7} on: {per.filter(pl.col('status') == 'evaluated').height} evaluated, "
              f"{per.filter(pl.col('skip_reason') == 'wake_gate').height} skipped by the gate")
    assert off_calls == users * 2 * 24  # every pass has >= 3 items
    assert on_calls < off_calls / 2
    assert set(off["skip_reason"].drop_nulls()) == set()
    # the gate skips exactly the passes whose fingerprint equals the last evaluated one (nothing deferred)
    for (_user, _pass), rows in on.group_by(["user_id", "pass"]):
        last = None
        for r in rows.sort("partition_hour").iter_rows(named=True):
            if r["status"] == "evaluated":
                assert last is None or r["fingerprint"] != last["fingerprint"] or last["deferred"] > 0
                last = r
            else:
                assert r["skip_reason"] == "wake_gate"
                assert last is not None and r["fingerprint"] == last["fingerprint"] and last["deferred"] == 0
    # the busy user's Slack hours each wake the non-calendar pass
    busy = on.filter((pl.col("user_id") == "busy") & (pl.col("pass") == "non_calendar")
                     & (pl.col("status") == "evaluated"))
    woken = {(r - DAY).total_seconds() / 3600 for r in busy["partition_hour"]}
    assert set(range(8, 19)) <= woken
