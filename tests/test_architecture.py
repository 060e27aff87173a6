"""The layering of ``recgoat_cli`` (docs/architecture.md), checked on the source with ``ast``.

A unit is a folder of the package (``stages``) or a module at its top (``limits`` for ``limits.py``,
``__init__`` for the package itself). Every import counts, also one inside a function: a lazy import is still a
dependency, it only loads later.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO_ROOT  # tests/ is on sys.path under pytest

PACKAGE = REPO_ROOT / "recgoat_cli"

#: top to bottom: a unit imports units of its own layer or of a lower one, never of a higher one
LAYERS: list[set[str]] = [
    {"__main__", "cli"},
    {"stages"},
    {"train"},
    {"eval", "data", "encoders", "export"},
    {"graphs", "model", "artifacts", "limits"},
    {"topk"},
    {"config", "presets", "distributed", "errors", "defaults", "__init__"},
]

#: what each unit may import from the package besides itself; None: every unit of a lower layer (and its own)
MAY_IMPORT: dict[str, set[str] | None] = {
    "__main__": {"cli"},
    "cli": None,
    "stages": None,
    "train": {"data", "model", "distributed", "errors"},
    "eval": {"distributed", "topk", "errors"},  # topk: the shared exact top-k (issue 19)
    "data": {"artifacts", "limits", "errors", "__init__"},
    "encoders": {"artifacts", "limits", "errors", "data", "defaults"},  # data: data/layout.py, the dataset's file names (issue 19)
    "export": {"errors"},  # the TorchScript scorer: tensors in, a scripted module out
    "graphs": {"topk", "errors", "defaults"},  # defaults: the --memory-budget default the tiles fall back to
    "model": {"graphs", "errors"},
    "artifacts": {"errors", "__init__"},
    "limits": {"graphs", "errors"},
    "topk": set(),
    "config": {"defaults"},
    "defaults": set(),
    "presets": {"errors"},
    "distributed": {"errors"},
    "errors": set(),
    "__init__": set(),
}

#: imports that break a rule today, with what removes them; the test fails once one is gone, so that it is
#: removed from here too
KNOWN_UPWARD: dict[tuple[str, str], str] = {}

#: the command-line toolkit belongs to the thin cli/ layer
CLI_ONLY = {"typer", "click", "rich"}

#: model/, graphs/ and eval/ take tensors and plain arguments: no files, no table or image libraries, no config
#: objects, no artifacts, no command line
PURE_UNITS = {"model", "graphs", "eval", "topk"}
NOT_IN_PURE = {"pathlib", "json", "pickle", "polars", "PIL", "pydantic", *CLI_ONLY}
NOT_IN_PURE_RECGOAT = {"config", "artifacts", "data", "encoders", "stages", "train", "cli", "presets"}


def unit_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def package_units() -> set[str]:
    return {unit_of(p) for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def target_unit(name: str) -> str | None:
    """The unit ``recgoat_cli.x.y`` (or ``recgoat_cli.x``) names; ``__init__`` for the package itself; None
    for anything outside the package."""
    parts = name.split(".")
    if parts[0] != "recgoat_cli":
        return None
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def imports(path: Path) -> list[tuple[str, int]]:
    return imports_of(path.read_text(encoding="utf-8"), path.relative_to(PACKAGE))


def imports_of(source: str, place: Path) -> list[tuple[str, int]]:
    """Every module ``source`` imports, absolute (relative imports resolved against ``place``, its path inside
    the package), with its line, in line order."""
    package = ["recgoat_cli", *place.parts[:-1]]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if module == "recgoat_cli":  # from recgoat_cli import distributed, __version__
                for alias in node.names:
                    is_unit = (PACKAGE / alias.name).is_dir() or (PACKAGE / f"{alias.name}.py").is_file()
                    found.append((f"recgoat_cli.{alias.name}" if is_unit else "recgoat_cli", node.lineno))
            else:
                found.append((module, node.lineno))
    return sorted(found, key=lambda item: item[1])


def edges() -> list[tuple[str, str, str]]:
    """(importing unit, imported unit, "file:line") for every import between two units of the package."""
    result = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        source = unit_of(path)
        for module, line in imports(path):
            target = target_unit(module)
            if target is not None and target != source:
                result.append((source, target, f"{path.relative_to(REPO_ROOT)}:{line}"))
    return result


def layer_of(unit: str) -> int:
    return next(index for index, layer in enumerate(LAYERS) if unit in layer)


def test_every_unit_of_the_package_has_a_layer():
    placed = set().union(*LAYERS)
    assert package_units() - placed == set(), "add the new folder or top-level module to LAYERS here and to docs/architecture.md"
    assert placed - package_units() == set(), "LAYERS names a unit the package no longer has"


def test_no_unit_imports_a_higher_layer():
    upward = [f"{where}: {source} imports {target}" for source, target, where in edges()
              if layer_of(target) < layer_of(source) and (source, target) not in KNOWN_UPWARD]
    assert upward == []


def test_each_unit_imports_only_what_it_may():
    assert set(MAY_IMPORT) == set().union(*LAYERS)
    extra = [f"{where}: {source} imports {target}" for source, target, where in edges()
             if MAY_IMPORT[source] is not None and target not in MAY_IMPORT[source] and (source, target) not in KNOWN_UPWARD]
    assert extra == []


def test_each_known_upward_import_still_exists():
    present = {(source, target) for source, target, _ in edges()}
    assert set(KNOWN_UPWARD) - present == set(), "an upward import is gone: remove it from KNOWN_UPWARD and from docs/architecture.md"


def test_no_import_cycle_between_units():
    graph: dict[str, set[str]] = {}
    for source, target, _ in edges():
        if (source, target) not in KNOWN_UPWARD:
            graph.setdefault(source, set()).add(target)
    state: dict[str, str] = {}
    cycles = []

    def visit(unit: str, path: list[str]) -> None:
        state[unit] = "open"
        for nxt in sorted(graph.get(unit, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(path[path.index(nxt):] + [unit, nxt]) if nxt in path else f"{unit} -> {nxt}")
            elif nxt not in state:
                visit(nxt, path + [unit])
        state[unit] = "done"

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [])
    assert cycles == []


def test_the_command_line_toolkit_is_imported_only_by_cli():
    found = [f"{path.relative_to(REPO_ROOT)}:{line} imports {module}"
             for path in PACKAGE.rglob("*.py") if unit_of(path) != "cli"
             for module, line in imports(path) if module.split(".")[0] in CLI_ONLY]
    assert found == []


@pytest.mark.parametrize("unit", sorted(PURE_UNITS))
def test_math_units_do_no_io_and_read_no_config(unit):
    found = []
    for path in (PACKAGE / unit).rglob("*.py"):
        for module, line in imports(path):
            target = target_unit(module)
            if module.split(".")[0] in NOT_IN_PURE or target in NOT_IN_PURE_RECGOAT:
                found.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {module}")
    assert found == []


def test_the_import_reader_sees_lazy_relative_and_package_imports():
    """The reader itself, on hand-written source placed in stages/: what it must report, line by line."""
    source = (
        "import os\n"
        "from recgoat_cli import distributed, __version__\n"
        "from . import common\n"
        "from ..graphs.item_knn import knn_graph\n"
        "def f():\n"
        "    from recgoat_cli.cli.app import main\n"
    )
    found = imports_of(source, Path("stages") / "example.py")
    assert found == [
        ("os", 1),
        ("recgoat_cli.distributed", 2),
        ("recgoat_cli", 2),
        ("recgoat_cli.stages", 3),
        ("recgoat_cli.graphs.item_knn", 4),
        ("recgoat_cli.cli.app", 6),
    ]
    assert [target_unit(module) for module, _ in found] == [None, "distributed", "__init__", "stages", "graphs", "cli"]
