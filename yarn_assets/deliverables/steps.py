"""The timed steps of a deliverable run, as stored with the version (``steps``: name, status, ms, detail)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from control_plane.models import utcnow


@dataclass
class Step:
    name: str
    status: str = "running"
    started_at: str = ""
    ms: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "started_at": self.started_at, "ms": round(self.ms, 1),
                "detail": self.detail}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Step:
        return cls(name=d["name"], status=d["status"], started_at=d.get("started_at", ""), ms=d.get("ms", 0.0),
                   detail=d.get("detail", {}))


class StepLog:
    """Times steps and records how they ended; the run stores the list when the version's status changes
    (not after every step: one control-plane write per status change)."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        s = Step(name=name, started_at=utcnow().isoformat())
        self.steps.append(s)
        t0 = time.perf_counter()
        try:
            yield s
        except BaseException as exc:
            s.status = "failed"
            s.detail["error"] = f"{type(exc).__name__}: {exc}"[:500]
            raise
        else:
            if s.status == "running":
                s.status = "ok"
        finally:
            s.ms = (time.perf_counter() - t0) * 1000

    def skipped(self, name: str, why: str) -> None:
        self.steps.append(Step(name=name, status="skipped", started_at=utcnow().isoformat(), detail={"reason": why}))

    def as_dicts(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.steps]
