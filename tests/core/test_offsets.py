"""Moving the constant part of fitted spectra into a locked flat row."""

import numpy as np
import pytest

from napari_unmix.core import AnalysisConfig, ComponentSpec, Flat, RoiMask, run_analysis
from napari_unmix.core.offsets import move_offsets_to_flat_row
from napari_unmix.core.spectra import gaussian_model

AXIS = np.linspace(2800.0, 3000.0, 40)
PURE = np.stack([gaussian_model(AXIS, [(2850, 30, 1.0)]),
                 gaussian_model(AXIS, [(2950, 30, 1.0)])])


def test_offsets_move_without_changing_the_product():
    rng = np.random.default_rng(0)
    W = rng.random((50, 4)).astype(np.float32)
    H = np.vstack([PURE + [[0.3], [0.1]], 0.5 * PURE[:1] + 0.2,
                   np.full((1, AXIS.size), 2.0)]).astype(np.float32)
    W2, H2, moved = move_offsets_to_flat_row(W, H, flat=3, keep=[2])
    assert W2.dtype == W.dtype and H2.dtype == H.dtype
    np.testing.assert_allclose(W2 @ H2, W @ H, rtol=1e-5, atol=1e-6)
    # the two free spectra now touch zero; what they lost is what was moved
    np.testing.assert_allclose(H2[:2].min(axis=1), 0.0, atol=0)
    np.testing.assert_allclose(moved, [H[0].min(), H[1].min(), 0, 0], rtol=1e-6)
    # kept rows and the flat spectrum are bit-identical; only the flat map grows
    assert H2[2].tobytes() == H[2].tobytes() and H2[3].tobytes() == H[3].tobytes()
    assert np.array_equal(W2[:, :3], W[:, :3])
    np.testing.assert_allclose(W2[:, 3], W[:, 3] + W[:, :2] @ (moved[:2] / 2.0), rtol=1e-6)


def test_a_row_that_is_not_flat_is_refused():
    H = np.vstack([PURE, PURE[:1]])
    with pytest.raises(ValueError, match="Row 2 of H is not a positive constant"):
        move_offsets_to_flat_row(np.ones((3, 3)), H, flat=2)


def _scene():
    """Pure A | pure B | mixed, all on a pixel-varying flat offset."""
    rng = np.random.default_rng(1)
    n = 600
    band = np.arange(n) * 3 // n
    W = np.zeros((n, 2))
    W[band == 0, 0] = 0.5 + rng.random((band == 0).sum())
    W[band == 1, 1] = 0.5 + rng.random((band == 1).sum())
    W[band == 2] = 0.5 * (0.5 + rng.random(((band == 2).sum(), 2)))
    offset = 0.3 + 0.2 * rng.random(n)
    X = W @ PURE + offset[:, None] + 0.002 * rng.standard_normal((n, AXIS.size))
    return X.astype(np.float32).reshape(20, 30, -1), band.reshape(20, 30)


def _config(band, **flat):
    comps = [ComponentSpec("A", h_source=RoiMask(band == 0)),
             ComponentSpec("B", h_source=RoiMask(band == 1)),
             ComponentSpec("offset", h_source=Flat(**flat), background=True, locked=True)]
    return AnalysisConfig(mode="seeded-nmf", components=comps, solver="mu", max_iter=300,
                          tol=1e-4, random_state=0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_seeded_nnmf_with_a_locked_flat_row_returns_offset_free_spectra():
    stack, band = _scene()
    on = run_analysis(stack, _config(band), spectral_axis=-1)
    off = run_analysis(stack, _config(band, absorb_offsets=False), spectral_axis=-1)
    # the same fit, split differently: the product and the A/B maps are unchanged
    np.testing.assert_allclose(on.W @ on.H, off.W @ off.H, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(on.W[:, :2], off.W[:, :2])
    assert on.H[2].tobytes() == off.H[2].tobytes()  # the locked row
    # the ROI seeds carried the offset (about 0.4 of a peak of 1); now it is gone
    assert off.H[:2].min(axis=1).min() > 0.2
    assert np.all(on.H[:2].min(axis=1) == 0)
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    for j in range(2):
        # measured: 0.9987 with the offsets moved, 0.88 without
        assert cos(on.H[j], PURE[j]) > 0.995 > 0.95 > cos(off.H[j], PURE[j])
    moved = on.summary["offsets_moved"]
    assert moved["into"] == "offset" and set(moved["amounts"]) == {"A", "B"}
    assert "offsets_moved" not in off.summary
    # the option travels with the config: a rerun gives the same numbers
    again = run_analysis(stack, AnalysisConfig.from_result(on), spectral_axis=-1)
    assert np.array_equal(again.W, on.W) and np.array_equal(again.H, on.H)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_only_a_locked_flat_row_takes_offsets():
    stack, band = _scene()
    cfg = _config(band)
    comps = list(cfg.components)
    comps[2] = ComponentSpec("offset", h_source=Flat(), background=True, locked=False)
    res = run_analysis(stack, cfg.replace(components=comps), spectral_axis=-1)
    assert "offsets_moved" not in res.summary
