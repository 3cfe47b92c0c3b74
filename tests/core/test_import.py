"""The core is Qt-free and the package import is light (DESIGN.md, layering)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: top-level modules that the core must never pull in
GUI_MODULES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy")


def _modules_after(statement: str) -> set[str]:
    """Top-level module names in ``sys.modules`` after ``statement`` in a fresh interpreter."""
    code = (
        "import json, sys\n"
        f"{statement}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def core_modules():
    return _modules_after("import napari_unmix.core")


@pytest.fixture(scope="module")
def package_modules():
    return _modules_after("import napari_unmix")


@pytest.mark.parametrize("name", GUI_MODULES)
def test_core_imports_no_gui_module(core_modules, name):
    assert name not in core_modules


def test_core_does_not_import_torch(core_modules):
    # torch is optional and slow to import: device.get_torch imports it on first use
    assert "torch" not in core_modules


def test_core_import_loads_the_core(core_modules):
    # guard against a vacuous pass of the tests above (e.g. an import that failed)
    assert {"napari_unmix", "numpy"} <= core_modules


def test_package_import_is_light(package_modules):
    heavy = {"numpy", "scipy", "sklearn", "torch", "dask", "tifffile", "matplotlib",
             *GUI_MODULES}
    assert "napari_unmix" in package_modules
    assert not heavy & package_modules


def test_package_import_does_not_load_core():
    code = ("import sys, napari_unmix; "
            "print(sorted(m for m in sys.modules if m.startswith('napari_unmix')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "['napari_unmix']"
