"""One source of truth for a version's status: every change goes through ``run_state.settle_version``,
the control plane and the gold row agree after every kind of run (delivered, empty, failed, resumed),
and a run opens few control-plane sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane import db
from control_plane.models import DeliverableRunRequest, DeliverableVersion
from io_managers.predicates import Eq
from tests.deliverables.helpers import NOW, create, run_resources, sample_content, seed_silver
from yarn_assets.deliverables import run as deliverable_run
from yarn_assets.deliverables import run_state, service
from yarn_assets.deliverables.run import run_deliverable
from yarn_assets.deliverables.tables import DELIVERABLE_VERSIONS

Status = tuple[int, str, str | None]


class CountingSessions:
    """Wraps a session factory and counts the sessions opened through it."""

    def __init__(self, factory: Any) -> None:
        self.factory, self.opened = factory, 0

    @contextmanager
    def __call__(self) -> Iterator[Session]:
        self.opened += 1
        with self.factory() as session:
            yield session


def both_stores(url: str, store: Any, did: str) -> tuple[list[Status], list[Status]]:
    """(version, status, delivery_status) of every version, from the control plane and from gold."""
    with db.session_scope(url) as s:
        cp = [(v.version_number, v.status, v.delivery_status) for v in s.scalars(
            select(DeliverableVersion).where(DeliverableVersion.deliverable_id == did)
            .order_by(DeliverableVersion.version_number))]
    gold = store.read(DELIVERABLE_VERSIONS, Eq("deliverable_id", did)).sort("version_number")
    return cp, list(zip(gold["version_number"], gold["status"], gold["delivery_status"], strict=True))


def test_a_delivered_run_opens_few_sessions_and_both_stores_agree(workspace, store) -> None:
    seed_silver(store, sample_content("alice"))
    did = create(workspace, "alice", "gmail_inbox_brief")  # default destination: the file outbox
    with db.session_scope(workspace) as s:
        service.request_generation(s, did, "manual")
    res = run_resources()
    counting = CountingSessions(res.session_factory)
    res.session_factory = counting  # type: ignore[assignment]
    out = run_deliverable(res, deliverable_id=did, run_id="r1", now=NOW)
    assert out.status == "delivered", out.reason
    # start, allocate, context reads, checkpoint, end + delivery's three (resolving the user's default
    # routes, then the outbox before and after the send); the step-by-step writes made it 17
    assert counting.opened <= 8
    assert both_stores(workspace, store, did) == ([(1, "delivered", "delivered")],) * 2
    with db.session_scope(workspace) as s:
        v = s.scalars(select(DeliverableVersion)).one()
        assert [st["name"] for st in v.steps] == [st.name for st in out.steps] and v.steps[-1]["name"] == "deliver"
        assert v.generated_at is not None and v.delivered_at is not None and v.error is None
        assert service.find(s, did).last_run_at == NOW
        assert [(r.status, r.run_id) for r in s.scalars(select(DeliverableRunRequest))] == [("completed", "r1")]


def test_empty_and_failed_runs_agree_and_a_resumed_run_recovers(workspace, store, monkeypatch) -> None:
    empty = create(workspace, "bob", "status_report")  # bob has no content
    assert run_deliverable(run_resources(), deliverable_id=empty, run_id="e1", now=NOW).status == "empty"
    assert both_stores(workspace, store, empty) == ([(1, "empty", "skipped")],) * 2

    seed_silver(store, sample_content("alice"))
    did = create(workspace, "alice", "status_report")

    real, log_down = deliverable_run.write_events, [True]

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if log_down[0]:
            raise RuntimeError("activity log unavailable (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(deliverable_run, "write_events", flaky)
    with pytest.raises(RuntimeError, match="injected"):
        run_deliverable(run_resources(), deliverable_id=did, run_id="r1", now=NOW)
    # sent, then a later step failed: failed in both stores, with the error, until a resume settles it
    assert both_stores(workspace, store, did) == ([(1, "failed", "delivered")],) * 2
    with db.session_scope(workspace) as s:
        assert "injected" in (s.scalars(select(DeliverableVersion).where(
            DeliverableVersion.deliverable_id == did)).one().error or "")
    log_down[0] = False
    again = run_deliverable(run_resources(), deliverable_id=did, run_id="r2", root_run_id="r1", now=NOW)
    assert again.resumed and again.status == "delivered" and again.delivery is not None and again.delivery.duplicate
    assert both_stores(workspace, store, did) == ([(1, "delivered", "delivered")],) * 2


def test_settle_version_refuses_what_the_lifecycle_does_not_allow(workspace) -> None:
    did = create(workspace, "alice", "status_report")
    version, _ = run_state.allocate_version(lambda: db.session_scope(workspace), deliverable_id=did, run_id="r1",
                                            root_run_id="r1", trigger="manual", strategy="cross_platform")
    with db.session_scope(workspace) as s:
        state = run_state.settle_version(s, version.id, "empty", generated=True, delivery_status="skipped",
                                         delivery_error="nothing")
        assert (state.status, state.delivery_status) == ("empty", "skipped") and state.generated_at is not None
        with pytest.raises(run_state.InvalidTransition, match="empty -> delivered"):
            run_state.settle_version(s, version.id, "delivered")
        with pytest.raises(run_state.InvalidTransition, match="unknown version status"):
            run_state.settle_version(s, version.id, "sent")
        assert run_state.settle_version(s, version.id, "failed", error="boom").status == "failed"
        assert s.get(DeliverableVersion, version.id).error == "boom"
