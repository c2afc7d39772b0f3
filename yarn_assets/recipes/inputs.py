"""A recipe run's inputs: the declared ones type-checked and defaulted, and the run's clock ``now``."""

import datetime as dt
from collections.abc import Mapping
from typing import Any

from yarn_assets.recipes import dsl
from yarn_assets.recipes.runtime import parse_time

INPUT = "input"


# ------------------------------------------------------------------------------------------ inputs
_INPUT_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
                                "list": list, "object": dict}


class InputError(ValueError):
    pass


def _is_type(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return kind == "boolean"
    return isinstance(value, _INPUT_TYPES[kind])


def coerce_inputs(recipe: dsl.Recipe, given: Mapping[str, Any]) -> dict[str, Any]:
    """The run's inputs: declared ones checked and defaulted, ``now`` fixed (ISO, UTC)."""
    unknown = sorted(set(given) - set(recipe.inputs) - {"now"})
    problems = [f"unknown input{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; the recipe takes: "
                f"{', '.join(recipe.inputs) or '(none)'}"] if unknown else []
    values: dict[str, Any] = {}
    for name, spec in recipe.inputs.items():
        if name in given and given[name] is not None:
            value = given[name]
        elif spec.required:
            problems.append(f"input '{name}' is required")
            continue
        else:
            value = spec.default
        if value is not None:
            if spec.type == "datetime":
                try:
                    value = parse_time(value, f"input '{name}'").isoformat()
                except ValueError as exc:
                    problems.append(str(exc))
                    continue
            elif not _is_type(value, spec.type):
                problems.append(f"input '{name}' must be {spec.type}, got {type(value).__name__}")
                continue
        values[name] = value
    now = given.get("now")
    try:
        values["now"] = parse_time(now, "input 'now'").isoformat() if now else dt.datetime.now(dt.UTC).isoformat()
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise InputError(f"recipe {recipe.pipeline_id}: " + "; ".join(problems))
    return values
