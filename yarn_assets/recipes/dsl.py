"""The recipe DSL as pydantic models: level 1 of validation (schema) is ``Recipe.model_validate``.

It follows the source system's ODP YAML DSL (``version``, ``pipeline_id``, ``steps`` with
``depends_on``, ``retry_policy``, ``on_error``, ``check``, ``on_success.routes``, ``is_child``,
``inputs`` with ``from:``/``or:``), restricted to the step types that fit this platform. Step types
of the source that have no place here (crawlers, ML model calls/serving/training, agents, inline
code) are refused with a message that says what to use instead.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
StepId = Annotated[str, Field(pattern=ID_PATTERN, description="lower_snake_case, unique in the recipe")]

SUPPORTED_TYPES = ("function", "llm_flow", "read_asset", "data_transform", "wait_for_asset", "conditional", "loop",
                   "parallel_group", "validation", "output")

#: source step types refused here, with what to do instead
UNSUPPORTED_TYPES: dict[str, str] = {
    "crawler": "crawlers have no place here: platform content arrives through syncs and imports "
               "(silver/platform_content); read it with a read_asset step",
    "ml_model": "there is no model-serving tier: call the LLM with an llm_flow step, or a registered function",
    "ml_serving": "there is no model-serving tier (no Kubernetes/BentoML deployment from a recipe)",
    "ml_training": "model training is not run by recipes on this platform",
    "llm_agent": "agent graphs are not supported: chain llm_flow steps (each one call with an output schema)",
    "custom_code": "inline code is not accepted in a recipe: register a Python function "
                   "(@recipe_function) and call it with a function step",
}


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


class Route(_Model):
    """``on_success.routes``: when ``match`` holds, run ``steps`` (defined here) and/or ``run`` (child ids).

    A route without ``match`` is the default: it runs when no other route matched.
    """

    match: Expression | None = None
    steps: list[Step] = Field(default_factory=list)
    run: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> Route:
        if not self.steps and not self.run:
            raise ValueError("a route needs steps or run")
        return self


class OnSuccess(_Model):
    routes: list[Route] = Field(min_length=1)


class Resources(_Model):
    cpu: str | None = None
    memory: str | None = None
    gpu: int | None = Field(default=None, ge=0)


class StepBase(_Model):
    id: StepId
    description: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict, description="fields this step must produce")
    retry_policy: RetrySpec = Field(default_factory=RetrySpec)
    on_error: OnError | None = None
    check: list[CheckRule] = Field(default_factory=list)
    on_success: OnSuccess | None = None
    is_child: bool = False
    resources: Resources | None = None
    execution_mode: Literal["direct"] | None = None

    @field_validator("depends_on", mode="before")
    @classmethod
    def _list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("check", mode="before")
    @classmethod
    def _check_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v


class FunctionStep(StepBase):
    type: Literal["function"]
    method: str = Field(min_length=1)


class Prompt(_Model):
    system: str = Field(default="You are a careful assistant. Use only the material provided.")
    user: str = Field(min_length=1)


class TokenEstimate(_Model):
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)


OUTPUT_TYPES = ("str", "int", "float", "bool", "list[str]", "list[int]", "list[float]", "list[dict]", "dict")


class LLMFlowStep(StepBase):
    type: Literal["llm_flow"]
    flow: str | None = Field(default=None, description="a registered flow (prompt + schema + offline rules)")
    prompt: Prompt | None = None
    output: dict[str, str] | Literal["text"] | None = None
    offline: dict[str, Any] | str | None = Field(default=None, description="the offline answer (templates allowed)")
    task: Literal["signals", "generation", "memory", "analysis"] = "generation"
    max_tokens: int = Field(default=1024, ge=16, le=16_000)
    estimate: TokenEstimate | None = None

    @model_validator(mode="after")
    def _flow_or_prompt(self) -> LLMFlowStep:
        if (self.flow is None) == (self.prompt is None):
            raise ValueError("an llm_flow step has either flow (a registered flow) or prompt (inline), not both")
        if self.prompt is not None:
            if self.output is None:
                raise ValueError("an inline llm_flow needs output: 'text' or a mapping of field -> type")
            if isinstance(self.output, dict):
                bad = {k: v for k, v in self.output.items() if v not in OUTPUT_TYPES}
                if bad:
                    raise ValueError(f"unknown output types {bad}; use one of {', '.join(OUTPUT_TYPES)}")
        elif self.output is not None or self.offline is not None:
            raise ValueError("output and offline belong to inline prompts; a registered flow defines its own")
        return self


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


class ReadAssetStep(StepBase):
    """Read rows of a catalog table (one user's, when the table has a ``user_id`` column)."""

    type: Literal["read_asset", "data_transform"]
    table: str
    filter: dict[str, Any] = Field(default_factory=dict)
    since: Since | None = None
    columns: list[str] | None = None
    order_by: list[OrderBy] = Field(default_factory=list)
    limit: int = Field(default=500, ge=1)
    group_by: list[str] = Field(default_factory=list)
    aggregate: dict[str, str] = Field(default_factory=dict, description="name -> count | min:col | max:col | "
                                      "n_unique:col | sum:col")

    @model_validator(mode="after")
    def _transform_only(self) -> ReadAssetStep:
        if (self.group_by or self.aggregate) and self.type != "data_transform":
            raise ValueError("group_by/aggregate belong to data_transform steps")
        if self.aggregate and not self.group_by:
            raise ValueError("aggregate needs group_by")
        return self


class WaitForAssetStep(StepBase):
    type: Literal["wait_for_asset"]
    assets: list[str] = Field(min_length=1)
    timeout_minutes: float = Field(default=10, gt=0, le=24 * 60)
    poll_interval_seconds: float = Field(default=5, gt=0, le=3600)
    after: Any = Field(default=None, description="only a materialization after this ISO time counts")


class Branch(_Model):
    steps: list[Step] = Field(default_factory=list)


class Branches(_Model):
    if_true: Branch = Field(default_factory=Branch)
    if_false: Branch = Field(default_factory=Branch)


class ConditionalStep(StepBase):
    type: Literal["conditional"]
    condition: Expression
    branches: Branches = Field(default_factory=Branches)


class LoopStep(StepBase):
    type: Literal["loop"]
    iterate_over: Any
    loop_variable: str = Field(default="item", pattern=ID_PATTERN)
    max_parallel: int = Field(default=1, ge=1, le=64)
    max_items: int = Field(default=50, ge=1)
    steps: list[Step] = Field(min_length=1)


class ParallelGroupStep(StepBase):
    type: Literal["parallel_group"]
    steps: list[Step] = Field(min_length=1)
    max_parallel: int | None = Field(default=None, ge=1, le=64)


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


class ValidationStep(StepBase):
    type: Literal["validation"]
    checks: dict[Annotated[str, Field(pattern=ID_PATTERN)], CheckSpec] = Field(min_length=1)


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


class OutputStep(StepBase):
    type: Literal["output"]
    format: Literal["markdown", "json"] = "markdown"
    table: TableOutput | None = None
    deliver: DeliverSpec | None = None

    @model_validator(mode="after")
    def _something(self) -> OutputStep:
        if self.table is None and self.deliver is None:
            raise ValueError("an output step writes a table row, delivers, or both")
        return self


class UnsupportedStep(_Model):
    """A source-system step type that has no place here: refused with the reason."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str

    @field_validator("type")
    @classmethod
    def _refuse(cls, v: str) -> str:
        raise PydanticCustomError("unsupported_step", "step type '{kind}' is not supported here: {why}",
                                  {"kind": v, "why": UNSUPPORTED_TYPES[v]})


def _step_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind in ("read_asset", "data_transform"):
        return "read_asset"
    if kind in UNSUPPORTED_TYPES:
        return "unsupported"
    return kind if kind in SUPPORTED_TYPES else None


Step = Annotated[
    Annotated[FunctionStep, Tag("function")]
    | Annotated[LLMFlowStep, Tag("llm_flow")]
    | Annotated[ReadAssetStep, Tag("read_asset")]
    | Annotated[WaitForAssetStep, Tag("wait_for_asset")]
    | Annotated[ConditionalStep, Tag("conditional")]
    | Annotated[LoopStep, Tag("loop")]
    | Annotated[ParallelGroupStep, Tag("parallel_group")]
    | Annotated[ValidationStep, Tag("validation")]
    | Annotated[OutputStep, Tag("output")]
    | Annotated[UnsupportedStep, Tag("unsupported")],
    Discriminator(_step_tag, custom_error_type="unknown_step_type",
                  custom_error_message="unknown step type; use one of: " + ", ".join(SUPPORTED_TYPES)),
]

CONTROL_TYPES = ("conditional", "loop", "parallel_group")


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


class Recipe(_Model):
    version: Literal["1.0"]
    pipeline_id: Annotated[str, Field(pattern=ID_PATTERN)]
    name: str = Field(min_length=1)
    description: str | None = None
    workspace_id: str | None = None
    project_id: str | None = None
    owners: list[str] = Field(default_factory=lambda: ["team:data-platform"])
    execution: Execution = Field(default_factory=Execution)
    budget: Budget = Field(default_factory=Budget)
    replay: Replay = Field(default_factory=Replay)
    inputs: dict[Annotated[str, Field(pattern=ID_PATTERN)], InputSpec] = Field(default_factory=dict)
    dry_run: DryRun = Field(default_factory=DryRun)
    functions_from: list[str] = Field(default_factory=list, description="extra modules of registered functions")
    reads: list[str] = Field(default_factory=list, description="tables its functions read (lineage in the UI)")
    steps: list[Step] = Field(min_length=1)


for _m in (Route, Branch, LoopStep, ParallelGroupStep, ConditionalStep, StepBase, Recipe):
    _m.model_rebuild()


def iter_steps(steps: list[Any], loc: tuple[Any, ...] = ("steps",)) -> Any:
    """Every step, nested ones included, with its location in the YAML: (step, loc, container)."""
    for i, step in enumerate(steps):
        here = (*loc, i)
        yield step, here
        if isinstance(step, ConditionalStep):
            yield from iter_steps(step.branches.if_true.steps, (*here, "branches", "if_true", "steps"))
            yield from iter_steps(step.branches.if_false.steps, (*here, "branches", "if_false", "steps"))
        if isinstance(step, LoopStep | ParallelGroupStep):
            yield from iter_steps(step.steps, (*here, "steps"))
        if isinstance(step, StepBase) and step.on_success is not None:
            for r, route in enumerate(step.on_success.routes):
                yield from iter_steps(route.steps, (*here, "on_success", "routes", r, "steps"))
