"""The pixel inspector of a run fitted on the processed data (``fit_data="processed"``).

It showed the raw spectrum beside ``w H`` and their difference as the residual, so the
background the run had subtracted (and the smoothing, the offset) looked unexplained:
about 0.3 of the pixel where the run's relative error was 0.03.  It compares the fit with
the processed spectrum the fit saw now (made again by the run's config, once per run and
plane), says so in its legend, and keeps the raw spectrum beside it.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np
import pytest

from napari_unmix._napari.inspector import FittedSpectra, inspect_pixel
from napari_unmix._napari.spectra_plot import pixel_content
from napari_unmix.core.analysis import AnalysisConfig, run_analysis
from napari_unmix.core.components import ComponentSpec
from napari_unmix.core.preprocess import Preprocessing
from napari_unmix.core.residuals import fitted_data
from napari_unmix.core.series import unmix_series
from napari_unmix.core.sources import Flat, FromComponent, RoiLabel, RoiMask
from napari_unmix.core.synthetic import make_crs_sample, make_crs_sample_4d


def _quiet(func, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the iteration cap is beside the point
        return func(*args, **kw)


@pytest.fixture(scope="module")
def processed_run():
    """The bundled 128 x 128 x 64 sample, seeded NNMF on its background-subtracted,
    smoothed data (ROIs: the 2 % of pixels where each component dominates)."""
    s = make_crs_sample()
    frac = s.W / s.W.sum(axis=1, keepdims=True)
    shape = s.stack.shape[1:]
    comps = [ComponentSpec(n, h_source=RoiMask(
        (frac[:, i] >= np.quantile(frac[:, i], 0.98)).reshape(shape)),
        background=n == "background") for i, n in enumerate(s.component_names)]
    cfg = AnalysisConfig(mode="seeded-nmf", components=comps, fit_data="processed",
                         preprocessing=Preprocessing(background=FromComponent("background"),
                                                     smoothing="savgol"),
                         negative="offset", max_iter=100, random_state=0)
    res = _quiet(run_analysis, s.stack, cfg, spectral_values=s.spectral_axis)
    return s.stack, res.on_every_pixel()


def test_the_fit_is_compared_with_the_processed_spectrum(processed_run):
    stack, res = processed_run
    assert res.summary.fit_data == "processed"
    X = np.moveaxis(stack, 0, -1).reshape(-1, stack.shape[0])
    Xf = fitted_data(res, X, stack.shape[1:])
    rel = []
    for y, x in [(40, 70), (5, 5), (100, 20), (64, 64)]:
        view = inspect_pixel(res, stack, spectral_axis=0, data_coords=(0, y, x))
        row = y * stack.shape[2] + x
        np.testing.assert_allclose(view.raw, stack[:, y, x])
        np.testing.assert_allclose(view.processed, Xf[row], rtol=1e-6)
        np.testing.assert_allclose(view.fit, res.W[row] @ res.H, rtol=1e-6)
        np.testing.assert_allclose(view.residual, view.processed - view.fit, atol=1e-9)
        rel.append(np.linalg.norm(view.residual) / np.linalg.norm(view.processed))
    # the pixel's residual is the fit's (the raw spectrum left ~0.3 of every pixel)
    assert max(rel) < 5 * res.summary.relative_error, (rel, res.summary.relative_error)
    content = pixel_content(view, res, ["#ff0000"] * 4)
    labels = [c.label for c in content.curves]
    assert labels[:3] == ["raw spectrum", "processed spectrum, fitted (background "
                          "subtracted, savgol-smoothed, offset added)", "fit w·H"]


def test_the_processed_data_is_made_once_per_run(processed_run, monkeypatch):
    """A click must not block the GUI: the processing is made on the first click (timed
    here on the 128 x 128 x 64 sample) and read from then on."""
    import napari_unmix._napari.inspector as inspector

    stack, res = processed_run
    calls = []
    real = inspector.fitted_plane
    monkeypatch.setattr(inspector, "fitted_plane",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    fitted = FittedSpectra(res)
    t0 = time.perf_counter()
    inspect_pixel(res, stack, spectral_axis=0, data_coords=(0, 3, 4), fitted=fitted)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for y in range(20):
        inspect_pixel(res, stack, spectral_axis=0, data_coords=(0, y, 2 * y), fitted=fitted)
    later = (time.perf_counter() - t0) / 20
    print(f"\nfirst click {1000 * first:.1f} ms, later clicks {1000 * later:.2f} ms")
    assert len(calls) == 1
    assert later < 0.02


def test_a_per_plane_series_pixel_is_compared_with_its_plane_processed():
    zs = make_crs_sample_4d(n_planes=3, shape=(24, 24), n_channels=16, random_state=1)
    stack = zs.stack  # (Z, C, Y, X)
    cfg = AnalysisConfig(mode="nmf", n_components=3, fit_data="processed",
                         preprocessing=Preprocessing(background=Flat(0.05), smoothing="savgol",
                                                     window_length=5),
                         negative="offset", max_iter=60, random_state=0)
    series = _quiet(unmix_series, stack, cfg, strategy="per-slice", series_axis=0,
                    spectral_axis=1)
    whole = series.as_result()
    X = np.moveaxis(stack, 1, -1).reshape(-1, stack.shape[1])
    Xf = fitted_data(whole, X, (3, 24, 24))
    view = inspect_pixel(whole, stack, spectral_axis=1, data_coords=(2, 0, 7, 9),
                         series_result=series)
    row = 2 * 24 * 24 + 7 * 24 + 9
    assert view.plane == 2
    np.testing.assert_allclose(view.processed, Xf[row], rtol=1e-6)
    plane = series.plane_result(2)
    np.testing.assert_allclose(view.fit, plane.W[7 * 24 + 9] @ plane.H, rtol=1e-6)


def test_processed_data_that_cannot_be_made_again_is_said(processed_run):
    """An opened result whose background came from a label image that is not here: the
    raw spectrum is shown, and the title says why."""
    stack, res = processed_run
    cfg = res.config
    cfg.components[-1].h_source = RoiLabel(4)
    arrays = {}
    params = {**res.params, "config": cfg.to_dict(arrays=arrays)}
    opened = dataclasses.replace(res, params=params, arrays={**res.arrays, **arrays})
    view = inspect_pixel(opened, stack, spectral_axis=0, data_coords=(0, 40, 70))
    assert view.processed is None
    assert "raw data shown" in view.title and "cannot be made again" in view.title
    np.testing.assert_allclose(view.residual, view.raw - view.fit)
