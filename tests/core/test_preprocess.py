"""Preprocessing: background subtraction (from an ROI, a file, a component) and smoothing."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.signal import savgol_filter

from napari_unmix.core import AnalysisConfig, ComponentSpec, run_analysis
from napari_unmix.core.components import FromComponent, RoiMask, Spectrum
from napari_unmix.core.nnls import nnls
from napari_unmix.core.preprocess import Preprocessing, smooth_spectra, subtract_background
from napari_unmix.core.spectra import gaussian_model

AXIS = np.linspace(2800.0, 3000.0, 41)
H = np.stack([gaussian_model(AXIS, [(2850, 30, 1.0)]), gaussian_model(AXIS, [(2950, 30, 1.0)])])
BACKGROUND = 0.3 + 0.2 * (AXIS - AXIS[0]) / (AXIS[-1] - AXIS[0])  # a sloped offset


def _stack():
    """(C, 12, 10): left half component 0, right half component 1, all on BACKGROUND;
    the bottom two rows hold background only."""
    rng = np.random.default_rng(0)
    W = np.zeros((12, 10, 2))
    W[:10, :5, 0] = 0.5 + rng.random((10, 5))
    W[:10, 5:, 1] = 0.5 + rng.random((10, 5))
    X = W.reshape(-1, 2) @ H + BACKGROUND
    bg_roi = np.zeros((12, 10), bool)
    bg_roi[10:] = True
    return X.T.reshape(AXIS.size, 12, 10).astype(np.float32), W.reshape(-1, 2), bg_roi


def test_subtract_background_is_exact_and_leaves_the_input_alone():
    X = np.random.default_rng(1).random((20, AXIS.size)).astype(np.float32)
    before = X.copy()
    out, info = subtract_background(X, BACKGROUND, name="roi")
    np.testing.assert_array_equal(out, X - BACKGROUND.astype(np.float32))
    assert out.dtype == np.float32 and np.array_equal(X, before)
    assert info["step"] == "background" and info["source"] == "roi"
    assert info["n_negative"] == int((out < 0).sum()) > 0
    with pytest.raises(ValueError, match="has shape \\(40,\\) but the data has 41 channels"):
        subtract_background(X, BACKGROUND[:-1])
    with pytest.raises(ValueError, match="NaN or infinite"):
        subtract_background(X, np.full(AXIS.size, np.nan))


def test_smoothing_is_scipys_filter_along_the_channels():
    X = np.random.default_rng(2).random((15, AXIS.size))
    before = X.copy()
    sg, info = smooth_spectra(X, method="savgol", window_length=9, polyorder=3)
    np.testing.assert_allclose(sg, savgol_filter(X, 9, 3, axis=1, mode="interp"), rtol=1e-12)
    assert info == {"step": "smoothing", "method": "savgol", "window_length": 9,
                    "polyorder": 3, "n_negative": int((sg < 0).sum())}
    ga, _ = smooth_spectra(X, method="gaussian", sigma=1.5)
    np.testing.assert_allclose(ga, gaussian_filter1d(X, 1.5, axis=1, mode="nearest"),
                               rtol=1e-12)
    assert np.array_equal(X, before)
    for kw, words in (({"window_length": 8}, "odd integer"),
                      ({"window_length": 43}, "longer than the spectra"),
                      ({"window_length": 5, "polyorder": 5}, "polyorder must be"),
                      ({"method": "gaussian", "sigma": 0}, "sigma must be"),
                      ({"method": "median"}, "Unknown smoothing method")):
        with pytest.raises(ValueError, match=words):
            smooth_spectra(X, **kw)


def _fit_processed(stack, background, **pp):
    """Fixed-H NNLS with the true spectra, fitted on the processed data."""
    comps = [ComponentSpec("A", h_source=Spectrum(H[0])),
             ComponentSpec("B", h_source=Spectrum(H[1]))]
    if isinstance(background, FromComponent):  # the background is a component's seed
        comps.append(ComponentSpec("bg", h_source=RoiMask(_stack()[2]), background=True))
    cfg = AnalysisConfig(mode="nnls", components=comps, fit_data="processed", negative="clip",
                         preprocessing=Preprocessing(background=background, **pp))
    return run_analysis(stack, cfg, spectral_values=AXIS)


@pytest.mark.parametrize("source", ["roi", "file", "component"])
def test_background_from_an_roi_a_file_or_a_component(tmp_path, source):
    stack, W, bg_roi = _stack()
    raw = stack.copy()
    if source == "roi":
        background = RoiMask(bg_roi)
    elif source == "component":
        background = FromComponent("bg")
    else:  # a spectrum file on a finer, descending axis
        fine = np.linspace(3000.0, 2800.0, 201)
        path = tmp_path / "bg.csv"
        np.savetxt(path, np.column_stack([fine, np.interp(fine, AXIS, BACKGROUND)]),
                   delimiter=",", header="wavenumber,bg", comments="")
        background = Spectrum.from_file(path, 0)
    res = _fit_processed(stack, background)
    step = res.summary["preprocessing"][1]
    assert step["step"] == "background"
    assert np.array_equal(stack, raw)  # the raw data is never modified
    # the fit ran on raw minus the background spectrum: the true abundances come back
    # (the background rows become ~0), and the same as NNLS on the subtracted data
    X = stack.reshape(AXIS.size, -1).T
    expected = nnls(np.maximum(X - BACKGROUND.astype(np.float32), 0), H.astype(np.float32))
    np.testing.assert_allclose(res.W[:, :2], expected.W, atol=2e-5)
    np.testing.assert_allclose(res.W[:, :2], W, atol=2e-5)


def test_smoothing_after_subtraction_is_recorded_in_order():
    stack, _, bg_roi = _stack()
    res = _fit_processed(stack, RoiMask(bg_roi), smoothing="gaussian", sigma=1.0)
    steps = [s["step"] for s in res.summary["preprocessing"]]
    assert steps == ["negative", "background", "smoothing", "negative (processed data)"]
    assert res.summary["preprocessing"][2]["sigma"] == 1.0
    assert res.params["config"]["preprocessing"]["smoothing"] == "gaussian"
