"""The recipe DSL as pydantic models: level 1 of validation (schema) is ``Recipe.model_validate``.

It follows the source system's ODP YAML DSL (``version``, ``pipeline_id``, ``steps`` with
``depends_on``, ``retry_policy``, ``on_error``, ``check``, ``on_success.routes``, ``is_child``,
``inputs`` with ``from:``/``or:``), restricted to the step types that fit this platform. Step types
of the source that have no place here (crawlers, ML model calls/serving/training, agents, inline
code) are refused with a message that says what to use instead.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

from yarn_assets.recipes.dsl_blocks import (
    OUTPUT_TYPES,
    Budget,
    CheckRule,
    CheckSpec,
    DeliverSpec,
    DryRun,
    Execution,
    Expression,
    InputSpec,
    OnError,
    OrderBy,
    Prompt,
    Replay,
    Resources,
    RetrySpec,
    Since,
    TableOutput,
    TokenEstimate,
    _Model,
)

#: the leaf blocks are part of the DSL: ``dsl.RetrySpec``, ``dsl.CheckSpec``, ``dsl.Prompt``, ...
__all__ = ["CONTROL_TYPES", "ID_PATTERN", "OUTPUT_TYPES", "SUPPORTED_TYPES", "UNSUPPORTED_TYPES", "Branch", "Branches",
           "Budget", "CheckRule", "CheckSpec", "ConditionalStep", "DeliverSpec", "DryRun", "Execution", "Expression",
           "FunctionStep", "InputSpec", "LLMFlowStep", "LoopStep", "OnError", "OnSuccess", "OrderBy", "OutputStep",
           "ParallelGroupStep", "Prompt", "ReadAssetStep", "Recipe", "Replay", "Resources", "RetrySpec", "Route",
           "Since", "Step", "StepBase", "StepId", "TableOutput", "TokenEstimate", "UnsupportedStep", "ValidationStep",
           "WaitForAssetStep", "iter_steps"]

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


class ValidationStep(StepBase):
    type: Literal["validation"]
    checks: dict[Annotated[str, Field(pattern=ID_PATTERN)], CheckSpec] = Field(min_length=1)


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
