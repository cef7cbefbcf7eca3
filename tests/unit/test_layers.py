"""The client's layers import one way and each package's ``__all__`` says what it has.

The layers are those of docs/design.md ("Layers"); imports are read from the
source (``TYPE_CHECKING`` and function-level ones included), not executed.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterable, Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "chat2api"

# Higher rows may import lower rows; within a row, only their own package.
LAYERS: list[set[str]] = [
    {"values", "errors", "settings", "logs", "heap", "listen", "connections", "throttle"},
    {"protocol", "sentinel", "store", "net"},
    {"upstream"},
    {"convert", "pool"},
    {"state", "conversation", "links", "startup"},
    {"answering"},
    {"api"},
    {"admin"},
    {"gateway"},
    {"app", "configdoc", "workers"},
    {"cli"},  # also starts the simulator (``chat2api sim``)
    {"__main__"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
BASE = LAYERS[0]
SIMULATOR = "sim"
SIMULATOR_MAY_IMPORT = {"listen"}  # the socket helper both servers use, not client code
SIMULATOR_IMPORTED_BY = {"cli"}


def unit_of(module: str) -> str:
    """The layer unit of a dotted module below ``chat2api``: its package or its file."""
    return module.split(".")[0]


def imports(path: Path) -> Iterator[str]:
    """Modules below ``chat2api`` that ``path`` imports, as dotted names without the prefix."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: Iterable[str] = ()
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name.startswith("chat2api."):
                yield name.removeprefix("chat2api.")


def edges() -> Iterator[tuple[str, str]]:
    """``(importer, imported)`` for every module of the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for imported in imports(path):
            yield importer, imported


def violations(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """Each import that goes up a layer, across a row, or out of the simulator."""
    found: list[str] = []
    for importer, imported in pairs:
        src, dst = unit_of(importer), unit_of(imported)
        if src == dst or src == "__init__" or dst == "__init__":
            continue
        if src == SIMULATOR:
            if dst not in SIMULATOR_MAY_IMPORT:
                found.append(f"{importer} -> {imported}: the simulator imports client code")
            continue
        if dst == SIMULATOR:
            if src not in SIMULATOR_IMPORTED_BY:
                found.append(f"{importer} -> {imported}: the client imports the simulator")
            continue
        if src not in RANK or dst not in RANK:
            found.append(f"{importer} -> {imported}: a module missing from LAYERS")
        elif RANK[dst] > RANK[src] or (RANK[dst] == RANK[src] and src not in BASE):
            found.append(f"{importer} -> {imported}: an upward import")
    return found


def test_no_upward_import() -> None:
    """No module of the client imports a higher layer (or a sibling package of its row)."""
    assert violations(edges()) == []


def test_upward_imports_are_caught() -> None:
    """The check reports an upward import, a sibling import and the simulator using the client."""
    found = violations(
        [
            ("upstream.files", "convert.attachments"),
            ("convert.messages", "pool.lease"),
            ("sim.app", "protocol.events"),
            ("api.chat", "sim.replies"),
            ("api.chat", "answering"),
            ("cli", "sim.server"),
        ]
    )
    assert [line.split(":")[0] for line in found] == [
        "upstream.files -> convert.attachments",
        "convert.messages -> pool.lease",
        "sim.app -> protocol.events",
        "api.chat -> sim.replies",
    ]


def packages() -> list[Path]:
    return sorted(p.parent for p in PACKAGE.glob("*/__init__.py"))


def surface_drift(package: Path, declared: Iterable[str], bound: Iterable[str]) -> list[str]:
    """How ``__all__`` differs from the package's surface.

    A package whose ``__init__`` binds public names is a facade: ``__all__``
    is exactly those names. Otherwise its public surface is its modules.
    """
    exported = {name for name in bound if not name.startswith("_")}
    if not exported:
        exported = {
            p.stem if p.suffix == ".py" else p.name
            for p in package.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
        }
        exported = {name for name in exported if not name.startswith("_")}
    listed = set(declared)
    return [f"{name} not in __all__" for name in sorted(exported - listed)] + [
        f"{name} listed but absent" for name in sorted(listed - exported)
    ]


def test_every_package_lists_its_surface() -> None:
    """Each package's ``__all__`` names exactly what it exports, or else its public modules."""
    drift: dict[str, list[str]] = {}
    for package in packages():
        module = importlib.import_module(f"chat2api.{package.name}")
        declared = getattr(module, "__all__", None)
        assert declared is not None, f"chat2api.{package.name} has no __all__"
        tree = ast.parse((package / "__init__.py").read_text())
        bound = (
            {
                alias.asname or alias.name
                for node in tree.body
                if isinstance(node, ast.ImportFrom) and node.module and "chat2api" in node.module
                for alias in node.names
            }
            | {
                node.name
                for node in tree.body
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            }
            | {
                target.id
                for node in tree.body
                if isinstance(node, ast.Assign)
                for target in node.targets
                if isinstance(target, ast.Name) and target.id != "__all__"
            }
        )
        problems = surface_drift(package, declared, bound)
        if problems:
            drift[package.name] = problems
    assert drift == {}


def test_surface_drift_is_caught() -> None:
    """A module or exported name left out of ``__all__``, and a name listed but gone, fail."""
    modules = list(importlib.import_module("chat2api.upstream").__all__)
    assert surface_drift(PACKAGE / "upstream", [*modules[1:], "gone"], []) == [
        f"{modules[0]} not in __all__",
        "gone listed but absent",
    ]
    names = list(importlib.import_module("chat2api.protocol").__all__)
    assert surface_drift(PACKAGE / "protocol", names[1:], names) == [f"{names[0]} not in __all__"]
