"""Opening the dock does not wait for the heavy imports (issue 13's responsiveness).

On a 2-core machine, importing torch took 4.5 s and matplotlib 1.4 s of the 6.6 s
the dock took to open (``benchmarks/dock_latency.py``), and scipy.optimize (for the
Hungarian matching of components) 0.5 s.  The solver menus ask whether torch is
installed without importing it, scipy.optimize is imported where components are
matched, and matplotlib where a figure is made, warmed on a background thread
meanwhile (``_napari/preload.py``).
Each check runs in a fresh interpreter: this test process has both loaded already.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded_after(code: str) -> set[str]:
    probe = (f"import sys\n{code}\n"
             "print(' '.join(sorted(m for m in ('torch', 'matplotlib', 'matplotlib.figure', "
             "'scipy.optimize') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=120)
    return set(out.stdout.split())


def test_the_dock_module_imports_neither_torch_nor_matplotlib_nor_scipy_optimize():
    assert _loaded_after("import napari_unmix._napari.widget") == set()


def test_asking_for_the_torch_solvers_does_not_import_torch():
    pytest.importorskip("torch")
    code = ("from napari_unmix.core.device import torch_available\n"
            "from napari_unmix.core.solvers import NMF_SOLVERS\n"
            "assert torch_available()\n"
            "assert all(s.available() for s in NMF_SOLVERS.values())")
    assert "torch" not in _loaded_after(code)


def test_warm_imports_loads_matplotlib_in_the_background():
    code = ("from napari_unmix._napari.preload import warm_imports\n"
            "t = warm_imports()\n"
            "assert warm_imports() is t  # once per process\n"
            "t.join(120)\n"
            "assert t.daemon and not t.is_alive()")
    assert "matplotlib.figure" in _loaded_after(code)


def test_the_warm_up_starts_after_the_new_dock_is_painted(qtbot, crs_viewer, monkeypatch):
    # run beside the first layout and paint of the dock, the imports' share of the GIL
    # made that paint 3x as long (136 -> 470 ms on 2 cores); they start once it is over
    from napari_unmix._napari import preload

    started = []
    monkeypatch.setattr(preload, "_started", None)
    monkeypatch.setattr(preload, "_import_all", lambda names: started.append(names))
    _, dock = crs_viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    assert preload._started is None and not started  # nothing yet while napari lays it out
    qtbot.waitUntil(lambda: bool(started), timeout=5_000)
    assert started == [preload.WARMED_MODULES]
