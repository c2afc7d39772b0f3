"""A domain writes only its own control-plane tables: no module outside the owner builds its ORM rows.

Cross-domain writes go through the owner's service (``yarn_assets.deliverables.service``:
``create_from_signal``, ``create_suggested``, ``request_generation``, ``trigger_now``...), so the
rules of a table (limits, defaults, validation, ids) live in one place. See "Ownership" in
docs/ARCHITECTURE.md. Extend ``OWNERS`` when a domain's tables get the same guarantee.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: ORM class -> the package (path prefix) that may construct its rows.
OWNERS: dict[str, str] = {
    "Deliverable": "yarn_assets/deliverables/",
    "DeliverableVersion": "yarn_assets/deliverables/",
    "DeliverableDelivery": "yarn_assets/deliverables/",
    "DeliverableRunRequest": "yarn_assets/deliverables/",
    "SignalHistory": "yarn_assets/signals/",
}

#: Product code (tests seed rows directly, and the models and migrations define them).
PRODUCT = ("yarn_assets", "sensors", "schedules", "resources", "io_managers", "demo", "scripts", "benchmarks")


def constructions(path: Path) -> list[tuple[str, int]]:
    """``(class, line)`` of every call ``Cls(...)`` / ``models.Cls(...)`` of an owned class in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else None
            if name in OWNERS:
                found.append((name, node.lineno))
    return sorted(found, key=lambda f: f[1])


def test_only_the_owning_domain_constructs_its_rows() -> None:
    offenders = []
    for top in PRODUCT:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            offenders += [f"{rel}:{line} builds {cls} (owner: {OWNERS[cls]}service.py)"
                          for cls, line in constructions(path) if not rel.startswith(OWNERS[cls])]
    assert not offenders, "cross-domain writes must go through the owner's service:\n" + "\n".join(offenders)


def test_the_scan_sees_a_construction(tmp_path: Path) -> None:
    """The detector itself: a bare and a qualified constructor are found, a mere reference is not."""
    src = tmp_path / "x.py"
    src.write_text("from control_plane import models\nfrom control_plane.models import Deliverable\n"
                   "a = Deliverable(id='x')\nb = models.DeliverableRunRequest(id='y')\nc = Deliverable.id\n")
    assert constructions(src) == [("Deliverable", 3), ("DeliverableRunRequest", 4)]
