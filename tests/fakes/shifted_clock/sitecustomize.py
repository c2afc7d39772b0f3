"""Test-only: move the wall clock of every Python process a test starts (and its descendants).

This folder goes on ``PYTHONPATH``; Python imports ``sitecustomize`` at start-up, so the clock
moves before any code of the process runs. Two offsets compose (seconds, ticking from the real
clock; time-machine patches ``time.time``, ``datetime.now`` and friends; monotonic clocks, and so
sleeps and timeouts, are untouched; gRPC keeps the real clock, see ``yarnnn_testclock``):

- ``TEST_CLOCK_SHIFT_SECONDS``: every process. Set by ``tests/conftest.py`` when the suite runs
  with the clock shifted (``YARNNN_TEST_CLOCK_SHIFT_DAYS`` / ``--clock-shift-days``), so a
  ``dagster dev`` under test, its daemon, code server and run workers, and every CLI subprocess
  read the same shifted clock as the pytest process.
- ``TEST_CLOCK_OFFSET_SECONDS``: only the Dagster daemon of a ``dagster dev`` under test
  (``python -m dagster._daemon``), on top of the shift. A test that must watch an hourly schedule
  tick sets it so the scheduler fires the ``hh:02`` tick a few real minutes after start, while the
  run workers keep the (shifted) clock of the test.

Never on any path outside the tests.
"""

import yarnnn_testclock

yarnnn_testclock.apply_from_env()
