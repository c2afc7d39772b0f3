"""What a step executor returns (:class:`StepResult`, check outcomes) and the errors it raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class StepError(RuntimeError):
    """A step that cannot produce its output (the message names the step and the reason)."""


class WaitTimeout(StepError):
    pass


class DeliveryFailed(StepError):
    pass


@dataclass
class CheckOutcome:
    name: str
    metric: str
    value: float
    threshold: float
    op: str
    passed: bool
    severity: str
    blocking: bool
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "threshold": self.threshold, "op": self.op,
                "passed": self.passed, "severity": self.severity, **self.detail}


@dataclass
class StepResult:
    output: dict[str, Any]
    activate: list[str] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ helpers
def check_declared(step: Any, produced: Mapping[str, Any], extra: tuple[str, ...] = ()) -> None:
    """Raise when the step did not produce every output it (or its function) declares."""
    missing = [k for k in (*step.outputs, *extra) if k not in produced]
    if missing:
        raise StepError(f"step '{step.id}' did not produce declared output{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(missing)}; it produced: {', '.join(sorted(produced)) or '(nothing)'}")
