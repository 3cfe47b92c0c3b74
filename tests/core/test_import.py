"""The core is Qt-free and the package import is light (DESIGN.md, layering)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: top-level modules that the core must never pull in
GUI_MODULES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy")


@pytest.fixture(scope="module")
def snapshots():
    """Loaded modules in a fresh interpreter after ``import napari_unmix``, after
    ``import napari_unmix.core`` and after running the numpy/scipy/sklearn modes
    (one subprocess for all three: interpreter start-up is the slow part)."""
    code = (
        "import json, sys\n"
        "def snap(): return sorted(sys.modules)\n"
        "import napari_unmix\n"
        "package = snap()\n"
        "import napari_unmix.core as uc\n"
        "core = snap()\n"
        "import numpy as np\n"
        "X = np.random.default_rng(0).random((20, 6))\n"
        "uc.pca(X, 2); uc.nnls(X, X[:2], backend='scipy')\n"
        "uc.nmf(X, 2, solver='cd', backend='sklearn', random_state=0, tol=1e-2)\n"
        "print(json.dumps({'package': package, 'core': core, 'run': snap()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _top_level(names):
    return {m.split(".")[0] for m in names}


@pytest.fixture(scope="module")
def core_modules(snapshots):
    return _top_level(snapshots["core"])


@pytest.fixture(scope="module")
def package_modules(snapshots):
    return _top_level(snapshots["package"])


@pytest.mark.parametrize("name", GUI_MODULES)
def test_core_imports_no_gui_module(core_modules, name):
    assert name not in core_modules


@pytest.mark.parametrize("name", GUI_MODULES)
def test_running_the_modes_imports_no_gui_module(snapshots, name):
    # deferred imports inside the modes must not reach the GUI stack either
    assert name not in _top_level(snapshots["run"])


def test_core_does_not_import_torch(core_modules):
    # torch is optional and slow to import: device.get_torch imports it on first use
    assert "torch" not in core_modules


def test_core_import_loads_the_core(snapshots):
    # guard against a vacuous pass of the tests above (e.g. an import that failed)
    assert {"napari_unmix.core", "napari_unmix.core.nmf", "numpy"} <= set(snapshots["core"])
    assert "sklearn" in _top_level(snapshots["run"])


def test_package_import_is_light(package_modules):
    heavy = {"numpy", "scipy", "sklearn", "torch", "dask", "tifffile", "matplotlib",
             *GUI_MODULES}
    assert "napari_unmix" in package_modules
    assert not heavy & package_modules


def test_package_import_does_not_load_core(snapshots):
    assert [m for m in snapshots["package"] if m.startswith("napari_unmix")] == ["napari_unmix"]
