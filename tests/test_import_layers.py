"""Imports only point down (docs/ARCHITECTURE.md, "The map").

Every product module's imports are read with ``ast`` (top-level, function-local and
``TYPE_CHECKING`` imports alike: a lazy import hides a dependency, it does not remove it) and
folded into a graph of packages (package = directory). The test fails on any cycle between
packages and on any import from a lower layer into a higher one, and prints what it found.

Run ``python tests/test_import_layers.py`` to list every cycle and upward import.
"""

from __future__ import annotations

import ast
import itertools
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("yarn_assets", "resources", "sensors", "schedules", "io_managers", "control_plane", "demo")
SKIP_DIRS = {"__pycache__", "versions"}  # Alembic revision files are data, not code

# Layers, highest first. A module may import its own layer or any layer below it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("assembly", ("yarn_assets", "demo")),
    ("triggers", ("sensors", "schedules")),
    ("serving", ("yarn_assets.cli", "yarn_assets.api", "yarn_assets.mcp")),
    ("domains", ("yarn_assets.ingest", "yarn_assets.signals", "yarn_assets.deliverables", "yarn_assets.memory",
                 "yarn_assets.people", "yarn_assets.ops", "yarn_assets.recipes", "yarn_assets.defs")),
    ("core", ("yarn_assets.core",)),
    ("resources", ("resources",)),
    ("storage", ("io_managers", "control_plane")),
)


def layer_of(module: str) -> int:
    """Rank of the longest layer prefix that owns ``module`` (0 = top)."""
    best, rank = -1, len(LAYERS)
    for index, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    return rank


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*.py")):
            if SKIP_DIRS.intersection(path.relative_to(ROOT).parts):
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Absolute names ``module`` imports (``from a import b`` yields ``a.b``; resolved to a module later)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if _is_package(path) else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The product module ``name`` refers to (longest existing prefix), or None for third-party code."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _package(module: str, modules: dict[str, Path]) -> str:
    return module if _is_package(modules[module]) else module.rpartition(".")[0] or module


def import_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], list[str]]]:
    """Package -> packages it imports, and for each edge the ``file:line -> module`` evidence."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    evidence: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, path in modules.items():
        source = _package(module, modules)
        graph[source]
        for name, line in _imported(module, path):
            target_module = _resolve(name, modules)
            if target_module is None:
                continue
            target = _package(target_module, modules)
            if target == source:
                continue
            graph[source].add(target)
            evidence[(source, target)].append(f"{path.relative_to(ROOT)}:{line} -> {target_module}")
    return graph, evidence


def _related(a: str, b: str) -> bool:
    """``a`` is ``b``'s ancestor or descendant package (one subtree)."""
    return a.startswith(b + ".") or b.startswith(a + ".")


def collapsed(graph: dict[str, set[str]], depth: int) -> dict[str, set[str]]:
    """The graph with every package cut to ``depth`` levels below its top folder (``yarn_assets``
    counts one extra: ``yarn_assets.ingest`` is depth 1), without edges inside one subtree."""

    def cut(package: str) -> str:
        parts = package.split(".")
        return ".".join(parts[: depth + (parts[0] == "yarn_assets")])

    out: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.items():
        out[cut(source)]
        for target in targets:
            a, b = cut(source), cut(target)
            if a != b and not _related(a, b):
                out[a].add(b)
    return out


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's SCCs with more than one package (each is at least one import cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def simple_cycles(graph: dict[str, set[str]], component: list[str], limit: int = 200) -> list[list[str]]:
    """Elementary cycles inside one component (Johnson-style DFS from each start, capped)."""
    members = set(component)
    cycles: list[list[str]] = []
    order = sorted(component)
    for i, start in enumerate(order):
        allowed = set(order[i:])

        def walk(node: str, path: list[str], seen: set[str], start: str = start, allowed: set[str] = allowed) -> None:
            for nxt in sorted(graph.get(node, ())):
                if len(cycles) >= limit or nxt not in members or nxt not in allowed:
                    continue
                if nxt == start:
                    cycles.append([*path, start])
                elif nxt not in seen:
                    walk(nxt, [*path, nxt], seen | {nxt})

        walk(start, [start], {start})
    return cycles


#: Upward imports still being removed (file -> module), each with the reason; must shrink to nothing.
PENDING: dict[tuple[str, str], str] = {
    ("yarn_assets/cli/core.py", "yarn_assets.definitions"): "CLI runs jobs in-process until it submits runs",
    ("yarn_assets/cli/deliverables.py", "yarn_assets.definitions"): "CLI runs jobs in-process until it submits runs",
    ("yarn_assets/cli/signals.py", "yarn_assets.definitions"): "CLI runs jobs in-process until it submits runs",
}


def _pending(line: str) -> bool:
    where, _, module = line.partition(" -> ")
    return (where.rsplit(":", 1)[0], module) in PENDING


def upward_imports(evidence: dict[tuple[str, str], list[str]]) -> list[str]:
    """Imports from a lower layer into a higher one (e.g. a domain importing ``sensors``)."""
    found = []
    for (source, target), lines in sorted(evidence.items()):
        if layer_of(target) < layer_of(source):
            found.extend(f"{LAYERS[layer_of(source)][0]} -> {LAYERS[layer_of(target)][0]}: {line}" for line in lines
                         if not _pending(line))
    return found


def _witness(evidence: dict[tuple[str, str], list[str]], a: str, b: str) -> str:
    """One ``file:line -> module`` behind the (possibly collapsed) edge a -> b."""
    for (source, target), lines in sorted(evidence.items()):
        if (source == a or source.startswith(a + ".")) and (target == b or target.startswith(b + ".")):
            return lines[0]
    return "?"


def report() -> tuple[list[str], list[str]]:
    """Every package cycle (at each folder depth) with the import behind each hop, and every upward import."""
    graph, evidence = import_graph()
    depth = max(len(p.split(".")) for p in graph)
    cycles: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for level in range(1, depth + 1):
        view = collapsed(graph, level)
        for component in strongly_connected(view):
            for cycle in simple_cycles(view, component):
                if tuple(cycle) in seen:
                    continue
                seen.add(tuple(cycle))
                hops = [f"  {a} -> {b}   ({_witness(evidence, a, b)})" for a, b in itertools.pairwise(cycle)]
                cycles.append(" -> ".join(cycle) + "\n" + "\n".join(hops))
    return cycles, upward_imports(evidence)


def test_no_import_cycle_between_packages() -> None:
    cycles, _ = report()
    assert not cycles, f"{len(cycles)} package import cycle(s):\n" + "\n".join(cycles)


def test_imports_only_point_down() -> None:
    _, upward = report()
    assert not upward, f"{len(upward)} upward import(s):\n" + "\n".join(upward)


def test_checker_sees_a_cycle_and_an_upward_import() -> None:
    """The checker itself: a two-package loop and a domain -> sensors import are both reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert simple_cycles(graph, ["a", "b", "c"]) == [["a", "b", "c", "a"]]
    evidence = {("yarn_assets.ingest", "sensors"): ["x.py:1 -> sensors.ingest"],
                ("sensors", "yarn_assets.ingest"): ["y.py:1 -> yarn_assets.ingest.assets"],
                ("resources", "yarn_assets.memory"): ["z.py:1 -> yarn_assets.memory.mailer"]}
    upward = upward_imports(evidence)
    assert any("domains -> triggers" in line for line in upward)
    assert any("resources -> domains" in line for line in upward)
    assert not any("y.py" in line for line in upward)


if __name__ == "__main__":
    found_cycles, found_upward = report()
    print(f"{len(found_cycles)} package cycle(s)")
    print("\n".join(found_cycles))
    print(f"\n{len(found_upward)} upward import(s)")
    print("\n".join(found_upward))
