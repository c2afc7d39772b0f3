"""Test-only: move this process's wall clock by an offset (ticking), keeping gRPC on the real clock.

time-machine patches ``time.time``, ``datetime.now`` and friends for Python code. Native code reads
the system clock on its own, so an absolute time computed in Python and handed to native code is
off by the offset: gRPC's Python layer turns every timeout into ``time.time() + timeout`` and its C
core waits until that moment of the *real* clock; shifted N days ahead, a ping to a code server
that is not up yet waits N days, and ``dagster dev`` never starts. So every ``grpc`` module keeps
the real ``time.time`` (its deadlines are plumbing, never data). Imported by ``sitecustomize`` in
subprocesses and by ``tests/fakes/clock_shift.py`` in the pytest process.

Only the first ``sitecustomize`` on ``sys.path`` runs: another test-only one (``tests/fakes/crashpoints``)
calls :func:`apply_from_env` itself, so the clock moves whichever of them a subprocess loads.
"""

import importlib.abc
import importlib.machinery
import os
import sys
import time
import types
from typing import Any

_installed = False


def _real_time() -> float:
    import time_machine

    return time_machine.escape_hatch.time.time() if time_machine.escape_hatch.is_travelling() else time.time()


def _real_time_ns() -> int:
    import time_machine

    return time_machine.escape_hatch.time.time_ns() if time_machine.escape_hatch.is_travelling() else time.time_ns()


class _RealClockTime(types.ModuleType):
    """The ``time`` module as gRPC sees it: the real wall clock, everything else unchanged."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


_REAL = _RealClockTime("time")
_REAL.time = _real_time  # type: ignore[attr-defined]
_REAL.time_ns = _real_time_ns  # type: ignore[attr-defined]


def _unshift(module: types.ModuleType) -> None:
    if getattr(module, "time", None) is time:
        module.time = _REAL  # type: ignore[attr-defined]


class _GrpcRealClock(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "grpc" and not name.startswith("grpc."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader = spec.loader if spec else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            run(module)
            _unshift(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def shift(seconds: float) -> Any:
    """Travel ``seconds`` ahead of the real clock, ticking; returns the started traveller."""
    global _installed
    import time_machine

    if not _installed:
        _installed = True
        sys.meta_path.insert(0, _GrpcRealClock())
        for name, module in list(sys.modules.items()):
            if (name == "grpc" or name.startswith("grpc.")) and module is not None:
                _unshift(module)
    traveller = time_machine.travel(time.time() + seconds, tick=True)
    traveller.start()
    return traveller


def offset_from_env() -> float:
    """``TEST_CLOCK_SHIFT_SECONDS`` (every process) plus ``TEST_CLOCK_OFFSET_SECONDS`` (the daemon only)."""
    total = float(os.environ.get("TEST_CLOCK_SHIFT_SECONDS") or 0)
    daemon_only = os.environ.get("TEST_CLOCK_OFFSET_SECONDS")
    if daemon_only:
        try:
            with open("/proc/self/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            argv = []
        if b"dagster._daemon" in argv:
            total += float(daemon_only)
    return total


def apply_from_env() -> None:
    """Called at interpreter start-up by the tests' ``sitecustomize`` modules; a no-op unless shifted."""
    seconds = offset_from_env()
    if seconds:
        shift(seconds)
