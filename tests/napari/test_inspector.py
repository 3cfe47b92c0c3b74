"""The pixel inspector: a click (or Shift + hover) shows the pixel's spectrum, the fit
w·H, each component's part and the residual in the spectra dock, on the plane shown."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from napari_unmix._napari.inspector import inspect_pixel
from napari_unmix.core.result import UnmixResult


def test_inspect_pixel_without_a_viewer():
    rng = np.random.default_rng(0)
    W, H = rng.random((4 * 5, 2)), rng.random((2, 6))
    stack = np.moveaxis((W @ H).reshape(4, 5, 6), -1, 0) + 0.01  # (C, Y, X), a misfit
    res = UnmixResult(W=W, H=H, mode="nmf", backend="numpy", device="cpu", n_iter=1,
                      reconstruction_err=0.0)
    view = inspect_pixel(res, stack, spectral_axis=0, data_coords=(3.0, 2.2, 3.6))
    assert view.index == (2, 4)
    np.testing.assert_allclose(view.raw, stack[:, 2, 4])
    np.testing.assert_allclose(view.fit, W[2 * 5 + 4] @ H)
    np.testing.assert_allclose(sum(view.contributions), view.fit)
    np.testing.assert_allclose(view.fit + view.residual, view.raw)
    np.testing.assert_allclose(view.residual, 0.01)
    assert inspect_pixel(res, stack, spectral_axis=0, data_coords=(0, 9.0, 1.0)) is None
    signed = inspect_pixel(res, stack, spectral_axis=0, data_coords=(0, 1, 1), signed=True)
    assert signed.fit is None and signed.residual is None and len(signed.contributions) == 2


napari = pytest.importorskip("napari")


def _click(viewer, hooks, position):
    """A press and release at ``position`` without a move, as napari delivers them."""
    event = SimpleNamespace(position=position, type="mouse_press", modifiers=())
    gen = hooks.on_press(viewer, event)
    next(gen)
    event.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(gen)


@pytest.mark.gui
def test_a_click_shows_the_pixel_in_the_spectra_dock(qtbot, crs_viewer, crs_dock, run_dock):
    viewer, dock = crs_viewer, crs_dock
    f = dock.form
    f.n_components.value = 3
    f.max_iter.value = 40
    f.solver.value = "hals"
    run_dock(dock)
    hooks = dock._lifeline.hooks
    assert hooks.on_press in viewer.mouse_drag_callbacks
    _click(viewer, hooks, (10.0, 40.0, 70.0))  # world (channel, y, x)
    content = dock.spectra_plot.content
    assert content.title == "Pixel (40, 70)"
    labels = [c.label for c in content.curves]
    assert labels == ["pixel spectrum", "fit w·H", "C1 part", "C2 part", "C3 part",
                      "residual"]
    raw, fit = content.curves[0].values, content.curves[1].values
    np.testing.assert_allclose(raw, viewer.layers[0].data[:, 40, 70])
    np.testing.assert_allclose(fit, dock.result.W[40 * 128 + 70] @ dock.result.H, rtol=1e-5)
    np.testing.assert_allclose(content.curves[-1].values, raw - fit, rtol=1e-5, atol=1e-6)
    # hovering with Shift inspects too; without Shift it does nothing
    hooks.on_move(viewer, SimpleNamespace(position=(0.0, 5.0, 6.0), modifiers=()))
    assert dock.spectra_plot.content.title == "Pixel (40, 70)"
    hooks.on_move(viewer, SimpleNamespace(position=(0.0, 5.0, 6.0), modifiers=("Shift",)))
    assert dock.spectra_plot.content.title == "Pixel (5, 6)"
    # a drag pans, it does not inspect; and the inspector can be switched off
    event = SimpleNamespace(position=(0.0, 1.0, 1.0), type="mouse_press", modifiers=())
    gen = hooks.on_press(viewer, event)
    next(gen)
    event.type = "mouse_move"
    next(gen)
    event.type = "mouse_release"
    with pytest.raises(StopIteration):
        next(gen)
    assert dock.spectra_plot.content.title == "Pixel (5, 6)"
    dock.history.inspector.setChecked(False)
    assert dock.inspect_at((0.0, 2.0, 2.0)) is None


@pytest.mark.gui
def test_a_series_pixel_is_read_on_the_plane_shown(qtbot, make_napari_viewer, run_dock):
    from napari_unmix._napari.sample_data import sample_layer_data
    from napari_unmix.core.synthetic import make_crs_sample_4d

    viewer = make_napari_viewer(strict_qt=True)
    sample = make_crs_sample_4d(n_planes=3, shape=(24, 24), n_channels=16, random_state=0)
    data, kwargs, _ = sample_layer_data(sample, "zs")[0]
    viewer.add_image(data, **kwargs)
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    dock.series_panel.series.value = "per-plane"
    f = dock.form
    f.n_components.value = 3
    f.max_iter.value = 30
    run_dock(dock)
    view = dock.inspect_at((2.0, 0.0, 7.0, 9.0))  # plane 2, pixel (7, 9)
    assert view.plane == 2 and view.index == (2, 7, 9)
    plane = dock.series_result.plane_result(2)
    np.testing.assert_allclose(view.fit, plane.W[7 * 24 + 9] @ plane.H, rtol=1e-6)
    np.testing.assert_allclose(view.raw, data[2, :, 7, 9])
    assert "plane 2" in dock.spectra_plot.content.title
