"""The DSL's leaf blocks, which hold no steps: retries, checks, prompts, read filters, outputs, run settings.

``dsl`` assembles them into steps and the recipe; import them from there.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySpec(_Model):
    """Per-step retries, mapped onto a Dagster RetryPolicy (attempts include the first run)."""

    max_attempts: int = Field(default=1, ge=1, le=10)
    backoff: Literal["exponential", "linear", "constant"] = "exponential"
    delay_seconds: float = Field(default=1.0, ge=0, le=3600)
    max_backoff_seconds: float | None = Field(default=None, ge=0, le=86_400)
    jitter: bool = False

    def wait_before(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1 = the first retry), capped."""
        if self.backoff == "exponential":
            wait = self.delay_seconds * (2 ** (retry_number - 1))
        elif self.backoff == "linear":
            wait = self.delay_seconds * retry_number
        else:
            wait = self.delay_seconds
        return min(wait, self.max_backoff_seconds) if self.max_backoff_seconds is not None else wait


class OnError(_Model):
    fallback_step: str | None = None
    continue_on_failure: bool = False


class CheckRule(_Model):
    """Legacy ``check:`` routing: a condition on this step's own output and the step it activates."""

    exists: str | None = None
    not_exists: str | None = None
    boolean: str | None = None
    run: list[str] = Field(min_length=1)

    @field_validator("run", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _exactly_one(self) -> CheckRule:
        given = [k for k in ("exists", "not_exists", "boolean") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a check rule has exactly one of exists, not_exists, boolean")
        return self


class Expression(_Model):
    expression: str


class Resources(_Model):
    cpu: str | None = None
    memory: str | None = None
    gpu: int | None = Field(default=None, ge=0)


class Prompt(_Model):
    system: str = Field(default="You are a careful assistant. Use only the material provided.")
    user: str = Field(min_length=1)


class TokenEstimate(_Model):
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)


OUTPUT_TYPES = ("str", "int", "float", "bool", "list[str]", "list[int]", "list[float]", "list[dict]", "dict")


class Since(_Model):
    column: str
    days: float | None = Field(default=None, gt=0)
    hours: float | None = Field(default=None, gt=0)
    start: Any = Field(default=None, description="an ISO time or a template")

    @model_validator(mode="after")
    def _one(self) -> Since:
        if sum(x is not None for x in (self.days, self.hours, self.start)) != 1:
            raise ValueError("since needs exactly one of days, hours, start")
        return self


class OrderBy(_Model):
    column: str
    descending: bool = False


class CheckSpec(_Model):
    """One threshold check; it becomes a Dagster asset check ``<step>_<name>`` on the recipe asset.

    ``completeness``: share of ``of`` (a list of objects) whose ``fields`` are all non-empty.
    ``relevance``: share of ``texts`` that mention at least one of ``terms`` (case-insensitive).
    ``value``: any number (a template or an expression result).
    """

    enabled: bool = True
    metric: Literal["completeness", "relevance", "value"] | None = None
    threshold: float
    op: Literal[">=", ">", "<=", "<", "=="] = ">="
    of: Any = None
    fields: list[str] = Field(default_factory=list)
    texts: Any = None
    terms: Any = None
    value: Any = None
    severity: Literal["warn", "error"] = "warn"
    blocking: bool = Field(default=False, description="a failed check fails the step (and skips what follows)")
    description: str | None = None

    @model_validator(mode="after")
    def _metric(self) -> CheckSpec:
        metric = self.metric or ("completeness" if self.of is not None else "relevance" if self.texts is not None
                                 else "value" if self.value is not None else None)
        if metric is None:
            raise ValueError("a check needs of+fields (completeness), texts+terms (relevance) or value")
        if metric == "completeness" and (self.of is None or not self.fields):
            raise ValueError("a completeness check needs of and fields")
        if metric == "relevance" and (self.texts is None or self.terms is None):
            raise ValueError("a relevance check needs texts and terms")
        if metric == "value" and self.value is None:
            raise ValueError("a value check needs value")
        object.__setattr__(self, "metric", metric)
        return self


class TableOutput(_Model):
    key: Any = Field(description="identifies the row per recipe and user (a re-run replaces it)")
    user_id: Any
    title: Any = None
    content: Any = None
    data: Any = None


class DeliverSpec(_Model):
    deliverable: Any = Field(description="the deliverable whose configured destination receives the content")
    content: Any
    title: Any = None
    llm: Any = Field(default=None, description="the composing step's llm usage ({{step.llm}}) for the version row")


class InputSpec(_Model):
    type: Literal["string", "integer", "number", "boolean", "list", "object", "datetime"] = "string"
    required: bool = False
    default: Any = None
    description: str | None = None
    sample: Any = Field(default=None, description="the value a dry run uses")


class Execution(_Model):
    mode: Literal["brave", "safe"] = "brave"
    timeout_minutes: float | None = Field(default=None, gt=0)
    estimated_cost_units: float | None = None
    estimated_duration_minutes: float | None = None


class Budget(_Model):
    tier: str = Field(default="free", description="the tier whose daily token budget the estimate must fit")
    max_cost_usd: float | None = Field(default=None, gt=0)


class Replay(_Model):
    enabled: bool = False
    original_execution_id: str | None = None
    replay_from_step: str | None = None


class DryRun(_Model):
    inputs: dict[str, Any] = Field(default_factory=dict)
    seed: str | None = Field(default=None, description="a registered function that seeds the scratch workspace")
