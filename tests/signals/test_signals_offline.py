"""Hourly signal processing end to end in offline mode, on silver seeded through the real write path."""

import datetime as dt

import dagster as dg
import polars as pl
import pytest
from sqlalchemy import func, select

from control_plane import db
from control_plane.models import Deliverable, DeliverableRunRequest, LlmUsage, SignalHistory
from io_managers.predicates import Eq
from schedules.signals import signals_hourly_schedule
from tests.signals.seed import add_deliverable, add_users, email, event, hour, land, page, slack
from yarn_assets.core.activity_log import read_events
from yarn_assets.core.tables import ACTIVITY_LOG
from yarn_assets.signals.assets import hour_key, signal_passes, signals_job
from yarn_assets.signals.tables import SIGNAL_ACTIONS, SIGNAL_SUMMARIES, signal_hours

NOW = dt.datetime.now(dt.UTC)
H = hour(NOW) - dt.timedelta(hours=30)  # a closed hour: as_of = its end, fully deterministic
AS_OF = H + dt.timedelta(hours=1)
ALICE = "alice@northwind.example"


def seed(store, url):  # type: ignore[no-untyped-def]
    add_users(url, ("alice", ALICE, "pro"), ("bob", "bob@contoso.example", "starter"),
              ("carol", "carol@free.example", "free"))
    fetched = AS_OF - dt.timedelta(hours=2)
    land(store, "alice", "calendar", [
        event("ev-ext", "Q4 roadmap review", AS_OF + dt.timedelta(hours=5),
              [ALICE, "dana@partner.example", "sam@partner.example", "room-1@resource.calendar.google.com"]),
        event("ev-int", "Team sync", AS_OF + dt.timedelta(hours=3),
              [ALICE, "bob@northwind.example", "eve@northwind.example"]),
        event("ev-one", "Vendor call", AS_OF + dt.timedelta(hours=6), [ALICE, "vendor@supplier.example"]),
        event("ev-later", "Board prep", AS_OF + dt.timedelta(hours=30), [ALICE, "x@a.example", "y@b.example"]),
        event("ev-past", "Yesterday's review", AS_OF - dt.timedelta(hours=20), [ALICE, "x@a.example", "y@b.example"]),
    ], fetched)
    land(store, "alice", "gmail", [
        email("m1", "t-quiet", "Contract renewal", "dana@partner.example", [ALICE], AS_OF - dt.timedelta(days=4)),
        email("m2", "t-answered", "Invoice 2291", "sam@partner.example", [ALICE], AS_OF - dt.timedelta(days=5)),
        email("m3", "t-answered", "Re: Invoice 2291", ALICE, ["sam@partner.example"], AS_OF - dt.timedelta(days=4)),
        email("m4", "t-robot", "Your receipt", "noreply@shop.example", [ALICE], AS_OF - dt.timedelta(days=6)),
        email("m5", "t-fresh", "Lunch?", "zoe@partner.example", [ALICE], AS_OF - dt.timedelta(days=1)),
    ], fetched)
    land(store, "alice", "slack", [
        slack("1700000001.000100", "C-launch", "Launch moved to Friday", "Dana", AS_OF - dt.timedelta(hours=3)),
        slack("1700000002.000100", "C-launch", "Press kit is ready", "Sam", AS_OF - dt.timedelta(hours=2)),
    ], AS_OF - dt.timedelta(minutes=30))
    land(store, "bob", "notion", [page("p1", "Roadmap", "Draft roadmap", AS_OF - dt.timedelta(days=2))], fetched)
    land(store, "carol", "gmail", [
        email(f"c{i}", f"ct{i}", f"Hello {i}", "x@y.example", ["carol@free.example"], AS_OF - dt.timedelta(days=4))
        for i in range(5)
    ], fetched)
    digest = add_deliverable(
        url, "alice", title="Launch channel digest", deliverable_type="slack_channel_digest", trigger_type="event",
        sources=[{"type": "integration_import", "provider": "slack", "source": "C-launch"}],
        last_run_at=AS_OF - dt.timedelta(hours=5), next_run_at=NOW + dt.timedelta(days=3),
    )
    return digest


def materialize(resources, key, **config):  # type: ignore[no-untyped-def]
    run_config = {"ops": {"signal_passes": {"config": config}}} if config else None
    result = dg.materialize([signal_passes], partition_key=key, resources=resources, run_config=run_config)
    assert result.success
    return result


def table(store, spec, hour_start):  # type: ignore[no-untyped-def]
    return store.read(spec, Eq("partition_hour", hour_start)).sort(list(spec.keys))


def counts(url):  # type: ignore[no-untyped-def]
    with db.session_scope(url) as s:
        return {
            "deliverables": s.scalar(select(func.count()).select_from(Deliverable)),
            "requests": s.scalar(select(func.count()).select_from(DeliverableRunRequest)),
            "history": s.scalar(select(func.count()).select_from(SignalHistory)),
        }


def test_offline_signals_fire_each_deterministic_kind_and_rerun_changes_nothing(settings, store, resources) -> None:
    url = settings.resolved_control_plane_url
    digest_id = seed(store, url)
    key = hour_key(H)
    started = dt.datetime.now(dt.UTC)
    result = materialize(resources, key)

    summaries = table(store, SIGNAL_SUMMARIES, H)
    assert sorted(zip(summaries["user_id"], summaries["pass"], strict=True)) == [
        ("alice", "calendar_only"), ("alice", "non_calendar"), ("bob", "calendar_only"), ("bob", "non_calendar")]
    def row(user, pass_name):  # type: ignore[no-untyped-def]
        return summaries.filter((pl.col("user_id") == user) & (pl.col("pass") == pass_name)).row(0, named=True)

    alice_cal = row("alice", "calendar_only")
    assert alice_cal["calendar_items"] == 5 and alice_cal["status"] == "evaluated"
    assert alice_cal["engine"] == "offline-rules" and alice_cal["offline"] is True
    assert "CALENDAR (upcoming 7 days, 5 events)" in alice_cal["content_summary"]
    assert "[event:ev-ext] Q4 roadmap review" in alice_cal["content_summary"]
    alice_rest = row("alice", "non_calendar")
    assert (alice_rest["gmail_items"], alice_rest["slack_items"]) == (5, 2)
    assert set(summaries.filter(pl.col("user_id") == "bob")["skip_reason"]) == {"too_few_items"}

    actions = table(store, SIGNAL_ACTIONS, H)
    executed = actions.filter(pl.col("disposition") == "executed")
    kinds = sorted(zip(executed["action_type"], executed["signal_type"], executed["signal_ref"], strict=True))
    assert kinds == [
        ("create_signal_emergent", "meeting_prep", "event:ev-ext"),
        ("create_signal_emergent", "silence_alert", "thread:t-quiet"),
        ("trigger_existing", "trigger_existing", None),
    ]
    with db.session_scope(url) as s:
        prep = s.scalars(select(Deliverable).where(Deliverable.deliverable_type == "meeting_prep")).one()
        assert (prep.user_id, prep.origin, prep.trigger_type, prep.signal_ref) == (
            "alice", "signal_emergent", "manual", "event:ev-ext")
        assert prep.type_config["classification"] == {
            "binding": "platform_bound", "primary_platform": "calendar", "freshness_requirement_hours": 1}
        assert prep.sources == [{"type": "integration_import", "provider": "calendar", "source": "primary",
                                 "resource_id": "primary", "resource_name": "Calendar"}]
        assert prep.next_run_at is not None and started <= prep.next_run_at <= dt.datetime.now(dt.UTC)
        follow = s.scalars(select(Deliverable).where(Deliverable.signal_ref == "thread:t-quiet")).one()
        assert follow.deliverable_type == "custom" and "Contract renewal" in follow.title
        assert follow.type_config["classification"]["binding"] == "cross_platform"
        requests = s.scalars(select(DeliverableRunRequest)).all()
        assert {r.deliverable_id for r in requests} == {prep.id, follow.id}
        assert all(r.status == "pending" and r.reason == "signal_emergent" for r in requests)
        digest = s.get(Deliverable, digest_id)
        assert digest.next_run_at <= dt.datetime.now(dt.UTC)  # triggered: due now
    events = read_events(store, user_ids=["alice", "bob", "carol"], event_types=["signal_processed"])
    assert len(events) == 4 and "carol" not in set(events["user_id"])  # free tier excluded
    with db.session_scope(url) as s:
        usage = s.scalars(select(LlmUsage)).all()
    assert len(usage) == 2 and {u.model for u in usage} == {"offline-rules"} and all(u.cost_usd == 0 for u in usage)
    assert {u.partition_key for u in usage} == {key} and {u.run_id for u in usage} == {result.run_id}
    meta = result.asset_materializations_for_node("signal_passes")
    by_key = {m.asset_key.to_user_string(): m.metadata for m in meta}
    assert by_key["gold/signal_actions"]["deliverables_created"].value == 2
    assert by_key["gold/signal_summaries"]["llm_offline_calls"].value == 2
    assert by_key["gold/signal_summaries"]["skipped_too_few_items"].value == 2
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"one_row_per_user_pass": True, "no_failed_passes": True,
                      "no_duplicate_action_per_dedup_key": True, "one_deliverable_per_signal": True,
                      "deliverables_belong_to_user": True}

    # re-running the hour: no second deliverable, same events, identical tables
    before = counts(url)
    events_before = store.read(ACTIVITY_LOG).height
    rerun = materialize(resources, key)
    assert counts(url) == before
    assert store.read(ACTIVITY_LOG).height == events_before
    assert table(store, SIGNAL_SUMMARIES, H).equals(summaries)
    assert table(store, SIGNAL_ACTIONS, H).equals(actions)
    rerun_meta = {m.asset_key.to_user_string(): m.metadata
                  for m in rerun.asset_materializations_for_node("signal_passes")}
    assert rerun_meta["gold/signal_actions"]["replayed"].value == 3


def test_backfill_over_hours_dedups_and_wake_gate_skips(settings, store, resources) -> None:
    url = settings.resolved_control_plane_url
    seed(store, url)
    hours = [H - dt.timedelta(hours=n) for n in (1, 0)] + [H + dt.timedelta(hours=n) for n in (1, 2)]
    for h in hours:
        materialize(resources, hour_key(h))
    with db.session_scope(url) as s:
        creates = s.scalars(select(Deliverable).where(Deliverable.origin == "signal_emergent")).all()
    assert sorted(d.signal_ref for d in creates) == ["event:ev-ext", "thread:t-quiet"]
    summaries = store.read(SIGNAL_SUMMARIES).filter(pl.col("user_id") == "alice").sort(["partition_hour", "pass"])
    # H-1: the slack batch was not fetched yet and calendar/gmail were; later hours see nothing new
    statuses = [(r["partition_hour"] - H, r["pass"], r["status"], r["skip_reason"])
                for r in summaries.iter_rows(named=True)]
    assert statuses[:2] == [(-dt.timedelta(hours=1), "calendar_only", "evaluated", None),
                            (-dt.timedelta(hours=1), "non_calendar", "evaluated", None)]
    assert statuses[2][2:] == ("skipped", "wake_gate")  # calendar: same events, same candidates
    assert statuses[3][2:] == ("evaluated", None)  # slack arrived in H
    assert [s[2:] for s in statuses[4:]] == [("skipped", "wake_gate")] * 4
    n_events = store.read(ACTIVITY_LOG).height
    n_deliverables = counts(url)["deliverables"]
    materialize(resources, hour_key(H))  # re-run one hour of the backfill
    assert store.read(ACTIVITY_LOG).height == n_events and counts(url)["deliverables"] == n_deliverables
    # a manual pass of a later hour ignores the gate but the history dedup still holds
    materialize(resources, hour_key(H + dt.timedelta(hours=3)), user_ids=["alice"], ignore_wake_gate=True,
                trigger="manual")
    manual = store.read(SIGNAL_ACTIONS).filter(pl.col("trigger") == "manual")
    creates = manual.filter(pl.col("action_type") == "create_signal_emergent")
    assert set(creates["disposition"]) == {"dropped"}
    assert all(r.startswith("history_dedup") for r in creates["reason"])
    assert counts(url)["deliverables"] == n_deliverables


def test_dry_run_records_without_executing(settings, store, resources) -> None:
    url = settings.resolved_control_plane_url
    seed(store, url)
    materialize(resources, hour_key(H), execute=False, passes=["calendar_only"])
    actions = store.read(SIGNAL_ACTIONS)
    assert set(actions["disposition"]) == {"proposed"} and set(actions["pass"]) == {"calendar_only"}
    assert counts(url) == {"deliverables": 1, "requests": 0, "history": 0}


def test_schedule_requests_the_hour_that_just_ended() -> None:
    tick = dt.datetime(2026, 11, 23, 14, 2, tzinfo=dt.UTC)
    req = signals_hourly_schedule(dg.build_schedule_context(scheduled_execution_time=tick))
    assert req.partition_key == "2026-11-23-13:00" and req.run_key == "signals:2026-11-23-13:00"
    assert signals_job.name == "signals_job"
    assert signal_hours.get_partition_keys_in_range(
        dg.PartitionKeyRange("2026-11-23-00:00", "2026-11-23-23:00"))[-1] == "2026-11-23-23:00"


@pytest.mark.parametrize("pass_name", ["nope"])
def test_unknown_pass_is_a_clear_error(settings, resources, pass_name) -> None:  # type: ignore[no-untyped-def]
    add_users(settings.resolved_control_plane_url, ("alice", ALICE, "pro"))
    result = dg.materialize([signal_passes], partition_key=hour_key(H), resources=resources, raise_on_error=False,
                            run_config={"ops": {"signal_passes": {"config": {"passes": [pass_name]}}}})
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "unknown signal pass(es) ['nope']" in str(failure.event_specific_data.error.cause or
                                                     failure.event_specific_data.error)


@pytest.mark.postgres
def test_signal_execution_on_postgresql(pg_url, store) -> None:  # type: ignore[no-untyped-def]
    from resources.registry import build_resources
    from resources.settings import load_settings

    resources = build_resources(load_settings(control_plane_url=pg_url))
    seed(store, pg_url)
    materialize(resources, hour_key(H))
    first = counts(pg_url)
    assert first == {"deliverables": 3, "requests": 2, "history": 3}
    materialize(resources, hour_key(H))
    assert counts(pg_url) == first
    with db.session_scope(pg_url) as s:
        prep = s.scalars(select(Deliverable).where(Deliverable.deliverable_type == "meeting_prep")).one()
        assert prep.next_run_at.tzinfo is not None and prep.type_config["signal"]["signal_ref"] == "event:ev-ext"
