"""Recipe YAML with the line and column of every node, so errors point into the file.

Limits (settings ``recipe_max_file_bytes``, ``recipe_max_yaml_depth``): a file over the size or
nesting limit is refused before it is parsed further; duplicate keys are an error (plain YAML
silently keeps the last one). Only the safe YAML subset is accepted (no Python tags).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]

#: nodes after alias expansion (a "billion laughs" file is small on disk)
MAX_NODES = 50_000


class SourceError(ValueError):
    """The file cannot be read as a recipe at all (too big, too deep, not YAML, not a mapping)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(message + where)
        self.line, self.column = line, column


@dataclass
class RecipeSource:
    """Parsed YAML plus a map from each node's path to its (line, column), both 1-based."""

    data: dict[str, Any]
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    path: str | None = None

    def position(self, loc: Sequence[str | int]) -> tuple[int, int] | None:
        """The position of the deepest existing node along ``loc`` (pydantic error locations may
        carry union tags that are not in the file: those parts are skipped)."""
        best = self.positions.get(())
        current: Loc = ()
        for part in loc:
            candidate = (*current, part)
            if candidate in self.positions:
                current = candidate
                best = self.positions[current]
        return best


def _construct(node: yaml.Node, loc: Loc, positions: dict[Loc, tuple[int, int]], depth: int, max_depth: int,
               loader: yaml.SafeLoader) -> Any:
    if depth > max_depth:
        raise SourceError(f"the recipe nests deeper than {max_depth} levels (recipe_max_yaml_depth)",
                          node.start_mark.line + 1, node.start_mark.column + 1)
    positions[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    expected = {yaml.MappingNode: "tag:yaml.org,2002:map", yaml.SequenceNode: "tag:yaml.org,2002:seq"}.get(type(node))
    if expected is not None and node.tag != expected:
        raise SourceError(f"unsupported YAML: tag {node.tag!r} (only plain YAML data is accepted)",
                          node.start_mark.line + 1, node.start_mark.column + 1)
    if len(positions) > MAX_NODES:  # aliases can expand a small file into a huge tree
        raise SourceError(f"the recipe expands to more than {MAX_NODES:,} YAML nodes (aliases?)")
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise SourceError("mapping keys must be plain scalars", key_node.start_mark.line + 1,
                                  key_node.start_mark.column + 1)
            if key in out:
                raise SourceError(f"duplicate key {key!r}", key_node.start_mark.line + 1,
                                  key_node.start_mark.column + 1)
            out[key] = _construct(value_node, (*loc, key), positions, depth + 1, max_depth, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(child, (*loc, i), positions, depth + 1, max_depth, loader)
                for i, child in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def parse_text(text: str, *, path: str | None = None, max_bytes: int = 262_144, max_depth: int = 32) -> RecipeSource:
    size = len(text.encode("utf-8", errors="replace"))
    if size > max_bytes:
        raise SourceError(f"the recipe file is {size:,} bytes; the limit is {max_bytes:,} (recipe_max_file_bytes)")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise SourceError(f"not valid YAML: {exc.problem}", mark.line + 1 if mark else None,
                          mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise SourceError(f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if node is None:
        raise SourceError("the recipe file is empty")
    positions: dict[Loc, tuple[int, int]] = {}
    try:
        data = _construct(node, (), positions, 0, max_depth, yaml.SafeLoader(""))
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise SourceError(f"unsupported YAML: {exc.problem}", mark.line + 1 if mark else None,
                          mark.column + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise SourceError("a recipe is a YAML mapping (version, pipeline_id, steps, ...)", 1, 1)
    return RecipeSource(data=data, positions=positions, path=path)


def read_file(path: str | Path, *, max_bytes: int = 262_144, max_depth: int = 32) -> RecipeSource:
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise SourceError(f"cannot read {p}: {exc.strerror}") from None
    if size > max_bytes:
        raise SourceError(f"{p.name} is {size:,} bytes; the limit is {max_bytes:,} (recipe_max_file_bytes)")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{p.name} is not UTF-8 text (byte {exc.start})") from None
    return parse_text(text, path=str(p), max_bytes=max_bytes, max_depth=max_depth)
