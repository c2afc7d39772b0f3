"""Test-only: SIGKILL this process at a named point of the import path (``YARNNN_TEST_CRASH_AT``),
or hold it at a barrier with other processes (``YARNNN_TEST_CLAIM_BARRIER``).

A crash test puts this folder on ``PYTHONPATH`` of the subprocess it will see die, and names the
point; the product function at that point is wrapped so the process kills itself with SIGKILL
(no cleanup, no ``finally``, exactly as ``kill -9`` or the OOM killer would). With
``YARNNN_TEST_CRASH_MARKER`` set to a path, the kill fires once: the marker is created just
before it, and any later process (the retry) runs normally. With ``YARNNN_TEST_CRASH_MODE=hang``
the process stops at the point instead, for a test that kills it (and its host) from outside. Points:

* ``read``          mid-read: after half of the export's objects were read, before bronze
* ``bronze_commit`` right after the bronze batch committed, before the job is marked landed
* ``merge``         mid-merge: silver normalized the batches, the Delta merge has not committed
* ``merge_commit``  right after silver's merge committed, before events and the ledger
* ``events``        right after the import's activity events were written, before the ledger

``YARNNN_TEST_CLAIM_BARRIER=<dir>:<n>`` makes the first import-job claim of the process wait
until ``n`` processes have reached theirs, so concurrent imports really race for the same jobs.

Never on any path outside the tests.
"""

import os
import sys

# Only the first sitecustomize on the path runs: keep the suite's clock shift (tests/fakes/shifted_clock).
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "shifted_clock"))
import yarnnn_testclock

yarnnn_testclock.apply_from_env()

_point = os.environ.get("YARNNN_TEST_CRASH_AT")


def _die() -> None:
    import signal

    marker = os.environ.get("YARNNN_TEST_CRASH_MARKER")
    if marker:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return  # already fired once
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
    if os.environ.get("YARNNN_TEST_CRASH_MODE") == "hang":  # stay stuck here until killed from outside
        import time

        time.sleep(3600)
    os.kill(os.getpid(), signal.SIGKILL)


def _install(point: str) -> None:
    from io_managers import delta_store
    from yarn_assets.core.tables import PLATFORM_CONTENT
    from yarn_assets.ingest import assets, bronze, landing, silver_asset

    if point == "read":
        original_reader_for = landing.reader_for

        def reader_for(provider):  # type: ignore[no-untyped-def]
            read = original_reader_for(provider)

            def dying(path, *args, **kwargs):  # type: ignore[no-untyped-def]
                items = list(read(path, *args, **kwargs))  # readers take the input limits too
                yield from items[: len(items) // 2]
                _die()
                yield from items[len(items) // 2:]

            return dying

        assets.reader_for = landing.reader_for = reader_for  # platform imports and chat imports
    elif point == "bronze_commit":
        original_write_batch = bronze.write_batch

        def write_batch(store, objects, batch):  # type: ignore[no-untyped-def]
            out = original_write_batch(store, objects, batch)
            if objects.height:
                _die()
            return out

        bronze.write_batch = write_batch
    elif point in ("merge", "merge_commit"):
        original_merge = delta_store.DeltaStore.merge

        def merge(self, spec, df, *args, **kwargs):  # type: ignore[no-untyped-def]
            if spec.name == PLATFORM_CONTENT.name and point == "merge" and df.height:
                _die()
            out = original_merge(self, spec, df, *args, **kwargs)
            if spec.name == PLATFORM_CONTENT.name and point == "merge_commit" and df.height:
                _die()
            return out

        delta_store.DeltaStore.merge = merge
    elif point == "events":
        original_write_events = silver_asset.write_events  # import_completed is written by silver

        def write_events(store, events, run_id=None):  # type: ignore[no-untyped-def]
            out = original_write_events(store, events, run_id=run_id)
            if any(e.event_type == "import_completed" for e in events):
                _die()
            return out

        assets.write_events = silver_asset.write_events = write_events
    else:
        raise ValueError(f"unknown crash point {point!r}")


def _install_barrier(spec: str) -> None:
    import time
    from pathlib import Path

    from yarn_assets.ingest import import_jobs

    folder, _, count = spec.rpartition(":")
    original_claim = import_jobs.claim
    waited = []

    def claim(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not waited:
            waited.append(True)
            (Path(folder) / str(os.getpid())).touch()
            deadline = time.monotonic() + 120
            while len(list(Path(folder).iterdir())) < int(count) and time.monotonic() < deadline:
                time.sleep(0.01)
        return original_claim(*args, **kwargs)

    import_jobs.claim = claim


if _point:
    _install(_point)
if os.environ.get("YARNNN_TEST_CLAIM_BARRIER"):
    _install_barrier(os.environ["YARNNN_TEST_CLAIM_BARRIER"])
