"""The dock's "NaN pixels" setting: an image with NaN values is refused by default,
saying which setting leaves them out; with "omit" the run fits the other pixels and
every view of the result (map layers, residual map, pixel inspector) shows the
left-out pixels as empty."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari.utils.notifications import NotificationSeverity, notification_manager  # noqa: E402

from napari_unmix._napari.summary_text import fit_summary  # noqa: E402
from napari_unmix.core import AnalysisConfig, run_analysis  # noqa: E402


def _holed(viewer):
    data = np.asarray(viewer.layers[0].data, dtype=np.float32).copy()
    data[:, :3, :] = np.nan  # the padding of a registered image: three rows
    data[5, 60, 60] = np.inf
    viewer.add_image(data, name="holed", metadata=dict(viewer.layers[0].metadata))
    return data


def _said(since):
    return " ".join(str(r.message) for r in notification_manager.records[since:]
                    if r.severity >= NotificationSeverity.WARNING)


def test_nan_pixels_are_refused_naming_the_setting_then_left_out(qtbot, crs_viewer, crs_dock,
                                                                 run_dock):
    viewer, dock = crs_viewer, crs_dock
    data = _holed(viewer)
    dock.reset_choices()
    f = dock.form
    f.image.value = "holed"
    f.mode.value = "nmf"
    f.n_components.value = 3
    f.max_iter.value = 40
    f.solver.value = "hals"
    f.random_state.value = "0"
    assert not f.nan_policy.native.isHidden() and f.nan_policy.value == "raise"
    since = len(notification_manager.records)
    job = dock.run()
    if job is not None:
        qtbot.waitUntil(lambda: job.done, timeout=60_000)
    said = _said(since)
    assert "the image holds" in said and "Set 'NaN pixels' to omit" in said, said

    f.nan_policy.value = "omit"
    dock.history.residual.setChecked(True)
    run_dock(dock)
    res = dock.result
    # the same fit as the headless analysis, with a row for every pixel of the image
    headless = run_analysis(data, AnalysisConfig(mode="nmf", n_components=3, max_iter=40,
                                                 solver="hals", backend=f.backend.value,
                                                 random_state=0, nan_policy="omit"))
    np.testing.assert_array_equal(res.H, headless.H)
    assert res.W.shape == (128 * 128, 3)
    np.testing.assert_array_equal(res.W.reshape(128, 128, 3).transpose(2, 0, 1),
                                  headless.maps((128, 128)))
    assert res.config.nan_policy == "omit"
    assert res.summary.preprocessing[0]["omitted_pixels"] == 3 * 128 + 1
    assert "NaN pixels: 385 left out of the fit" in fit_summary(res)
    maps = [layer for layer in viewer.layers if layer.name.startswith("run ")
            and "residual" not in layer.name]
    assert len(maps) == 3, [layer.name for layer in viewer.layers]
    for layer in maps:
        assert np.isnan(layer.data[:3]).all() and np.isnan(layer.data[60, 60])
        assert np.isfinite(layer.data[3:60]).all()
    residual = next(layer for layer in viewer.layers if layer.name.endswith("residual"))
    assert np.isnan(residual.data[:3]).all() and np.isfinite(residual.data[10:20]).all()
    # the inspector: a left-out pixel shows its spectrum and no fit, a fitted one both
    hooks = dock._lifeline.hooks
    for y, fitted in ((1, False), (40, True)):
        hooks.on_move(viewer, SimpleNamespace(position=(0.0, float(y), 7.0),
                                              modifiers=("Shift",)))
        content = dock.spectra_plot.content
        assert content.title == f"Pixel ({y}, 7)"
        fit = next(c for c in content.curves if c.label == "fit w·H").values
        assert np.isfinite(fit).all() == fitted
