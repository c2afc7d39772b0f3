"""The wake gate decided before loading (yarn_assets.signals.wake): what a quiet hour loads.

Four users after one evaluated hour H: ``calm`` (content, nothing time-sensitive, nothing
deferred), ``deferring`` (three quiet email threads: one follow-up per pass, the others deferred and
executed in the following hours from the decision that deferred them),
``fresh`` (a Slack message lands during H+1) and ``meeting`` (a client meeting enters the 24 h
horizon during H+1). The loaders are spied on (the real ones run) to see whose inputs H+1 loads.
"""

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from io_managers.delta_store import DeltaStore
from resources.control_plane import ControlPlane
from resources.llm import LLM, LLMScope
from tests.signals.seed import add_users, email, event, hour, land, page, slack
from yarn_assets.signals import processing
from yarn_assets.signals.assets import hour_key
from yarn_assets.signals.processing import HourSpec, Policy, run_hour
from yarn_assets.signals.tables import SIGNAL_ACTIONS, SIGNAL_SUMMARIES

H = hour(dt.datetime.now(dt.UTC)) - dt.timedelta(days=2)
USERS = {u: f"{u}@acme.example" for u in ("calm", "deferring", "fresh", "meeting")}


def seed(store: DeltaStore, url: str) -> None:
    add_users(url, *[(u, e, "pro") for u, e in USERS.items()])
    t0 = H - dt.timedelta(hours=3)
    for user, me in USERS.items():
        land(store, user, "calendar", [  # internal meetings: never a candidate, never a wake time
            event(f"{user}-e{i}", f"Standup {i}", H + dt.timedelta(days=1 + i), [me, "kim@acme.example"])
            for i in range(3)
        ], t0)
        land(store, user, "notion", [page(f"{user}-p{i}", f"Plan {i}", "Draft.", t0) for i in range(3)], t0)
    land(store, "deferring", "gmail", [
        email(f"d-m{i}", f"d-t{i}", f"Contract {i}", f"c{i}@client.example", [USERS["deferring"]],
              H - dt.timedelta(days=5, hours=i)) for i in range(3)
    ], t0)
    land(store, "meeting", "calendar", [  # starts 24.5 h after H+1's start: enters the horizon in H+1
        event("m-x", "Client review", H + dt.timedelta(hours=25, minutes=30),
              [USERS["meeting"], "a@client.example", "b@client.example"])
    ], t0)


def run(store: DeltaStore, cp: ControlPlane, start: dt.datetime) -> Any:
    spec = HourSpec.for_window(hour_key(start), start, start + dt.timedelta(hours=1), dt.datetime.now(dt.UTC))
    result, _ = run_hour(store=store, session_factory=cp.session, llm=LLM(control_plane=cp, offline=True), spec=spec,
                         policy=Policy(), scope=LLMScope(run_id=f"t-{start:%H}", partition_key=spec.partition_key))
    return result


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Record whose silver and expensive inputs the hour loads (the real loaders still run)."""
    calls: dict[str, list[str]] = {"silver": [], "complete": [], "screening_only": []}
    real_silver, real_complete = processing.load_silver, processing.complete_inputs

    def load_silver(store: DeltaStore, user_ids: list[str], as_of: dt.datetime) -> Any:
        calls["silver"] += list(user_ids)
        return real_silver(store, user_ids, as_of)

    def complete_inputs(session_factory: Any, store: DeltaStore, inputs: dict[str, Any], as_of: dt.datetime,
                        **kw: Any) -> None:
        calls["complete"] += list(inputs)
        calls["screening_only"] += list(kw.get("screening_only") or [])
        real_complete(session_factory, store, inputs, as_of, **kw)

    monkeypatch.setattr(processing, "load_silver", load_silver)
    monkeypatch.setattr(processing, "complete_inputs", complete_inputs)
    return calls


def statuses(store: DeltaStore, start: dt.datetime) -> dict[tuple[str, str], tuple[str, str | None]]:
    rows = store.read(SIGNAL_SUMMARIES).filter(pl.col("partition_hour") == start)
    return {(r["user_id"], r["pass"]): (r["status"], r["skip_reason"]) for r in rows.iter_rows(named=True)}


def test_quiet_hour_loads_only_users_with_new_content_due_deferrals_or_due_candidates(
        tmp_path: Path, spied: dict[str, list[str]]) -> None:
    store, url = DeltaStore(str(tmp_path / "warehouse")), f"sqlite:///{tmp_path / 'cp.db'}"
    seed(store, url)
    cp = ControlPlane(url=url)
    run(store, cp, H)
    busy = store.read(SIGNAL_SUMMARIES).filter(pl.col("partition_hour") == H)
    assert set(busy["status"]) == {"evaluated"}
    non_calendar = busy.filter(pl.col("pass") == "non_calendar")
    deferred = {r["user_id"]: r["deferred"] for r in non_calendar.iter_rows(named=True)}
    assert deferred == {"calm": 0, "deferring": 2, "fresh": 0, "meeting": 0}
    wake_at = busy.filter((pl.col("user_id") == "meeting") & (pl.col("pass") == "calendar_only"))["wake_at"].item()
    assert wake_at == H + dt.timedelta(hours=1, minutes=30)

    nxt = H + dt.timedelta(hours=1)
    land(store, "fresh", "slack", [slack("1.0", "C-eng", "shipping today", "Kim", nxt + dt.timedelta(minutes=10))],
         nxt + dt.timedelta(minutes=10))
    spied["silver"].clear()
    spied["complete"].clear()
    run(store, cp, nxt)

    # content loaded for the fresh and the meeting user only; the deferring user's history and
    # deliverables are loaded to re-screen its deferred follow-ups; nothing at all for the calm user
    assert sorted(spied["silver"]) == ["fresh", "meeting"]
    assert sorted(spied["complete"]) == ["deferring", "fresh", "meeting"]
    assert spied["screening_only"] == ["deferring"]  # history and deliverables; no memory or activity
    got = statuses(store, nxt)
    assert got[("calm", "calendar_only")] == got[("calm", "non_calendar")] == ("skipped", "wake_gate")
    assert got[("deferring", "non_calendar")] == ("evaluated", None)  # re-evaluated: a deferred action was due
    assert got[("deferring", "calendar_only")] == ("skipped", "wake_gate")
    assert got[("fresh", "non_calendar")] == ("evaluated", None)
    assert got[("fresh", "calendar_only")] == ("skipped", "wake_gate")  # new Slack content wakes only its pass
    assert got[("meeting", "calendar_only")] == ("evaluated", None)  # the client meeting came within 24 h
    rows = store.read(SIGNAL_SUMMARIES).filter(pl.col("partition_hour") == nxt)
    calm = rows.filter(pl.col("user_id") == "calm").sort("pass")
    before = busy.filter(pl.col("user_id") == "calm").sort("pass")
    # a pass slept before loading carries what it was compared against, and says nothing is new
    assert calm["fingerprint"].to_list() == before["fingerprint"].to_list()
    assert calm["items_total"].to_list() == before["items_total"].to_list()
    assert calm["new_items"].to_list() == [0, 0] and calm["content_summary"].null_count() == 2
    # the deferring user's next follow-up was executed in H+1, from the decision that deferred it
    follow = rows.filter((pl.col("user_id") == "deferring") & (pl.col("pass") == "non_calendar"))
    assert follow["deliverables_created"].item() == 1 and follow["deferred"].item() == 1
    assert follow["engine"].item() == "deferred" and follow["llm_calls"].item() == 0
    created = store.read(SIGNAL_ACTIONS).filter((pl.col("user_id") == "deferring")
                                                & (pl.col("disposition") == "executed"))
    assert created["signal_ref"].n_unique() == 2  # two different threads, one per hour
    assert all(json.loads(c)["thread_id"] for c in created["signal_context"])

    # H+2: a new email for the deferring user: a full evaluation (content loaded, rules asked again)
    later = nxt + dt.timedelta(hours=1)
    land(store, "deferring", "gmail", [email("d-new", "d-t9", "Invoice", "z@client.example", [USERS["deferring"]],
                                             later + dt.timedelta(minutes=5))], later + dt.timedelta(minutes=5))
    spied["silver"].clear()
    run(store, cp, later)
    assert spied["silver"] == ["deferring"]
    last = store.read(SIGNAL_SUMMARIES).filter((pl.col("partition_hour") == later) & (pl.col("user_id") == "deferring")
                                               & (pl.col("pass") == "non_calendar"))
    assert last["status"].item() == "evaluated" and last["engine"].item() != "deferred"
    assert last["new_items"].item() == 1 and last["content_summary"].item() is not None
    # the third old thread, deferred twice, is executed now (the first two are in the history)
    assert store.read(SIGNAL_ACTIONS).filter((pl.col("user_id") == "deferring")
                                             & (pl.col("disposition") == "executed"))["signal_ref"].n_unique() == 3


def test_changed_selection_wakes_the_pass_and_the_gate_off_loads_everyone(
        tmp_path: Path, spied: dict[str, list[str]]) -> None:
    from control_plane import db
    from control_plane.models import PlatformConnection

    store, url = DeltaStore(str(tmp_path / "warehouse")), f"sqlite:///{tmp_path / 'cp.db'}"
    seed(store, url)
    cp = ControlPlane(url=url)
    run(store, cp, H)
    with db.session_scope(url) as s:  # calm narrows its Notion pages: the non-calendar pass must look again
        s.add(PlatformConnection(user_id="calm", platform="notion", status="active",
                                 selected_sources=[{"id": "calm-p0"}, {"id": "calm-p1"}, {"id": "calm-p2"}]))
    spied["silver"].clear()
    nxt = H + dt.timedelta(hours=1)
    run(store, cp, nxt)
    assert "calm" in spied["silver"]
    got = statuses(store, nxt)
    assert got[("calm", "calendar_only")] == ("skipped", "wake_gate")
    row = store.read(SIGNAL_SUMMARIES).filter((pl.col("partition_hour") == nxt) & (pl.col("user_id") == "calm")
                                              & (pl.col("pass") == "non_calendar"))
    assert row["content_summary"].item() is not None  # extracted again (then the fingerprint gate decides)

    spied["silver"].clear()
    later = nxt + dt.timedelta(hours=1)
    spec = HourSpec.for_window(hour_key(later), later, later + dt.timedelta(hours=1), dt.datetime.now(dt.UTC))
    processing.process_hour(store=store, session_factory=cp.session, llm=LLM(control_plane=cp, offline=True),
                            spec=spec, policy=Policy(wake_gate=False), scope=LLMScope(run_id="off"))
    assert sorted(spied["silver"]) == sorted(USERS)
