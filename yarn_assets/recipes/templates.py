"""``{{step_id.field}}`` templates, resolved at run time against the outputs of finished steps.

Rules (the source system's table, kept exactly):

* ``{{step.a.b.c}}`` walks nested objects; ``{{step.items[*].text}}`` maps the rest of the path
  over an array (a list comprehension); ``{{step.items[0]}}`` indexes one element.
* A string that is *only* a template keeps the value's type (list, dict, number, bool, null);
  a template embedded in a longer string is formatted (strings as they are, everything else as JSON).
* Lists and dicts are resolved recursively. ``{"from": X}`` is X; ``{"or": [A, B, ...]}`` is the
  first alternative that resolves to a non-null value (a literal counts).
* ``{{input.x}}`` is a recipe input; inside a loop, ``{{<loop_variable>.x}}`` is the current item.
* Errors name what exists: ``Step 'X' not found`` (with the steps that exist and a ``depends_on``
  hint), ``Field 'Y' not found`` (with the fields that exist), ``Cannot apply [*] to non-array``.

Resolution is one pass: text that comes *out* of a step is never resolved again, so content that
happens to contain ``{{...}}`` (a message, a web page) cannot read other steps' data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_SEGMENT = re.compile(rf"\.({_IDENT})|\[(\*|\d+)\]")
_ROOT = re.compile(_IDENT)

#: roots that are not steps
INPUT_ROOT = "input"


class TemplateError(ValueError):
    """A template that cannot be resolved; the message says why and what exists instead."""

    def __init__(self, message: str, template: str = "") -> None:
        super().__init__(message)
        self.template = template


class TemplateSyntaxError(TemplateError):
    pass


class StepNotFound(TemplateError):
    def __init__(self, step: str, available: list[str], template: str = "", *, hint: str | None = None) -> None:
        shown = ", ".join(available) if available else "(none yet)"
        advice = hint or f'add depends_on: ["{step}"] if it runs before this step, or fix the step id'
        super().__init__(f"Step '{step}' not found (in {{{{{template}}}}}); steps that exist: {shown}; {advice}",
                         template)
        self.step = step
        self.available = available


class FieldNotFound(TemplateError):
    def __init__(self, field: str, where: str, available: list[str], template: str = "", note: str = "") -> None:
        shown = ", ".join(available) if available else "(none)"
        super().__init__(
            f"Field '{field}' not found at '{where}' (in {{{{{template}}}}}); fields that exist: {shown}"
            f"{'; ' + note if note else ''}", template)
        self.field = field
        self.available = available


class NotAnArray(TemplateError):
    def __init__(self, where: str, kind: str, template: str = "") -> None:
        super().__init__(f"Cannot apply [*] to non-array at '{where}' (in {{{{{template}}}}}): it is {kind}", template)


class IndexOutOfRange(TemplateError):
    def __init__(self, where: str, index: int, length: int, template: str = "") -> None:
        super().__init__(f"Index [{index}] out of range at '{where}' (in {{{{{template}}}}}): the array has "
                         f"{length} item{'s' if length != 1 else ''}", template)


class NoAlternative(TemplateError):
    """None of an ``or:`` list's alternatives resolved."""


@dataclass(frozen=True)
class Ref:
    """One template reference: its root (a step id, ``input`` or a loop variable) and where it was."""

    root: str
    path: str
    in_or: bool  # inside an ``or:`` list: the step is optional for this reference


Segment = tuple[str, str | int | None]  # ("field", name) | ("splat", None) | ("index", n)


def parse(expr: str) -> tuple[str, list[Segment]]:
    """``step.a[*].b`` -> ("step", [("field","a"), ("splat",None), ("field","b")])."""
    text = expr.strip()
    m = _ROOT.match(text)
    if not m:
        raise TemplateSyntaxError(f"bad template {{{{{expr}}}}}: it must start with a step id, 'input' or a loop "
                                  "variable", expr)
    pos = m.end()
    segments: list[Segment] = []
    while pos < len(text):
        s = _SEGMENT.match(text, pos)
        if not s:
            raise TemplateSyntaxError(f"bad template {{{{{expr}}}}} at character {pos + 1}: expected '.field', "
                                      "'[*]' or '[n]'", expr)
        if s.group(1) is not None:
            segments.append(("field", s.group(1)))
        elif s.group(2) == "*":
            segments.append(("splat", None))
        else:
            segments.append(("index", int(s.group(2))))
        pos = s.end()
    return m.group(0), segments


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def _navigate(value: Any, segments: list[Segment], where: str, template: str) -> Any:
    for i, (kind, arg) in enumerate(segments):
        if kind == "splat":
            if not isinstance(value, list | tuple):
                raise NotAnArray(where, _kind(value), template)
            rest = segments[i + 1:]
            return [_navigate(item, rest, f"{where}[{n}]", template) for n, item in enumerate(value)]
        if kind == "index":
            assert isinstance(arg, int)
            if not isinstance(value, list | tuple):
                raise FieldNotFound(f"[{arg}]", where, [], template, note=f"'{where}' is {_kind(value)}, not an array")
            if arg >= len(value):
                raise IndexOutOfRange(where, arg, len(value), template)
            value = value[arg]
            where = f"{where}[{arg}]"
            continue
        assert isinstance(arg, str)
        if isinstance(value, Mapping):
            if arg not in value:
                raise FieldNotFound(arg, where, sorted(str(k) for k in value), template)
            value = value[arg]
        elif isinstance(value, list | tuple):
            raise FieldNotFound(arg, where, [], template,
                                note=f"'{where}' is an array: use '{where}[*].{arg}' to take it from every item")
        else:
            raise FieldNotFound(arg, where, [], template, note=f"'{where}' is {_kind(value)}, not an object")
        where = f"{where}.{arg}"
    return value


def resolve_path(expr: str, scope: Mapping[str, Any], *, missing_hint: Mapping[str, str] | None = None) -> Any:
    """The value of one template expression (without braces) in ``scope``."""
    root, segments = parse(expr)
    if root not in scope:
        hint = (missing_hint or {}).get(root)
        raise StepNotFound(root, sorted(k for k in scope if not k.startswith("_")), expr.strip(), hint=hint)
    return _navigate(scope[root], segments, root, expr.strip())


def format_value(value: Any) -> str:
    """How a value reads when embedded in a longer string."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, list | tuple | Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def is_fallback(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"or"} and isinstance(value["or"], list)


def is_binding(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"from"}


def resolve(value: Any, scope: Mapping[str, Any], *, missing_hint: Mapping[str, str] | None = None) -> Any:
    """Resolve every template in ``value`` (recursively) against ``scope``."""
    if isinstance(value, str):
        whole = TEMPLATE.fullmatch(value)
        if whole:
            return resolve_path(whole.group(1), scope, missing_hint=missing_hint)
        if "{{" not in value:
            return value
        return TEMPLATE.sub(lambda m: format_value(resolve_path(m.group(1), scope, missing_hint=missing_hint)), value)
    if is_binding(value):
        return resolve(value["from"], scope, missing_hint=missing_hint)
    if is_fallback(value):
        problems = []
        for alternative in value["or"]:
            try:
                got = resolve(alternative, scope, missing_hint=missing_hint)
            except (StepNotFound, FieldNotFound, IndexOutOfRange, NotAnArray) as exc:
                problems.append(str(exc))
                continue
            if got is not None:
                return got
            problems.append(f"{alternative!r} resolved to null")
        raise NoAlternative("none of the or: alternatives resolved: " + " | ".join(problems))
    if isinstance(value, Mapping):
        return {k: resolve(v, scope, missing_hint=missing_hint) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(v, scope, missing_hint=missing_hint) for v in value]
    return value


def references(value: Any, *, in_or: bool = False) -> Iterator[Ref]:
    """Every template reference in ``value`` (for the dependency graph and validation)."""
    if isinstance(value, str):
        for m in TEMPLATE.finditer(value):
            root, _ = parse(m.group(1))
            yield Ref(root, m.group(1).strip(), in_or)
    elif is_fallback(value):
        for alternative in value["or"]:
            yield from references(alternative, in_or=True)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from references(v, in_or=in_or)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from references(v, in_or=in_or)


def has_template(value: Any) -> bool:
    return next(references(value), None) is not None
