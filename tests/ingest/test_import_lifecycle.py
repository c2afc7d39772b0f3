"""The import job lifecycle and the bronze batch ledger, on real Delta tables, SQLite and Dagster.

pending -> processing -> landed (bronze committed) -> completed (silver merged) | failed; silver
merges only the batches it has not merged; dead runs are told from live ones by their worker's
pid; nothing is retried forever; `yarnnn import list/run` show the counts and the first reasons.
"""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner
from dagster._core.events import DagsterEvent, DagsterEventType

from control_plane.models import BronzeBatch
from tests.ingest.helpers import IngestHarness
from tests.ingest.mailgen import write_mbox
from yarn_assets.core.runs import HOST_TAG, host_tags, run_state
from yarn_assets.ingest import batches, bronze, catchup, import_jobs

STALE = dt.timedelta(minutes=10)


def _silver_meta(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    mat = result.asset_materializations_for_node("silver__platform_content")[0]
    return {k: v.value for k, v in mat.metadata.items()}


def test_an_import_merges_only_its_own_batch(ingest: IngestHarness, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    first = ingest.register("alice", write_mbox(tmp_path / "a.mbox", 300, now, tag="a"))
    one = _silver_meta(ingest.run("gmail"))
    assert (one["batches_merged"], one["bronze_objects"], one["new"]) == (1, 300, 300)
    assert ingest.job(first).status == "completed"

    second = ingest.register("alice", write_mbox(tmp_path / "b.mbox", 2, now, tag="b"))
    two = _silver_meta(ingest.run("gmail"))
    # the partition holds 302 objects; this import normalized and merged its 2
    assert (two["batches_in_partition"], two["batches_merged"], two["bronze_objects"], two["new"]) == (2, 1, 2, 2)
    assert two["batch_ids"] == [second]
    job = ingest.job(second)
    assert (job.status, job.attempts, job.result["objects"], job.result["items"]) == ("completed", 1, 2, 2)
    assert ingest.silver("gmail").height == 302


def test_an_import_whose_every_object_is_rejected_has_failed_and_says_why(ingest: IngestHarness,
                                                                          tmp_path: Path) -> None:
    notmail = tmp_path / "notes.eml"
    notmail.write_text("Hi,\nthese are notes, not a message.\n")
    good = ingest.register("alice", write_mbox(tmp_path / "ok.mbox", 3, dt.datetime.now(dt.UTC)))
    bad = ingest.register("alice", notmail, provider="eml")
    ingest.run("gmail")
    job = ingest.job(bad)
    assert job.status == "failed"
    assert job.error == "every object of notes.eml was rejected (1): not an RFC 5322 message: no header block"
    assert job.result["items"] == 0 and job.result["silver_rejected"] == 1
    assert ingest.job(good).status == "completed"

    from yarn_assets.cli import main

    out = CliRunner().invoke(main, ["import", "list"], catch_exceptions=False).output
    header, *rows = out.splitlines()
    assert header.split() == ["id", "user", "provider", "file", "partition", "status", "attempts", "landed", "items",
                              "rejected", "why"]
    failed = next(r for r in rows if r.startswith(bad[:8]))
    assert failed.split()[5:10] == ["failed", "1", "1", "0", "1"] and "not an RFC 5322 message" in failed
    completed = next(r for r in rows if r.startswith(good[:8]))
    assert completed.split()[5:10] == ["completed", "1", "3", "3", "0"]
    retried = CliRunner().invoke(main, ["import", "retry", bad[:8]], catch_exceptions=False)
    assert "pending again" in retried.output and ingest.job(bad).status == "pending"


def test_an_unparseable_calendar_fails_with_the_reason(ingest: IngestHarness, tmp_path: Path) -> None:
    broken = tmp_path / "broken.ics"
    broken.write_bytes(b"\x00\x01 not a calendar")
    job_id = ingest.register("alice", broken, provider="ics")
    ingest.run("calendar")
    job = ingest.job(job_id)
    assert job.status == "failed"
    assert job.error.startswith("every object of broken.ics was rejected (1): unparseable iCalendar file")
    assert (job.result["objects"], job.result["items"], job.result["silver_rejected"]) == (1, 0, 1)


def _started_run(instance: dg.DagsterInstance, pid: int, tags: dict[str, str]) -> str:
    """A run in STARTED state whose RUN_START event came from process ``pid``."""
    run = instance.create_run_for_job(dg.GraphDefinition("noop").to_job(), tags=tags)
    instance.handle_new_event(dg.EventLogEntry(
        error_info=None, level="DEBUG", user_message="", run_id=run.run_id, timestamp=dt.datetime.now().timestamp(),
        dagster_event=DagsterEvent(DagsterEventType.RUN_START.value, "noop", pid=pid),
    ))
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    return run.run_id


def test_a_run_is_dead_only_when_its_worker_is_gone_or_it_ended() -> None:
    now = dt.datetime.now(dt.UTC)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with dg.instance_for_test() as instance:
            live = _started_run(instance, worker.pid, host_tags())
            elsewhere = _started_run(instance, 1, {HOST_TAG: "another-host"})
            assert run_state(instance, live, since=now - dt.timedelta(days=1), stale_after=STALE, now=now)[0] == "alive"
            worker.kill()
            worker.wait()
            state, why = run_state(instance, live, since=now, stale_after=STALE, now=now)
            assert state == "dead" and f"process {worker.pid} is gone" in why
            # a pid this process does not own on another host is never judged from here
            assert run_state(instance, elsewhere, since=None, stale_after=STALE, now=now)[0] == "alive"
            # a run the instance does not know: presumed dead only after the stale delay
            assert run_state(instance, "nope", since=now, stale_after=STALE, now=now)[0] == "alive"
            assert run_state(instance, "nope", since=now - STALE, stale_after=STALE, now=now)[0] == "dead"
    finally:
        if worker.poll() is None:
            worker.kill()


def test_dead_claims_go_back_to_pending_until_the_attempt_cap(ingest: IngestHarness, tmp_path: Path) -> None:
    job_id = ingest.register("alice", write_mbox(tmp_path / "a.mbox", 2, dt.datetime.now(dt.UTC)))
    cp = ingest.resources["control_plane"]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11)
    for attempt in (1, 2):
        with cp.session() as s:
            assert import_jobs.claim(s, job_id, f"run-{attempt}", max_attempts=2)
        with cp.session() as s:  # the claiming run is unknown to the instance and idle for 11 minutes
            assert import_jobs.reset_dead(s, None, max_attempts=2, stale_after=STALE, now=later - STALE) == ([], [])
            reset, failed = import_jobs.reset_dead(s, None, max_attempts=2, stale_after=STALE, now=later)
        assert (reset, failed) == (([job_id], []) if attempt == 1 else ([], [job_id]))
    job = ingest.job(job_id)
    assert job.status == "failed" and job.attempts == 2
    assert job.error.startswith("gave up after 2 attempts: attempt 2 of 2 died (run run-2 unknown")
    with cp.session() as s:  # and nobody claims it again
        assert not import_jobs.claim(s, job_id, "run-3", max_attempts=2)


def test_a_retry_run_takes_over_the_jobs_of_the_run_it_re_executes(ingest: IngestHarness, tmp_path: Path) -> None:
    job_id = ingest.register("alice", write_mbox(tmp_path / "a.mbox", 2, dt.datetime.now(dt.UTC)))
    cp = ingest.resources["control_plane"]
    with cp.session() as s:
        assert import_jobs.claim(s, job_id, "run-1")
    with cp.session() as s:
        assert not import_jobs.claim(s, job_id, "run-x")  # a stranger cannot take it
        tags = {"dagster/parent_run_id": "run-1", "dagster/root_run_id": "run-1"}
        assert import_jobs.claim(s, job_id, "run-2", inherit_from=import_jobs.retry_parents(tags))
    job = ingest.job(job_id)
    assert (job.status, job.run_id, job.attempts) == ("processing", "run-2", 2)


def _landing_sync_batch(ingest: IngestHarness, run_id: str, rows: int) -> bronze.BatchInfo:
    now = dt.datetime.now(dt.UTC)
    batch = bronze.BatchInfo("alice", "gmail", now.date(), "sync", "gmail_api", f"sync-gmail-{run_id}", now,
                             run_id=run_id, connection_id="c1")
    with ingest.resources["control_plane"].session() as s:
        batches.record_landing(s, batch)
    objects = bronze.bronze_frame([], batch)
    if rows:
        from yarn_assets.ingest.objects import RawObject

        raws = [RawObject(object_type="email_message", external_id=f"m{i}", resource_id="INBOX", resource_name="Inbox",
                          raw=f"From: a@example.com\nSubject: s{i}\nMessage-ID: <m{i}@x>\n\nbody {i}\n".encode())
                for i in range(rows)]
        objects = bronze.bronze_frame(raws, batch)
        ingest.store.append(bronze.BRONZE_ITEMS, objects)
    return batch


def test_a_sync_batch_left_landing_by_a_dead_run_is_caught_up_then_failed_at_the_cap(ingest: IngestHarness) -> None:
    ingest.add_user("alice")
    cp = ingest.resources["control_plane"]
    batch = _landing_sync_batch(ingest, "sync-run-1", rows=3)
    now = dt.datetime.now(dt.UTC)
    with cp.session() as s:  # its run is still (presumed) alive: nothing to do yet
        plan = catchup.plan(s, None, max_requests=2, stale_after=STALE, now=now)
    assert plan.partitions == {} and plan.waiting == 1
    later = now + STALE + dt.timedelta(seconds=1)
    for attempt in (1, 2):
        with cp.session() as s:
            plan = catchup.plan(s, None, max_requests=2, stale_after=STALE, now=later)
        assert plan.partitions == {(batch.ingest_date.isoformat(), "gmail"): [batch.batch_id]}
        assert plan.attempts == {batch.batch_id: attempt} and plan.writers_died == (1 if attempt == 1 else 0)
    with cp.session() as s:
        plan = catchup.plan(s, None, max_requests=2, stale_after=STALE, now=later)
        row = s.get(BronzeBatch, batch.batch_id)
        assert plan.partitions == {} and row is not None and row.status == "failed"
        assert "still not merged into silver after 2 catch-up runs" in (row.error or "")


def test_the_catch_up_run_merges_what_a_dead_sync_committed(ingest: IngestHarness) -> None:
    ingest.add_user("alice")
    batch = _landing_sync_batch(ingest, "sync-run-2", rows=3)
    later = dt.datetime.now(dt.UTC) + STALE + dt.timedelta(seconds=1)
    with ingest.resources["control_plane"].session() as s:
        plan = catchup.plan(s, None, max_requests=3, stale_after=STALE, now=later)
    assert list(plan.partitions) == [(batch.ingest_date.isoformat(), "gmail")]
    meta = _silver_meta(ingest.run("gmail"))  # bronze+silver: no import pending, silver merges the batch
    assert (meta["batches_merged"], meta["new"]) == (1, 3)
    with ingest.resources["control_plane"].session() as s:
        row = s.get(BronzeBatch, batch.batch_id)
        assert row is not None and (row.status, row.merged_rows) == ("merged", 3)
        assert catchup.plan(s, None, max_requests=3, stale_after=STALE, now=later).partitions == {}


@pytest.mark.parametrize("rows", [0, 2])
def test_a_finished_sync_batch_needs_silver_only_if_it_holds_rows(ingest: IngestHarness, rows: int) -> None:
    ingest.add_user("alice")
    batch = _landing_sync_batch(ingest, f"sync-run-{rows}", rows=rows)
    cp = ingest.resources["control_plane"]
    with cp.session() as s:
        batches.record_landed(s, batch, rows=rows)
    with cp.session() as s:
        assert s.get(BronzeBatch, batch.batch_id).status == ("merged" if rows == 0 else "landed")


def test_silver_waits_for_an_import_still_being_landed(ingest: IngestHarness, tmp_path: Path) -> None:
    """A concurrent silver run must not merge a batch whose job has not reached ``landed`` yet (it
    would then never be completed): it leaves it to the run landing it."""
    job_id = ingest.register("alice", write_mbox(tmp_path / "a.mbox", 2, dt.datetime.now(dt.UTC)))
    cp = ingest.resources["control_plane"]
    with cp.session() as s:
        assert import_jobs.claim(s, job_id, "run-1")
    now = dt.datetime.now(dt.UTC)
    batch = bronze.BatchInfo("alice", "gmail", now.date(), "import", "mbox", job_id, now, run_id="run-1")
    from yarn_assets.ingest.objects import RawObject

    frame = bronze.bronze_frame([RawObject("email_message", "m1", b"From: a@x\n\nhi\n")], batch)
    bronze.write_batch(ingest.store, frame, batch)
    facts = batches.bronze_facts(ingest.store, "gmail", now.date())
    with cp.session() as s:
        assert list(facts) == [job_id] and batches.to_merge(s, "gmail", now.date().isoformat(), facts) == []
        import_jobs.mark_landed(s, job_id, "run-1", {"objects": 1, "rejected": 0})
        batches.record_landed(s, batch, rows=1)
    with cp.session() as s:
        assert batches.to_merge(s, "gmail", now.date().isoformat(), facts) == [job_id]


def test_import_run_reports_counts_and_nothing_to_do(ingest: IngestHarness, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YARNNN_EXECUTOR", "in_process")
    job_id = ingest.register("alice", write_mbox(tmp_path / "a.mbox", 4, dt.datetime.now(dt.UTC)))
    from yarn_assets.cli import main

    out = CliRunner().invoke(main, ["import", "run"], catch_exceptions=False).output
    assert f"{ingest.today}|gmail import: ok" in out
    row = next(line for line in out.splitlines() if line.startswith(job_id[:8]))
    assert row.split()[5:10] == ["completed", "1", "4", "4", "0"]
    assert "no pending import jobs" in CliRunner().invoke(main, ["import", "run"], catch_exceptions=False).output
    # the CLI's runs are recorded (in <home>/dagster_home unless DAGSTER_HOME says otherwise)
    assert (Path(os.environ["YARNNN_HOME"]) / "dagster_home" / "dagster.yaml").exists()
