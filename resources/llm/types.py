"""Errors and values of the LLM resource: what callers catch and what a call returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import dagster as dg
from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)

TASKS = ("signals", "generation", "memory", "analysis")

#: Tiers the budget table knows; anything else is budgeted as free (as the original).
FALLBACK_TIER = "free"


# ------------------------------------------------------------------------------------------ errors
class LLMError(RuntimeError):
    """Base class of everything the LLM resource raises."""


class LLMConfigError(LLMError):
    """The resource cannot make calls as configured (e.g. online mode without an API key)."""


class LLMCallError(LLMError):
    """The API failed after the SDK's retries (status, timeout or connection)."""

    def __init__(self, message: str, *, status_code: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.transient = transient


class LLMOutputError(LLMError):
    """The model's answer failed validation twice (the first failure is sent back once)."""

    def __init__(self, message: str, *, task: str, user_id: str | None, model: str, attempts: int,
                 usage: LLMUsage) -> None:
        super().__init__(message)
        self.task = task
        self.user_id = user_id
        self.model = model
        self.attempts = attempts
        self.usage = usage


class LLMBudgetExceeded(LLMError):
    """The user's daily token budget would be exceeded; no call was made."""

    def __init__(self, user_id: str, tier: str, used: int, budget: int, estimate: int) -> None:
        super().__init__(
            f"daily LLM token budget of user {user_id} ({tier}: {budget:,} tokens) exhausted: "
            f"{used:,} used today, this call needs about {estimate:,}"
        )
        self.user_id, self.tier, self.used, self.budget, self.estimate = user_id, tier, used, budget, estimate


# ------------------------------------------------------------------------------------------ values
@dataclass(frozen=True)
class LLMScope:
    """Where a call happens, for attribution in ``llm_usage``."""

    run_id: str | None = None
    asset_key: str | None = None
    partition_key: str | None = None

    @classmethod
    def from_context(cls, context: Any, asset_key: str | None = None) -> LLMScope:
        """From an asset/op execution context (multi-assets: pass ``asset_key`` or get the keys joined)."""
        run_id = getattr(getattr(context, "run", None), "run_id", None)
        partition_key = str(context.partition_key) if getattr(context, "has_partition_key", False) else None
        if asset_key is None:
            keys = sorted(k.to_user_string() for k in getattr(context, "selected_asset_keys", []) or [])
            asset_key = ",".join(keys) or None
        return cls(run_id=run_id, asset_key=asset_key, partition_key=partition_key)


@dataclass
class LLMUsage:
    """Tokens and cost of one or more calls; add them up per pass or per asset."""

    calls: int = 0
    offline_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    models: tuple[str, ...] = ()

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    def __add__(self, other: LLMUsage) -> LLMUsage:
        return LLMUsage(
            calls=self.calls + other.calls,
            offline_calls=self.offline_calls + other.offline_calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
            models=tuple(dict.fromkeys((*self.models, *other.models))),
        )

    def as_metadata(self, prefix: str = "llm_") -> dict[str, Any]:
        """Dagster metadata entries (plain values, so they chart in the UI)."""
        return {
            f"{prefix}calls": self.calls,
            f"{prefix}offline_calls": self.offline_calls,
            f"{prefix}input_tokens": self.input_tokens,
            f"{prefix}output_tokens": self.output_tokens,
            f"{prefix}cache_read_tokens": self.cache_read_tokens,
            f"{prefix}cache_write_tokens": self.cache_write_tokens,
            f"{prefix}cost_usd": dg.MetadataValue.float(round(self.cost_usd, 6)),
            f"{prefix}models": ", ".join(self.models) or "-",
        }


@dataclass(frozen=True)
class StructuredResult(Generic[T]):
    value: T
    usage: LLMUsage
    model: str
    offline: bool
    attempts: int = 1
    raw_text: str = ""


@dataclass(frozen=True)
class TextResult:
    text: str
    usage: LLMUsage
    model: str
    offline: bool
    attempts: int = 1


@dataclass
class _Attempt:
    message: Any
    usage: LLMUsage
    problems: list[str] = field(default_factory=list)


class _Malformed(ValueError):
    pass
