"""The shape of the package, measured from its own imports (docs/architecture.md).

* no import cycle between modules (imports inside functions count: a cycle is a
  seam in the wrong place even when Python tolerates it);
* no module over 500 lines;
* no private name (``_name``) imported from another module;
* no literal comparison with a mode name outside the mode table: what a mode does
  is said by its ``ModeSpec`` (``seeded``, ``fixed_spectra``, ``uses(...)`` ...);
* ``core`` and ``io`` import no napari, Qt or magicgui (import-linter checks the
  layers too: ``bash scripts/dev.sh lint``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "napari_unmix"
GUI = ("napari", "qtpy", "magicgui", "PyQt5", "PyQt6", "PySide2", "PySide6", "superqt")
MODE_NAMES = ("pca", "nmf", "seeded-nmf", "nnls")
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _target(name: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = name.split(".") if is_package else name.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(name: str, path: Path):
    """``(module imported, name imported or None)`` for every import of a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _target(name, node, is_package)
            for alias in node.names:
                yield target, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None


def _edges() -> dict[str, set[str]]:
    edges = {}
    for name, path in MODULES.items():
        deps = set()
        for target, imported in _imports(name, path):
            full = f"{target}.{imported}" if imported else target
            dep = full if full in MODULES else target
            if dep in MODULES and dep != name:
                deps.add(dep)
        if path.name == "__init__.py":  # a package re-exporting its children is no cycle
            deps = {d for d in deps if not d.startswith(name + ".")}
        edges[name] = deps
    return edges


def _cycles(edges) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_the_package_was_found():
    assert "napari_unmix.core.modes" in MODULES and len(MODULES) > 50


def test_no_import_cycle():
    assert _cycles(_edges()) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_over_500_lines(name):
    n = MODULES[name].read_text(encoding="utf-8").count("\n") + 1
    assert n <= MAX_LINES, f"{MODULES[name]} has {n} lines; split it along its seams"


def test_no_private_name_imported_from_another_module():
    private = []
    for name, path in MODULES.items():
        for target, imported in _imports(name, path):
            if imported and imported.startswith("_") and not imported.startswith("__") \
                    and target in MODULES and target != name \
                    and not target.startswith(name + "."):
                private.append(f"{name} imports {target}.{imported}")
    assert private == []


def test_mode_names_are_compared_only_in_the_mode_table():
    names = "|".join(MODE_NAMES)
    pattern = re.compile(rf"""(==|!=)\s*["']({names})["']|["']({names})["']\s*(==|!=)""")
    found = [f"{path.relative_to(ROOT)}:{i + 1}"
             for name, path in MODULES.items()
             for i, line in enumerate(path.read_text(encoding="utf-8").splitlines())
             if pattern.search(line) and not name.endswith(("core.modes", "core.mode_runs"))]
    assert found == []


def test_core_and_io_import_no_gui_toolkit():
    bad = [f"{name} imports {target}" for name, path in MODULES.items()
           if name.startswith(("napari_unmix.core", "napari_unmix.io"))
           for target, _ in _imports(name, path) if target.split(".")[0] in GUI]
    assert bad == []
