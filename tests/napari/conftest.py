"""Fixtures of the dock tests that drive a real napari window (issue 13).

``crs_viewer``: a viewer holding the bundled sample as "File > Open Sample" opens it
(128 x 128 pixels, 64 channels); ``crs_dock``: the "Spectral unmixing" dock opened
through the plugin manifest.  ``run_dock(dock)`` presses Run and waits for the job (fixture
``run_dock``); ``quick_nmf(dock, k)`` sets the form for a short random NNMF (fixture
``quick_nmf``).
"""

from __future__ import annotations

import pytest

RUN_TIMEOUT_MS = 60_000


@pytest.fixture
def crs_viewer(make_napari_viewer, monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")
    from napari_unmix._napari.sample_data import crs_sample

    viewer = make_napari_viewer(strict_qt=True)
    data, kwargs, _ = crs_sample()[0]
    viewer.add_image(data, **kwargs)
    return viewer


@pytest.fixture
def crs_dock(crs_viewer):
    _, widget = crs_viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    return widget


@pytest.fixture
def run_dock(qtbot):
    """Press Run and wait until the job is done; returns the job (asserts it started)."""
    def run(dock):
        job = dock.run()
        assert job is not None, "the run was refused"
        qtbot.waitUntil(lambda: job.done, timeout=RUN_TIMEOUT_MS)
        return job
    return run


def _set_quick_nmf(dock, k=3, *, max_iter=40, seed=0, backend="numpy"):
    """Set the dock's form for a short random NNMF of ``k`` components with HALS
    (``backend`` None: the form's default)."""
    f = dock.form
    f.mode.value = "nmf"
    f.n_components.value = k
    f.max_iter.value = max_iter
    f.solver.value = "hals"
    if backend is not None:
        f.backend.value = backend
    f.random_state.value = str(seed)


@pytest.fixture
def quick_nmf():
    """``quick_nmf(dock, k=3, *, max_iter=40, seed=0, backend="numpy")``: the form set
    for a short random NNMF with HALS."""
    return _set_quick_nmf
