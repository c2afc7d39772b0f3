"""Weekly digests: due at the user's local day and hour, their own counts, real SMTP, at most once a week."""

import datetime as dt

import dagster as dg
import pytest

from control_plane.models import Deliverable, DeliverableVersion, NotificationLog, User, UserContextHistory
from resources.mailer import MemoryMailer
from resources.registry import build_resources
from schedules.memory import weekly_digest_schedule
from yarn_assets.core.activity_log import ActivityEvent, read_events, write_events
from yarn_assets.memory import digest
from yarn_assets.memory.assets import digest_hours, weekly_digests
from yarn_assets.memory.tables import WEEKLY_DIGESTS

# Monday 2026-11-16 09:00 in Paris = 08:00 UTC; alice's digest: Monday (1, Sunday = 0) at 9
HOUR = dt.datetime(2026, 11, 16, 8, 0, tzinfo=dt.UTC)
KEY = digest_hours.get_partition_key_for_timestamp(HOUR.timestamp())


def _seed_week(cp, store) -> None:  # type: ignore[no-untyped-def]
    in_week = HOUR - dt.timedelta(days=2)
    with cp.session() as s:
        s.add(User(id="carol", email="carol@example.com", timezone="Europe/Berlin", digest_day=1, digest_hour=9))
        for user in ("alice", "bob"):
            d = Deliverable(id=f"d-{user}", user_id=user, title="Digest", deliverable_type="slack_channel_digest")
            s.add(d)
            s.flush()
            s.add(DeliverableVersion(deliverable_id=d.id, version_number=1, status="delivered", delivered_at=in_week))
            s.add(DeliverableVersion(deliverable_id=d.id, version_number=2, status="delivered",
                                     delivered_at=HOUR - dt.timedelta(days=9)))  # the week before: not counted
        s.add_all([
            UserContextHistory(id="h1", user_id="alice", key="fact:role", value="Head of Ops", source="user_stated",
                               confidence=1.0, status="current", valid_from=in_week),
            UserContextHistory(id="h2", user_id="alice", key="fact:team", value="Ops", source="conversation",
                               confidence=0.8, status="outranked", valid_from=in_week),  # lost: not new memory
            UserContextHistory(id="h3", user_id="bob", key="fact:role", value="PM", source="conversation",
                               confidence=0.8, status="current", valid_from=in_week),
        ])
    write_events(store, [
        ActivityEvent(user_id="alice", event_type="platform_synced", summary="Synced slack", idempotency_key="s1",
                      created_at=in_week),
        ActivityEvent(user_id="alice", event_type="import_completed", summary="Imported mail", idempotency_key="s2",
                      created_at=in_week),
        ActivityEvent(user_id="bob", event_type="platform_synced", summary="Synced gmail", idempotency_key="s3",
                      created_at=in_week),
    ])


@pytest.fixture
def smtp_resources(settings, smtp_server):  # type: ignore[no-untyped-def]
    host, port = "127.0.0.1", smtp_server.port
    res = build_resources(settings)
    res["memory_mailer"] = MemoryMailer(smtp_host=host, smtp_port=port, mail_from="yarnnn <noreply@yarnnn.test>",
                                        outbox_dir=str(settings.resolved_home / "outbox"))
    return res, smtp_server.inbox


@pytest.mark.parametrize(("user", "hour", "due"), [
    (User(timezone="Europe/Paris", digest_day=1, digest_hour=9, digest_enabled=True, status="active"), HOUR, True),
    (User(timezone="Europe/Paris", digest_day=1, digest_hour=9, digest_enabled=True, status="active"),
     HOUR + dt.timedelta(hours=1), False),
    (User(timezone="America/New_York", digest_day=1, digest_hour=9, digest_enabled=True, status="active"), HOUR,
     False),
    (User(timezone="America/New_York", digest_day=1, digest_hour=9, digest_enabled=True, status="active"),
     HOUR + dt.timedelta(hours=6), True),  # 09:00 in New York = 14:00 UTC
    (User(timezone="UTC", digest_day=0, digest_hour=18, digest_enabled=True, status="active"),
     dt.datetime(2026, 11, 15, 18, tzinfo=dt.UTC), True),  # Sunday is 0, as the original
    (User(timezone="Europe/Paris", digest_day=1, digest_hour=9, digest_enabled=False, status="active"), HOUR, False),
    (User(timezone="Europe/Paris", digest_day=1, digest_hour=9, digest_enabled=True, status="active",
          preferences={"email_weekly_digest": False}), HOUR, False),
])
def test_due_at_the_users_local_day_and_hour(user, hour, due) -> None:  # type: ignore[no-untyped-def]
    assert digest.is_due(user, hour) is due


def test_digest_goes_to_the_right_user_once_per_week(settings, cp, store, smtp_resources) -> None:  # type: ignore[no-untyped-def]
    res, inbox = smtp_resources
    _seed_week(cp, store)
    with cp.session() as s:
        s.get(User, "alice").digest_day, s.get(User, "alice").digest_hour = 1, 9
    first = dg.materialize([weekly_digests], partition_key=KEY, resources=res)
    assert [m.rcpt_tos for m in inbox] == [["alice@northwind.example"]]
    msg = inbox[0].message
    assert msg["Subject"] == "Your week with yarnnn: 1 delivered, 1 new memories, 2 syncs"
    body = msg.get_body(preferencelist=("plain",)).get_content()
    assert "Deliverables delivered: 1" in body and "Platform syncs and imports: 2" in body
    meta = first.asset_materializations_for_node("gold__weekly_digests")[0].metadata
    assert (meta["sent"].value, meta["skipped_empty"].value) == (1, 1)  # carol is due too, with an empty week
    rows = store.read(WEEKLY_DIGESTS).sort("user_id")
    assert rows.select("user_id", "iso_week", "status").rows() == [("alice", "2026-W47", "sent"),
                                                                   ("carol", "2026-W47", "skipped_empty")]
    assert rows["transport"][0] == "smtp" and rows["recipient"][0] == "alice@northwind.example"

    # the same hour again (a retry or backfill), and a later hour of the same ISO week: nothing is sent
    dg.materialize([weekly_digests], partition_key=KEY, resources=res)
    with cp.session() as s:
        s.get(User, "alice").digest_hour = 16
    later = HOUR + dt.timedelta(hours=7)  # 16:00 in Paris, 10:00 in New York (bob is due at 9)
    dg.materialize([weekly_digests], resources=res,
                   partition_key=digest_hours.get_partition_key_for_timestamp(later.timestamp()))
    assert len(inbox) == 1
    assert store.read(WEEKLY_DIGESTS).sort("user_id").equals(rows)
    with cp.session() as s:
        ledger = [(n.user_id, n.kind, n.period_key, n.status) for n in s.query(NotificationLog)]
    assert ledger == [("alice", "weekly_digest", "2026-W47", "sent")]
    assert read_events(store, event_types=["weekly_digest_sent"])["user_id"].to_list() == ["alice"]

    # the next week is a new period
    with cp.session() as s:
        s.get(User, "alice").digest_hour = 9
    write_events(store, [ActivityEvent(user_id="alice", event_type="platform_synced", summary="Synced",
                                       idempotency_key="s9", created_at=HOUR + dt.timedelta(days=3))])
    next_week = HOUR + dt.timedelta(days=7)
    dg.materialize([weekly_digests], resources=res,
                   partition_key=digest_hours.get_partition_key_for_timestamp(next_week.timestamp()))
    assert inbox[-1].message["Subject"] == "Your week with yarnnn: 0 delivered, 0 new memories, 1 syncs"


def test_a_failed_send_is_retried_and_then_sent_once(settings, cp, store, smtp_resources) -> None:  # type: ignore[no-untyped-def]
    res, inbox = smtp_resources
    _seed_week(cp, store)
    broken = dict(res)
    broken["memory_mailer"] = MemoryMailer(smtp_host="127.0.0.1", smtp_port=1, outbox_dir="/nonexistent",
                                           timeout_seconds=2)
    failed = dg.materialize([weekly_digests], partition_key=KEY, resources=broken, raise_on_error=False)
    assert not failed.success
    with cp.session() as s:
        assert s.query(NotificationLog).one().status == "failed"
    dg.materialize([weekly_digests], partition_key=KEY, resources=res)
    assert [m.rcpt_tos for m in inbox] == [["alice@northwind.example"]]
    with cp.session() as s:
        assert s.query(NotificationLog).one().status == "sent"


def test_outbox_is_the_default_transport(settings, cp, store) -> None:  # type: ignore[no-untyped-def]
    _seed_week(cp, store)
    dg.materialize([weekly_digests], partition_key=KEY, resources=build_resources(settings))
    files = list((settings.resolved_home / "outbox" / "mail" / "alice").glob("*.eml"))
    assert len(files) == 1 and b"To: alice@northwind.example" in files[0].read_bytes()
    assert not (settings.resolved_home / "outbox" / "mail" / "bob").exists()


def test_schedule_requests_a_run_only_when_someone_is_due(settings, cp) -> None:  # type: ignore[no-untyped-def]
    res = build_resources(settings)
    # (contexts are entered: a schedule context installs the instance's state storage until it exits)
    with dg.instance_for_test() as instance:
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=HOUR,
                                       resources={"control_plane": res["control_plane"]}) as ctx:
            request = weekly_digest_schedule(ctx)
        assert isinstance(request, dg.RunRequest) and request.partition_key == KEY
        assert KEY in digest_hours.get_partition_keys(current_time=HOUR)  # the hour exists at its own tick
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=HOUR + dt.timedelta(hours=2),
                                       resources={"control_plane": res["control_plane"]}) as ctx:
            skipped = weekly_digest_schedule(ctx)
        assert isinstance(skipped, dg.SkipReason) and "no user" in skipped.skip_message


@pytest.mark.postgres
def test_the_weekly_claim_is_exclusive_on_postgresql(pg_url) -> None:  # type: ignore[no-untyped-def]
    from control_plane import db

    db.upgrade(pg_url)
    with db.session_scope(pg_url) as s:
        s.add(User(id="alice", email="alice@example.com"))
    with db.session_scope(pg_url) as s:
        user = s.get(User, "alice")
        first = digest.claim(s, user, "2026-W47", "subject")
        assert first is not None
        assert digest.claim(s, user, "2026-W47", "subject") is None  # the savepoint keeps the session usable
        digest.settle(s, first, ok=False, error="smtp down")
    with db.session_scope(pg_url) as s:
        user = s.get(User, "alice")
        retry = digest.claim(s, user, "2026-W47", "subject")  # a failed send may be retried, once
        assert retry == first
        digest.settle(s, retry, ok=True, message_id="<m@x>")
        assert digest.claim(s, user, "2026-W47", "subject") is None
        assert digest.claim(s, user, "2026-W48", "subject") is not None
