"""The suite-wide clock shift: run every test as if today were N days from now.

``tests/conftest.py`` calls :func:`start` before collection when ``YARNNN_TEST_CLOCK_SHIFT_DAYS``
(or ``--clock-shift-days``) is set. The pytest process travels to ``real now + N days`` with a
ticking clock (time-machine), and ``TEST_CLOCK_SHIFT_SECONDS`` plus ``shifted_clock`` on
``PYTHONPATH`` carry the same shift into every Python subprocess (``dagster dev`` and its daemon,
code server and run workers; CLI subprocesses), whose ``sitecustomize`` starts the same travel. A
subprocess started with an explicit ``env=`` gets both added (``subprocess.Popen`` is wrapped while
the shift is on), so tests never need to know about the shift.

A test that reads its clock from the real now (or freezes its own) passes under any shift; a test
or product code that lets a fixed date meet ``datetime.now()`` fails. What no shift reaches: the
system clock read by native code (PostgreSQL's ``now()``, SQLite's ``CURRENT_TIMESTAMP``, Rust in
deltalake/polars: Delta commit timestamps, vacuum), file mtimes, and TLS certificate checks. The
product keeps every timestamp it compares in Python, so none of these meets a shifted Python clock.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

ENV_DAYS = "YARNNN_TEST_CLOCK_SHIFT_DAYS"
CHILD_ENV = "TEST_CLOCK_SHIFT_SECONDS"
SITE_DIR = Path(__file__).resolve().parent / "shifted_clock"

_traveller = None
_popen_init = None


def requested_days(option: float | None) -> float:
    """The shift asked for: the pytest option wins over the environment; 0 means none."""
    if option is not None:
        return float(option)
    raw = os.environ.get(ENV_DAYS, "").strip()
    if not raw:
        return 0.0
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{ENV_DAYS} must be a number of days, got {raw!r}") from None


def start(days: float) -> dt.datetime:
    """Shift this process (ticking) and every Python subprocess it starts; returns the shifted now."""
    global _traveller
    from tests.fakes.shifted_clock import yarnnn_testclock

    seconds = days * 86400.0
    os.environ[CHILD_ENV] = repr(seconds)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(SITE_DIR) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(SITE_DIR), *paths])
    _traveller = yarnnn_testclock.shift(seconds)
    _carry_into_explicit_envs()
    return dt.datetime.now(dt.UTC)


def _with_shift(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus the shift: a test that builds a subprocess's environment (or replaces its
    ``PYTHONPATH``) still starts it on the suite's clock. The test's own path entries come first, so
    its own ``sitecustomize`` (e.g. ``tests/fakes/crashpoints``) still wins and applies the shift."""
    out = dict(env)
    out.setdefault(CHILD_ENV, os.environ[CHILD_ENV])
    paths = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(SITE_DIR) not in paths:
        out["PYTHONPATH"] = os.pathsep.join([*paths, str(SITE_DIR)])
    return out


def _carry_into_explicit_envs() -> None:
    global _popen_init
    if _popen_init is not None:
        return
    original = _popen_init = subprocess.Popen.__init__

    @functools.wraps(original)
    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("env") is not None and CHILD_ENV in os.environ:
            kwargs["env"] = _with_shift(kwargs["env"])
        original(self, *args, **kwargs)

    subprocess.Popen.__init__ = init  # type: ignore[method-assign]


def stop() -> None:
    global _traveller, _popen_init
    if _traveller is not None:
        _traveller.stop()
        _traveller = None
        os.environ.pop(CHILD_ENV, None)
    if _popen_init is not None:
        subprocess.Popen.__init__ = _popen_init  # type: ignore[method-assign]
        _popen_init = None
