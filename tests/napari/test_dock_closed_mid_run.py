"""Closing the "Spectral unmixing" dock while its run goes on (napari's close button:
``viewer.window.remove_dock_widget``) cancels the run: nothing is published, no error."""

from __future__ import annotations

import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari_unmix._napari.layers import result_layers  # noqa: E402


def _long_nmf(dock):
    f = dock.form
    f.mode.value = "nmf"
    f.n_components.value = 3
    f.solver.value = "hals"
    f.backend.value = "numpy"
    f.max_iter.value = 10_000_000  # hours: finishing at all means it was cancelled
    f.tol.value = 0.0
    f.random_state.value = "0"


def test_closing_the_dock_mid_run_cancels_it_and_publishes_nothing(qtbot, crs_viewer,
                                                                   crs_dock):
    viewer, dock = crs_viewer, crs_dock
    _long_nmf(dock)
    n_layers = len(viewer.layers)
    hooks = len(viewer.mouse_drag_callbacks)
    job = dock.run()
    assert job is not None
    qtbot.waitUntil(lambda: dock.progress.format().startswith("nmf: "), timeout=60_000)
    viewer.window.remove_dock_widget(dock)
    qtbot.waitUntil(lambda: job.done, timeout=10_000)
    assert job.cancel_requested and job.detached
    qtbot.wait(200)  # the (dropped) outcome would be shown by now
    assert not result_layers(viewer) and len(viewer.layers) == n_layers
    assert len(viewer.mouse_drag_callbacks) == hooks - 1  # the inspector is gone too


def test_closing_an_idle_dock_leaves_the_viewer_clean_and_it_opens_again(
        qtbot, crs_viewer, crs_dock, run_dock):
    viewer = crs_viewer
    hooks = len(viewer.mouse_drag_callbacks)
    viewer.window.remove_dock_widget(crs_dock)
    assert len(viewer.mouse_drag_callbacks) == hooks - 1
    viewer.dims.set_current_step(0, 1)  # the closed dock's session follows nothing
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    assert dock is not crs_dock
    dock.form.mode.value = "pca"
    dock.form.n_components.value = 2
    run_dock(dock)
    assert len(result_layers(viewer)) == 2
