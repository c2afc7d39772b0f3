"""Conditions for ``conditional`` steps, ``on_success.routes`` and legacy ``check:`` blocks.

An expression is one Python-like boolean expression (``{{plan.score}} > 0.75 and not {{x.flag}}``)
evaluated by ``simpleeval`` (no attribute dunders, no imports, no calls beyond a short whitelist).
Templates are *bound as values*, never pasted into the text, so a string coming out of a step
cannot change the expression. ``true``/``false``/``null`` are accepted beside Python's spellings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import simpleeval

from yarn_assets.recipes.templates import TEMPLATE, resolve_path

FUNCTIONS = {"len": len, "min": min, "max": max, "sum": sum, "any": any, "all": all, "abs": abs, "round": round,
             "lower": lambda s: str(s).lower(), "contains": lambda a, b: b in a}
LITERALS = {"true": True, "false": False, "null": None, "none": None}


class ExpressionError(ValueError):
    """An expression that does not parse or cannot be evaluated (the message names it)."""


def _evaluator(names: Mapping[str, Any]) -> simpleeval.EvalWithCompoundTypes:
    return simpleeval.EvalWithCompoundTypes(names={**LITERALS, **names}, functions=dict(FUNCTIONS))


def bind(expression: str) -> tuple[str, dict[str, str]]:
    """Replace each ``{{...}}`` with a variable name: ('_t0 > 0.75', {'_t0': 'plan.score'})."""
    bound: dict[str, str] = {}

    def sub(m: Any) -> str:
        name = f"_t{len(bound)}"
        bound[name] = m.group(1)
        return name

    return TEMPLATE.sub(sub, expression), bound


def check_syntax(expression: str) -> None:
    """Raise :class:`ExpressionError` when the expression does not parse (validation time)."""
    import ast

    text, _ = bind(expression)
    try:
        ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"expression {expression!r} does not parse: {exc.msg}") from None


def evaluate(expression: str, scope: Mapping[str, Any], names: Mapping[str, Any] | None = None) -> Any:
    """The value of ``expression``; templates resolve against ``scope`` (steps, input, loop item)."""
    text, bound = bind(expression)
    values = {name: resolve_path(path, scope) for name, path in bound.items()}
    try:
        return _evaluator({**(names or {}), **values}).eval(text)
    except simpleeval.InvalidExpression as exc:
        raise ExpressionError(f"expression {expression!r}: {exc}") from None
    except (TypeError, ValueError, ZeroDivisionError, KeyError, IndexError) as exc:
        raise ExpressionError(f"expression {expression!r} failed: {type(exc).__name__}: {exc}") from None


def truthy(expression: str, scope: Mapping[str, Any], names: Mapping[str, Any] | None = None) -> bool:
    return bool(evaluate(expression, scope, names))


def path_exists(output: Mapping[str, Any], path: str) -> bool:
    """Legacy ``exists: a.b`` / ``not_exists: a.b``: the path is present and not empty/null."""
    value: Any = output
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    return value not in (None, "", [], {})
