"""What a recipe may call: registered Python functions (``function`` steps) and LLM flows (``llm_flow``).

A function is registered with :func:`recipe_function`; it takes the step runtime as its first
positional argument and the step's ``inputs`` as keyword arguments, and returns a JSON-like dict::

    @recipe_function("research.web_search", outputs=("results", "online"))
    def web_search(rt: StepRuntime, *, terms: list[str], n_results: int = 5) -> dict: ...

Level 2 of validation checks that every ``method``/``flow`` exists and that the step's inputs match
the signature (no unknown names, every required parameter given). At run time the resolved inputs
are validated against the annotations by pydantic, so a wrong type fails with the parameter's name.

Built-in functions live in ``yarn_assets.recipes.functions``; a recipe may load more with
``functions_from: [module]`` (a module that registers functions when imported).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

BUILTIN_MODULES = ("yarn_assets.recipes.functions.research", "yarn_assets.recipes.functions.digest",
                   "yarn_assets.recipes.functions.common")


class RegistryError(LookupError):
    """An unknown function/flow, or inputs that do not fit its signature."""


@dataclass(frozen=True)
class Param:
    name: str
    required: bool
    annotation: Any


@dataclass(frozen=True)
class RecipeFunction:
    name: str
    fn: Callable[..., Mapping[str, Any]]
    params: dict[str, Param]
    outputs: tuple[str, ...] = ()
    description: str = ""

    def signature_problems(self, given: set[str]) -> list[str]:
        problems = []
        unknown = sorted(given - set(self.params))
        if unknown:
            problems.append(f"unknown input{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for "
                            f"'{self.name}'; it takes: {', '.join(self.params) or '(nothing)'}")
        missing = sorted(p.name for p in self.params.values() if p.required and p.name not in given)
        if missing:
            problems.append(f"'{self.name}' needs input{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        return problems

    def coerce(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Validate resolved inputs against the annotations (pydantic, lax mode)."""
        out = {}
        for name, value in values.items():
            param = self.params[name]
            if param.annotation is inspect.Parameter.empty:
                out[name] = value
                continue
            try:
                out[name] = TypeAdapter(param.annotation, config=_LAX).validate_python(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(x) for x in first.get("loc", ())) or "(value)"
                raise RegistryError(f"input '{name}' of '{self.name}': {first.get('msg')} at {where}") from None
        return out


_LAX = ConfigDict(arbitrary_types_allowed=True)


@dataclass
class FlowCall:
    """One LLM call prepared by a registered flow: prompts, the offline answer, how to read the answer."""

    system: str
    prompt: str
    offline: Callable[[], Any]
    max_tokens: int = 1024
    post: Callable[[Any], Mapping[str, Any]] | None = None
    user_id: str | None = None  # whose budget the call counts against (None: a system-level call)


@dataclass(frozen=True)
class RecipeFlow:
    """A registered LLM flow: ``build(rt, **inputs) -> FlowCall``; ``output`` None means free text."""

    name: str
    build: Callable[..., FlowCall]
    params: dict[str, Param]
    output: type[BaseModel] | None
    task: str = "generation"
    estimate_input_tokens: int = 2000
    estimate_output_tokens: int = 1000
    outputs: tuple[str, ...] = field(default=())
    description: str = ""

    signature_problems = RecipeFunction.signature_problems
    coerce = RecipeFunction.coerce


FUNCTIONS: dict[str, RecipeFunction] = {}
FLOWS: dict[str, RecipeFlow] = {}


def _params(fn: Callable[..., Any]) -> dict[str, Param]:
    sig = inspect.signature(fn)
    hints = inspect.get_annotations(fn, eval_str=True)
    params = list(sig.parameters.values())[1:]  # the first one is the runtime
    out = {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"{fn.__qualname__}: recipe functions take named parameters only")
        out[p.name] = Param(p.name, p.default is inspect.Parameter.empty, hints.get(p.name, inspect.Parameter.empty))
    return out


def recipe_function(name: str, *, outputs: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        existing = FUNCTIONS.get(name)
        if existing is not None and existing.fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"recipe function {name!r} is registered twice")
        FUNCTIONS[name] = RecipeFunction(name, fn, _params(fn), tuple(outputs), inspect.getdoc(fn) or "")
        return fn

    return register


def recipe_flow(name: str, *, output: type[BaseModel] | None, task: str = "generation",
                estimate_input_tokens: int = 2000, estimate_output_tokens: int = 1000
                ) -> Callable[[Callable[..., FlowCall]], Callable[..., FlowCall]]:
    def register(fn: Callable[..., FlowCall]) -> Callable[..., FlowCall]:
        outputs = tuple(output.model_fields) if output is not None else ("text",)
        FLOWS[name] = RecipeFlow(name, fn, _params(fn), output, task, estimate_input_tokens, estimate_output_tokens,
                                 (*outputs, "llm"), inspect.getdoc(fn) or "")
        return fn

    return register


def load(modules: tuple[str, ...] | list[str] = ()) -> None:
    """Import the built-in function modules and any extra ones (which register on import)."""
    for name in (*BUILTIN_MODULES, *modules):
        try:
            import_module(name)
        except ImportError as exc:
            raise RegistryError(f"cannot import functions_from module {name!r}: {exc}") from None


def function(name: str) -> RecipeFunction:
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise RegistryError(f"unknown function '{name}'; registered: {', '.join(sorted(FUNCTIONS))}") from None


def flow(name: str) -> RecipeFlow:
    try:
        return FLOWS[name]
    except KeyError:
        raise RegistryError(f"unknown flow '{name}'; registered: {', '.join(sorted(FLOWS)) or '(none)'}") from None
