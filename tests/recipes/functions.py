"""Recipe functions for the tests (loaded by ``functions_from: [tests.recipes.functions]``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from yarn_assets.recipes.registry import recipe_function
from yarn_assets.recipes.runtime import StepRuntime


def _count(path: str) -> int:
    """Append one line (atomic enough for one writer per step) and return the number of lines."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("a") as f:
        f.write(f"{os.getpid()}\n")
    return len(p.read_text().splitlines())


@recipe_function("test.echo")
def echo(rt: StepRuntime, *, value: Any = None, counter: str | None = None) -> dict[str, Any]:
    """Returns its input (and counts its executions in ``counter``)."""
    runs = _count(counter) if counter else 0
    return {"value": value, "runs": runs, "now": rt.now.isoformat()}


@recipe_function("test.profile", outputs=("profile",))
def profile(rt: StepRuntime, *, followers: int, picture: str | None = None) -> dict[str, Any]:
    return {"profile": {"followers_count": followers, "profile_picture": picture, "recent_posts": followers // 1000}}


@recipe_function("test.flaky", outputs=("attempt",))
def flaky(rt: StepRuntime, *, counter: str, fail_times: int) -> dict[str, Any]:
    """Fails ``fail_times`` times, then succeeds (the counter file survives the retries)."""
    n = _count(counter)
    if n <= fail_times:
        raise ConnectionError(f"transient failure {n} of {fail_times}")
    return {"attempt": n}


@recipe_function("test.fail")
def fail(rt: StepRuntime, *, message: str = "boom", counter: str | None = None) -> dict[str, Any]:
    if counter:
        _count(counter)
    raise RuntimeError(message)


@recipe_function("test.fail_once_then_ok", outputs=("ok",))
def fail_once_then_ok(rt: StepRuntime, *, counter: str, marker: str) -> dict[str, Any]:
    """Fails while ``marker`` exists (the resume test removes it before replaying)."""
    _count(counter)
    if Path(marker).exists():
        raise RuntimeError("downstream service unavailable")
    return {"ok": True}


@recipe_function("test.hang", outputs=("done",))
def hang(rt: StepRuntime, *, counter: str, started: str, marker: str, seconds: float = 60.0) -> dict[str, Any]:
    """Signals that it started, then hangs while ``marker`` exists (the process is killed meanwhile)."""
    _count(counter)
    Path(started).write_text(str(os.getpid()))
    deadline = time.monotonic() + seconds
    while Path(marker).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"done": True}
