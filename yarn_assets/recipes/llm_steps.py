"""The ``llm_flow`` step: a registered flow or an inline prompt, one call through the ``llm`` resource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from yarn_assets.recipes import dsl, registry
from yarn_assets.recipes.registry import FlowCall
from yarn_assets.recipes.runtime import StepRuntime
from yarn_assets.recipes.step_results import StepResult, check_declared
from yarn_assets.recipes.templates import format_value, resolve


def _usage(result: Any) -> dict[str, Any]:
    u = result.usage
    return {"model": result.model, "offline": bool(result.offline), "calls": u.calls,
            "input_tokens": u.input_tokens + u.cache_read_tokens + u.cache_write_tokens,
            "output_tokens": u.output_tokens, "cost_usd": round(u.cost_usd, 6)}


# ------------------------------------------------------------------------------------------ llm_flow
_TYPES: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool, "list[str]": list[str],
                          "list[int]": list[int], "list[float]": list[float], "list[dict]": list[dict[str, Any]],
                          "dict": dict[str, Any]}


def output_model(step: dsl.LLMFlowStep) -> type[BaseModel] | None:
    if not isinstance(step.output, dict):
        return None
    name = "".join(part.capitalize() for part in step.id.split("_")) + "Output"
    fields: dict[str, Any] = {k: (_TYPES[v], ...) for k, v in step.output.items()}
    model = create_model(name, __config__=ConfigDict(extra="ignore"), **fields)
    model.__doc__ = step.description or f"The answer of recipe step {step.id}."
    return model


def offline_fill(model: type[BaseModel], prompt: str) -> dict[str, Any]:
    """The generic offline answer of an inline flow without ``offline:``: derived from the prompt only.

    Strings get the prompt's first line, string lists its first ten lines, numbers 0, booleans false.
    """
    lines = [ln.strip() for ln in prompt.splitlines() if ln.strip()]
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        ann = info.annotation
        if ann is str:
            out[name] = (lines[0] if lines else "")[:300]
        elif ann == list[str]:
            out[name] = [ln[:300] for ln in lines[:10]]
        elif ann is bool:
            out[name] = False
        elif ann in (int, float):
            out[name] = 0
        elif ann == dict[str, Any]:
            out[name] = {}
        else:
            out[name] = []
    return out


def _inline_call(step: dsl.LLMFlowStep, scope: Mapping[str, Any], model: type[BaseModel] | None) -> FlowCall:
    assert step.prompt is not None
    system = format_value(resolve(step.prompt.system, scope))
    prompt = format_value(resolve(step.prompt.user, scope))

    def offline() -> Any:
        if step.offline is not None:
            answer = resolve(step.offline, scope)
            return format_value(answer) if model is None else answer
        if model is None:
            return prompt
        return offline_fill(model, prompt)

    return FlowCall(system=system, prompt=prompt, offline=offline, max_tokens=step.max_tokens)


def run_llm_flow(step: dsl.LLMFlowStep, scope: Mapping[str, Any], rt: StepRuntime) -> StepResult:
    user_id: Any = None
    if step.flow is not None:
        flow = registry.flow(step.flow)
        values = flow.coerce(resolve(step.inputs, scope))
        call = flow.build(rt, **values)
        model, task = flow.output, flow.task
    else:
        model, task = output_model(step), step.task
        call = _inline_call(step, scope, model)
        user_id = resolve(step.inputs.get("user_id"), scope) if "user_id" in step.inputs else None
    user_id = getattr(call, "user_id", None) or user_id
    if model is None:
        result = rt.llm.text(task=task, user_id=user_id, system=call.system, prompt=call.prompt,
                             offline=call.offline, scope=rt.scope, max_tokens=call.max_tokens)
        value: Any = result.text
        output: dict[str, Any] = {"text": result.text}
    else:
        result = rt.llm.structured(task=task, user_id=user_id, system=call.system, prompt=call.prompt, output=model,
                                   offline=call.offline, scope=rt.scope, max_tokens=call.max_tokens)
        value = result.value
        output = result.value.model_dump(mode="json")
    if call.post is not None:
        output = dict(call.post(value))
    output["llm"] = _usage(result)
    check_declared(step, output)
    return StepResult(output=output)
