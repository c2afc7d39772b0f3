"""The step graph of a recipe: nested steps flattened into nodes with their dependencies.

* **hard** dependencies: ``depends_on`` and every template reference outside an ``or:`` list. If a
  hard dependency did not run (skipped branch, child never activated), this step is skipped too.
* **soft** dependencies: steps referenced only inside ``or:`` fallbacks; the step waits for them but
  runs without them.
* **activators**: what turns on a step that does not run by default: ``is_child`` steps named by a
  ``check``/route ``run``/``on_error.fallback_step``, steps of a conditional branch, steps defined
  inside a route. A parallel group's members inherit the group's dependencies and activators.
* Loop bodies are their own scope: their steps may use the outer steps and the loop variable;
  outside the loop only the loop's collected ``results`` exist.

Problems found while building (unknown steps, cycles, unreachable children) are level-3
(dependency) validation errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from yarn_assets.recipes import dsl
from yarn_assets.recipes.templates import INPUT_ROOT, TemplateError, references

#: fields of a step that hold other steps or routing, not the step's own templates
_NESTED = {"steps", "branches", "on_success", "check", "condition", "id", "type", "depends_on", "on_error"}

#: step types allowed inside a loop body
LOOP_BODY_TYPES = (dsl.FunctionStep, dsl.LLMFlowStep, dsl.ReadAssetStep)


@dataclass
class Problem:
    level: str
    loc: tuple[Any, ...]
    message: str
    step: str | None = None


@dataclass
class Node:
    step: Any
    loc: tuple[Any, ...]
    scope: str | None = None  # the loop whose body holds this step
    parent: str | None = None  # the enclosing group/conditional/route owner
    hard: list[str] = field(default_factory=list)
    soft: list[str] = field(default_factory=list)
    activators: list[str] = field(default_factory=list)  # node ids that can activate this one
    targets: list[str] = field(default_factory=list)  # node ids this one can activate
    members: list[str] = field(default_factory=list)  # parallel group members / loop body

    @property
    def id(self) -> str:
        return str(self.step.id)

    @property
    def kind(self) -> str:
        return "read_asset" if isinstance(self.step, dsl.ReadAssetStep) else str(self.step.type)


def _add(seq: list[str], item: str) -> None:
    if item not in seq:
        seq.append(item)


def step_templates(step: Any) -> dict[str, Any]:
    """The parts of a step that may hold templates (its own fields, not nested steps)."""
    return {k: v for k, v in step.model_dump(mode="python", exclude_none=True).items() if k not in _NESTED}


def expression_sources(step: Any) -> list[str]:
    """Expressions evaluated for this step: its condition and route matches."""
    out = []
    if isinstance(step, dsl.ConditionalStep):
        out.append(step.condition.expression)
    if step.on_success is not None:
        out.extend(r.match.expression for r in step.on_success.routes if r.match is not None)
    return out


@dataclass
class Plan:
    recipe: dsl.Recipe
    nodes: dict[str, Node]
    order: list[str]  # top-level scope, topological
    loop_order: dict[str, list[str]]  # loop id -> body ids, topological
    problems: list[Problem]

    def top(self) -> list[Node]:
        return [self.nodes[i] for i in self.order]

    def body(self, loop_id: str) -> list[Node]:
        return [self.nodes[i] for i in self.loop_order.get(loop_id, [])]

    def validation_checks(self) -> list[tuple[str, str, dsl.CheckSpec]]:
        return [(n.id, name, spec) for n in self.top() if isinstance(n.step, dsl.ValidationStep)
                for name, spec in n.step.checks.items() if spec.enabled]


def build_plan(recipe: dsl.Recipe) -> Plan:
    problems: list[Problem] = []
    nodes: dict[str, Node] = {}

    def problem(loc: tuple[Any, ...], message: str, step: str | None = None) -> None:
        problems.append(Problem("dependency", loc, message, step))

    # ---- 1. collect every step with its scope and parent
    def collect(steps: list[Any], loc: tuple[Any, ...], scope: str | None, parent: str | None,
                activator: str | None, inherited: list[str]) -> None:
        for i, step in enumerate(steps):
            here = (*loc, i)
            if isinstance(step, dsl.UnsupportedStep):
                continue
            if step.id in nodes or step.id == INPUT_ROOT:
                problem((*here, "id"), f"duplicate step id '{step.id}'"
                        + (" ('input' is reserved for recipe inputs)" if step.id == INPUT_ROOT else ""), step.id)
                continue
            node = Node(step=step, loc=here, scope=scope, parent=parent)
            for dep in inherited:
                _add(node.hard, dep)
            if activator is not None:
                _add(node.activators, activator)
            nodes[step.id] = node
            if scope is not None and not isinstance(step, LOOP_BODY_TYPES):
                problem((*here, "type"), f"step '{step.id}' ({step.type}) cannot run inside loop '{scope}': loop "
                        "bodies hold function, llm_flow, read_asset and data_transform steps", step.id)
            if scope is not None and (step.is_child or step.check or step.on_success or
                                      (step.on_error and step.on_error.fallback_step)):
                problem(here, f"step '{step.id}' inside loop '{scope}' cannot route (is_child, check, on_success, "
                        "fallback_step): put the routing outside the loop", step.id)
            if isinstance(step, dsl.ConditionalStep):
                collect(step.branches.if_true.steps, (*here, "branches", "if_true", "steps"), scope, step.id,
                        step.id, [])
                collect(step.branches.if_false.steps, (*here, "branches", "if_false", "steps"), scope, step.id,
                        step.id, [])
                node.members = [s.id for s in (*step.branches.if_true.steps, *step.branches.if_false.steps)]
            elif isinstance(step, dsl.ParallelGroupStep):
                collect(step.steps, (*here, "steps"), scope, step.id, activator,
                        [*inherited, *step.depends_on])
                node.members = [s.id for s in step.steps]
            elif isinstance(step, dsl.LoopStep):
                if scope is not None:
                    problem(here, f"loop '{step.id}' is inside loop '{scope}': loops do not nest", step.id)
                collect(step.steps, (*here, "steps"), step.id, step.id, None, [])
                node.members = [s.id for s in step.steps]
            if step.on_success is not None:
                for r, route in enumerate(step.on_success.routes):
                    collect(route.steps, (*here, "on_success", "routes", r, "steps"), scope, step.id, step.id, [])

    collect(recipe.steps, ("steps",), None, None, None, [])

    # members of a group activated as a whole inherit the group's activators
    for node in nodes.values():
        if isinstance(node.step, dsl.ParallelGroupStep):
            for m in node.members:
                for a in node.activators:
                    _add(nodes[m].activators, a)

    # ---- 2. routing targets (check / routes / fallback / branches)
    def target(owner: Node, target_id: str, loc: tuple[Any, ...], why: str) -> None:
        tgt = nodes.get(target_id)
        if tgt is None:
            problem(loc, f"{why} of step '{owner.id}' names step '{target_id}', which does not exist; steps that "
                    f"exist: {', '.join(sorted(nodes))}", owner.id)
            return
        if not tgt.step.is_child:
            problem(loc, f"{why} of step '{owner.id}' names step '{target_id}', which is not is_child: true (a step "
                    "that only runs when activated must say so)", owner.id)
        if tgt.scope != owner.scope:
            problem(loc, f"{why} of step '{owner.id}' names step '{target_id}' in another loop scope", owner.id)
        _add(owner.targets, target_id)
        _add(tgt.activators, owner.id)
        for m in tgt.members if isinstance(tgt.step, dsl.ParallelGroupStep) else []:
            _add(nodes[m].activators, owner.id)

    for node in list(nodes.values()):
        step = node.step
        for c, rule in enumerate(step.check):
            for t in rule.run:
                target(node, t, (*node.loc, "check", c, "run"), "check")
        if step.on_success is not None:
            for r, route in enumerate(step.on_success.routes):
                for t in route.run:
                    target(node, t, (*node.loc, "on_success", "routes", r, "run"), "route")
                for s in route.steps:
                    _add(node.targets, s.id)
        if step.on_error is not None and step.on_error.fallback_step:
            target(node, step.on_error.fallback_step, (*node.loc, "on_error", "fallback_step"),
                   "on_error.fallback_step")
        if isinstance(step, dsl.ConditionalStep):
            for s in node.members:
                _add(node.targets, s)

    for node in nodes.values():
        if node.step.is_child and not node.activators:
            problem((*node.loc, "is_child"), f"is_child step '{node.id}' is never activated: no check, route or "
                    "on_error.fallback_step names it", node.id)

    # ---- 3. dependencies from depends_on and templates
    loop_vars: dict[str, str] = {n.id: n.step.loop_variable for n in nodes.values() if isinstance(n.step, dsl.LoopStep)}
    body_of = {m: n.id for n in nodes.values() if isinstance(n.step, dsl.LoopStep) for m in n.members}

    def dep(node: Node, ref_id: str, loc: tuple[Any, ...], *, soft: bool, explicit: bool) -> None:
        if ref_id == node.id:
            if not explicit:
                return  # route expressions may read the step's own output
            problem(loc, f"step '{node.id}' depends on itself", node.id)
            return
        other = nodes.get(ref_id)
        if other is None:
            shown = ", ".join(sorted(i for i, n in nodes.items() if n.scope in (None, node.scope)))
            problem(loc, f"Step '{ref_id}' not found; steps that exist: {shown}; "
                    f"{'fix the depends_on entry' if explicit else 'fix the step id in the template'}", node.id)
            return
        if other.scope is not None and other.scope != node.scope:
            problem(loc, f"step '{ref_id}' runs inside loop '{other.scope}': outside the loop use "
                    f"{{{{{other.scope}.results[*].{ref_id}...}}}}", node.id)
            return
        if node.scope is not None and other.scope is None:
            # an outer step used inside a loop body: the loop's fan-out waits for it
            loop = nodes[node.scope]
            if soft:
                _add(loop.soft, ref_id)
            else:
                _add(loop.hard, ref_id)
            return
        if isinstance(other.step, dsl.ParallelGroupStep) and node.id in other.members:
            problem(loc, f"step '{node.id}' is a member of group '{ref_id}' and cannot depend on it", node.id)
            return
        if soft:
            if ref_id not in node.hard:
                _add(node.soft, ref_id)
        else:
            if ref_id in node.soft:
                node.soft.remove(ref_id)
            _add(node.hard, ref_id)

    for node in nodes.values():
        step = node.step
        allowed_roots = {INPUT_ROOT}
        if node.scope is not None:
            allowed_roots.add(loop_vars[node.scope])
        for d, dep_id in enumerate(step.depends_on):
            dep(node, dep_id, (*node.loc, "depends_on", d), soft=False, explicit=True)
        try:
            refs = list(references(step_templates(step)))
            for expr in expression_sources(step):
                refs.extend(references(expr))
        except TemplateError as exc:
            problem(node.loc, f"step '{node.id}': {exc}", node.id)
            continue
        for ref in refs:
            if ref.root in allowed_roots:
                continue
            if ref.root in loop_vars.values() and node.scope is None and ref.root not in nodes:
                problem(node.loc, f"step '{node.id}' uses {{{{{ref.path}}}}} outside the loop that defines "
                        f"'{ref.root}'", node.id)
                continue
            if isinstance(step, dsl.LoopStep) and ref.root in node.members:
                problem(node.loc, f"loop '{node.id}' iterates over its own body step '{ref.root}'", node.id)
                continue
            dep(node, ref.root, node.loc, soft=ref.in_or, explicit=False)

    # a group's join waits for its members; a conditional's branches hang off the conditional
    for node in nodes.values():
        if isinstance(node.step, dsl.ParallelGroupStep):
            for m in node.members:
                _add(node.soft, m)

    # ---- 4. cycles (over every edge: hard, soft, activation) and topological order
    def edges(n: Node) -> Iterable[str]:
        yield from n.hard
        yield from n.soft
        yield from n.activators

    order = _toposort(nodes, edges, problem)
    top = [i for i in order if nodes[i].scope is None]
    loops = {lid: [i for i in order if nodes[i].scope == lid] for lid in loop_vars}
    del body_of
    return Plan(recipe=recipe, nodes=nodes, order=top, loop_order=loops, problems=problems)


def _toposort(nodes: dict[str, Node], edges: Any, problem: Any) -> list[str]:
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(nodes, WHITE)
    order: list[str] = []
    stack: list[str] = []
    reported: set[frozenset[str]] = set()

    def visit(i: str) -> None:
        color[i] = GREY
        stack.append(i)
        for j in edges(nodes[i]):
            if j not in nodes:
                continue
            if color[j] == GREY:
                cycle = [*stack[stack.index(j):], j]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    problem(nodes[j].loc, "dependency cycle: " + " -> ".join(cycle), j)
            elif color[j] == WHITE:
                visit(j)
        stack.pop()
        color[i] = BLACK
        order.append(i)

    for i in nodes:
        if color[i] == WHITE:
            visit(i)
    return order
