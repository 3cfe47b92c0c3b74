"""The optional residual map: per pixel, the part of its spectrum a run leaves unexplained."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix._napari.residual import relative_residual
from napari_unmix.core.result import UnmixResult


def _result(W, H, **arrays):
    return UnmixResult(W=W, H=H, mode="nmf", backend="numpy", device="cpu", n_iter=1,
                       reconstruction_err=0.0, arrays=arrays or None)


def test_relative_residual_without_a_viewer():
    rng = np.random.default_rng(0)
    W, H = rng.random((6 * 5, 2)), rng.random((2, 7))
    stack = np.moveaxis((W @ H).reshape(6, 5, 7), -1, 0).copy()  # (C, Y, X)
    stack[:, 2, 3] *= 1.5  # one pixel the fit does not explain
    stack[:, 0, 0] = 0.0  # an empty pixel
    rel = relative_residual(stack, 0, _result(W, H), (6, 5))
    assert rel.shape == (6, 5) and np.isnan(rel[0, 0])
    np.testing.assert_allclose(rel[2, 3], 1 / 3, rtol=1e-12)
    rel[2, 3] = rel[0, 0] = 0
    np.testing.assert_allclose(rel, 0, atol=1e-12)
    # a per-plane series: each plane against its own spectra
    H2 = rng.random((2, 2, 7))
    W2 = rng.random((2 * 3 * 4, 2))
    X = np.concatenate([W2[:12] @ H2[0], W2[12:] @ H2[1]]).reshape(2, 3, 4, 7)
    rel = relative_residual(np.moveaxis(X, -1, 1), 1, _result(W2, H2.mean(0), plane_H=H2),
                            (2, 3, 4))
    np.testing.assert_allclose(rel, 0, atol=1e-12)


@pytest.mark.gui
def test_a_run_adds_its_residual_layer_when_asked(qtbot, crs_viewer, crs_dock, run_dock):
    pytest.importorskip("napari")
    dock = crs_dock
    f = dock.form
    f.mode.value = "nmf"
    f.n_components.value = 4
    f.max_iter.value = 60
    f.solver.value = "hals"
    run_dock(dock)
    assert "run 1 · residual" not in crs_viewer.layers  # optional: off by default
    dock.history.residual.setChecked(True)
    run_dock(dock)
    layer = crs_viewer.layers["run 2 · residual"]
    assert layer.data.shape == (128, 128)
    stack = crs_viewer.layers[0].data
    expected = relative_residual(stack, 0, dock.result, (128, 128))
    np.testing.assert_allclose(layer.data, expected, rtol=1e-5)
    assert 0 < float(np.nanmedian(layer.data)) < 0.2  # four components explain the sample
    run_dock(dock)  # replaced with the maps
    assert "run 2 · residual" not in crs_viewer.layers and "run 3 · residual" in crs_viewer.layers


@pytest.mark.gui
def test_offset_runs_compare_the_fit_with_the_data_it_saw(qtbot, crs_viewer, crs_dock, run_dock,
                                                          quick_nmf):
    # negative="offset" fits data + offset: the residual map and the pixel inspector
    # compare W·H with that data (raw + offset), not with the raw values
    pytest.importorskip("napari")
    raw = np.asarray(crs_viewer.layers[0].data)
    shifted = raw - np.float32(0.5 * raw.max())  # about half the values are negative
    crs_viewer.add_image(shifted, name="below zero",
                         metadata=dict(crs_viewer.layers[0].metadata))
    dock = crs_dock
    dock.form.image.value = "below zero"
    quick_nmf(dock, 4, max_iter=60)
    dock.form.negative.value = "offset"
    dock.history.residual.setChecked(True)
    run_dock(dock)
    res = dock.result
    offset = res.summary.negative.offset
    assert offset > 0
    rel_err = res.summary.relative_error
    median = float(np.nanmedian(crs_viewer.layers["run 1 · residual"].data))
    assert rel_err / 3 < median < 3 * rel_err, (median, rel_err)
    view = dock.inspect_at((0.0, 40.0, 50.0))
    np.testing.assert_allclose(view.raw, shifted[:, 40, 50], rtol=1e-6)
    w = np.asarray(res.W[40 * 128 + 50], dtype=np.float64)
    np.testing.assert_allclose(view.fit, w @ res.H - offset, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(view.fit + view.residual, view.raw, rtol=1e-6, atol=1e-6)
    # the residual is the fit's: small next to the data the fit saw
    assert np.linalg.norm(view.residual) < 0.5 * np.linalg.norm(view.raw + offset)
