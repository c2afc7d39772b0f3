"""Test-only: shift the wall clock of the Dagster daemon of a ``dagster dev`` under test.

A test that must watch an hourly schedule tick puts this folder on ``PYTHONPATH`` and sets
``TEST_CLOCK_OFFSET_SECONDS``. The daemon process (``python -m dagster._daemon``) then moves its
wall clock forward by that offset at start-up and lets it tick (time-machine patches ``time.time``
and ``datetime.now``; monotonic clocks, and so sleeps and timeouts, are untouched): its scheduler
fires the ``hh:02`` tick a few real minutes after start. Every other process (webserver, code
server, the run workers that compute and write the data) keeps the real clock, so what the runs
record is real time. Never on any path outside the tests.
"""

import os

_offset = os.environ.get("TEST_CLOCK_OFFSET_SECONDS")
if _offset:
    try:
        with open("/proc/self/cmdline", "rb") as _f:
            _argv = _f.read().split(b"\0")
    except OSError:
        _argv = []
    if b"dagster._daemon" in _argv:
        import time

        import time_machine

        time_machine.travel(time.time() + float(_offset), tick=True).start()
