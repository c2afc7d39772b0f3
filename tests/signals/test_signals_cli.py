"""``yarnnn signals``: a day's backfill from the CLI, manual triggers with the cooldown."""

import datetime as dt

import polars as pl
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from control_plane import db
from control_plane.models import Deliverable, User
from tests.signals.seed import add_users, email, event, hour, land
from yarn_assets.cli import main
from yarn_assets.core.tables import ACTIVITY_LOG
from yarn_assets.signals.assets import hour_key
from yarn_assets.signals.tables import SIGNAL_SUMMARIES

NOW = dt.datetime.now(dt.UTC)
DAY = hour(NOW).replace(hour=0) - dt.timedelta(days=2)
ME = "alice@northwind.example"


def seed(store, url):  # type: ignore[no-untyped-def]
    add_users(url, ("alice", ME, "pro"), ("carol", "carol@free.example", "free"))
    t0 = DAY - dt.timedelta(hours=1)
    land(store, "alice", "calendar", [
        event("ev1", "Partner review", DAY + dt.timedelta(hours=14), [ME, "a@p.example", "b@p.example"]),
        event("ev2", "Offsite", DAY + dt.timedelta(hours=40), [ME, "c@q.example", "d@q.example"]),
        event("ev3", "1:1", DAY + dt.timedelta(hours=10), [ME, "bob@northwind.example"]),
    ], t0)
    land(store, "alice", "gmail", [
        email(f"m{i}", f"t{i}", f"Question {i}", "x@client.example", [ME], DAY - dt.timedelta(days=3, hours=i))
        for i in range(3)
    ], t0)


def deliverables(url):  # type: ignore[no-untyped-def]
    with db.session_scope(url) as s:
        return s.scalar(select(func.count()).select_from(Deliverable))


@pytest.mark.slow
def test_backfill_a_day_from_the_cli_then_rerun_an_hour(settings, store) -> None:
    url = settings.resolved_control_plane_url
    seed(store, url)
    runner = CliRunner()
    out = runner.invoke(main, ["signals", "backfill", "--from", hour_key(DAY),
                               "--to", hour_key(DAY + dt.timedelta(hours=23))])
    assert out.exit_code == 0, out.output
    assert "24 hour(s) processed" in out.output
    summaries = store.read(SIGNAL_SUMMARIES)
    assert summaries.height == 48 and set(summaries["user_id"]) == {"alice"}
    # ev1 prep (hour 0), ev2 prep once it is within 24 h (hour 16), one follow-up per quiet thread, one per pass
    with db.session_scope(url) as s:
        refs = sorted(s.scalars(select(Deliverable.signal_ref)).all())
    assert refs == ["event:ev1", "event:ev2", "thread:t0", "thread:t1", "thread:t2"]
    evaluated = summaries.filter(pl.col("status") == "evaluated").height
    assert evaluated < 48 // 2  # the wake gate skipped most hours
    n_events, n_deliverables = store.read(ACTIVITY_LOG).height, deliverables(url)
    again = runner.invoke(main, ["signals", "backfill", "--from", hour_key(DAY + dt.timedelta(hours=5)),
                                 "--to", hour_key(DAY + dt.timedelta(hours=5))])
    assert again.exit_code == 0, again.output
    assert store.read(ACTIVITY_LOG).height == n_events and deliverables(url) == n_deliverables
    assert store.read(SIGNAL_SUMMARIES).sort(["partition_hour", "pass"]).equals(
        summaries.sort(["partition_hour", "pass"]))


def test_manual_trigger_respects_the_cooldown_and_tiers(settings, store) -> None:
    url = settings.resolved_control_plane_url
    seed(store, url)
    runner = CliRunner()
    before = hour(dt.datetime.now(dt.UTC))
    first = runner.invoke(main, ["signals", "run", "--user", "alice", "--dry-run"])
    assert first.exit_code == 0, first.output
    assert "evaluated" in first.output
    manual = store.read(SIGNAL_SUMMARIES).filter(pl.col("trigger") == "manual")
    assert manual.height == 2 and manual["partition_hour"][0] in {before, hour(dt.datetime.now(dt.UTC))}
    second = runner.invoke(main, ["signals", "run", "--user", "alice"])
    assert second.exit_code != 0 and "try again in" in second.output
    free = runner.invoke(main, ["signals", "run", "--user", "carol"])
    assert free.exit_code != 0 and "free tier" in free.output
    unknown = runner.invoke(main, ["signals", "run", "--user", "nobody"])
    assert unknown.exit_code != 0 and "unknown user" in unknown.output
    with db.session_scope(url) as s:  # once the cooldown has passed, a trigger is accepted again
        s.get(User, "alice").signal_last_manual_trigger_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)
    later = runner.invoke(main, ["signals", "run", "--user", "alice", "--pass", "calendar_only", "--dry-run"])
    assert later.exit_code == 0, later.output
