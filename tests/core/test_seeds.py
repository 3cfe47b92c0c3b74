"""The seeding engine: spectrum sources, W-seed modes, residual fallback, flags."""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from napari_unmix.core import nmf, nnls
from napari_unmix.core.components import (
    BackgroundMap,
    ComponentSpec,
    FixedW,
    Flat,
    Gaussian,
    ImportedMap,
    PreviousResult,
    RoiLabel,
    RoiMask,
    SeedPixels,
    Spectrum,
)
from napari_unmix.core.metrics import spectral_angle
from napari_unmix.core.seeds import W_SEED_MODES, build_seeds, w_seed_maps
from napari_unmix.core.spectra import gaussian_model

AXIS = np.linspace(2800.0, 3000.0, 48)
# three strongly overlapping resonances (about 40-50 degrees apart)
H_TRUE = np.stack([
    gaussian_model(AXIS, [(2870, 45, 1.0)]),
    gaussian_model(AXIS, [(2900, 45, 1.0), (2960, 25, 0.3)]),
    gaussian_model(AXIS, [(2935, 45, 1.0)]),
])


def _scene(*, shape=(24, 24), noise=0.0, seed=0, k=3, dtype=np.float32):
    """Vertical stripes: pure A | pure B | pure C, then A+B and B+C mixtures."""
    rng = np.random.default_rng(seed)
    n = shape[0] * shape[1]
    cols = np.tile(np.arange(shape[1]), shape[0])
    band = np.minimum(cols * 5 // shape[1], 4)
    amp = 0.5 + 0.5 * rng.random(n)
    W = np.zeros((n, 3))
    W[band == 0, 0] = amp[band == 0]
    W[band == 1, 1] = amp[band == 1]
    W[band == 2, 2] = amp[band == 2]
    W[band == 3, 0] = W[band == 3, 1] = 0.5 * amp[band == 3]
    W[band == 4, 1] = W[band == 4, 2] = 0.5 * amp[band == 4]
    W = W[:, :k]
    X = W @ H_TRUE[:k] + noise * rng.standard_normal((n, AXIS.size))
    return np.maximum(X, 0).astype(dtype), W, band.reshape(shape)


def _roi(band, which, shape=None):
    mask = band == which
    return mask if shape is None else mask.reshape(shape)


# -- spectrum sources ---------------------------------------------------------------------
def test_roi_label_spectrum_pixels_and_model_sources():
    X, W, band = _scene()
    labels = band + 1
    comps = [
        ComponentSpec("A", h_source=RoiLabel(1)),
        ComponentSpec("B", h_source=RoiMask(band == 1)),
        ComponentSpec("C", h_source=Spectrum(H_TRUE[2][::-1] * 7, axis=AXIS[::-1])),
    ]
    s = build_seeds(X, comps, spatial_shape=band.shape, labels=labels, spectral_values=AXIS)
    np.testing.assert_allclose(s.H0[0], X[band.ravel() == 0].mean(0), rtol=1e-6)
    np.testing.assert_allclose(s.H0[1], X[band.ravel() == 1].mean(0), rtol=1e-6)
    np.testing.assert_allclose(s.H0[2], 7 * H_TRUE[2], rtol=1e-6)  # count scale kept
    assert [r.h_source for r in s.reports] == ["roi-label 1", "roi-mask", "spectrum"]
    assert s.H0.dtype == np.float32 and s.W0.dtype == np.float32

    g = Gaussian([(2870, 45, 2.0)])
    pix = np.flatnonzero(band.ravel() == 0)[:5]
    coords = np.stack(np.unravel_index(pix, band.shape), axis=1)
    comps = [ComponentSpec("A", h_source=g),
             ComponentSpec("B", h_source=SeedPixels(pixels=pix)),
             ComponentSpec("C", h_source=SeedPixels(pixels=coords)),
             ComponentSpec("D", h_source=SeedPixels(n_best=4, model=g))]
    s = build_seeds(X, comps, spatial_shape=band.shape, spectral_values=AXIS)
    np.testing.assert_allclose(s.H0[0], gaussian_model(AXIS, [(2870, 45, 2.0)]), rtol=1e-6)
    np.testing.assert_array_equal(s.H0[1], s.H0[2])
    np.testing.assert_allclose(s.H0[1], X[pix].mean(0), rtol=1e-6)
    # the best-matching pixels of a model at A's resonance are pure-A pixels
    assert spectral_angle(s.H0[3], H_TRUE[0]) < 1e-3


def test_source_errors_name_the_component():
    X, W, band = _scene()
    shape = band.shape
    with pytest.raises(ValueError, match="'lipid': its ROI mask selects no pixel"):
        build_seeds(X, [ComponentSpec("lipid", h_source=RoiMask(np.zeros(shape, bool)))],
                    spatial_shape=shape)
    with pytest.raises(ValueError, match=r"'lipid': label 7 does not occur .*present: 1, 2, 3"):
        build_seeds(X, [ComponentSpec("lipid", h_source=RoiLabel(7))], spatial_shape=shape,
                    labels=np.minimum(band + 1, 3))
    with pytest.raises(ValueError, match="no label image was given"):
        build_seeds(X, [ComponentSpec("lipid", h_source=RoiLabel(1))], spatial_shape=shape)
    with pytest.raises(ValueError, match=r"covers 400 to 700 .* stack covers 2800 to 3000"):
        build_seeds(X, [ComponentSpec("dye", h_source=Spectrum(np.ones(4),
                                                               axis=np.linspace(400, 700, 4)))],
                    spatial_shape=shape, spectral_values=AXIS)
    with pytest.raises(ValueError, match=r"has shape \(5, 5\).*spatial shape \(24, 24\)"):
        build_seeds(X, [ComponentSpec("A", h_source=Spectrum(H_TRUE[0]),
                                      w_source=FixedW(np.ones((5, 5))))], spatial_shape=shape)
    with pytest.raises(ValueError, match=r"ROI mask has shape \(3, 3\)"):
        build_seeds(X, [ComponentSpec("A", h_source=RoiMask(np.ones((3, 3), bool)))],
                    spatial_shape=shape)
    with pytest.raises(ValueError, match="outside the image"):
        build_seeds(X, [ComponentSpec("A", h_source=SeedPixels(pixels=np.array([[0, 30]])))],
                    spatial_shape=shape)
    with pytest.raises(ValueError, match="48 channels"):
        build_seeds(X, [ComponentSpec("A", h_source=Spectrum(np.ones(10)))], spatial_shape=shape)


def test_partial_spectral_overlap_is_reported():
    X, W, band = _scene()
    half = AXIS[AXIS <= 2900]
    comps = [ComponentSpec("A", h_source=Spectrum(gaussian_model(half, [(2870, 45, 1)]),
                                                  axis=half))]
    outside = AXIS > 2900
    # said out loud (a warning the CLI prints and the dock shows), not only in the report
    with pytest.warns(UserWarning, match=f"'A': its spectrum covers 2800 to .*only part of the "
                                         f"stack's axis: {outside.sum()} of 48 channels"):
        s = build_seeds(X, comps, spatial_shape=band.shape, spectral_values=AXIS)
    assert np.all(s.H0[0, outside] == 0) and np.all(s.H0[0, ~outside] > 0)
    assert any(f"{outside.sum()} of 48 channel(s)" in w for w in s.reports[0].warnings)
    with pytest.warns(UserWarning, match="its abundances will be wrong"):
        build_seeds(X, comps, spatial_shape=band.shape, spectral_values=AXIS, fixed_h=True)


# -- section B: bad seeds, dtypes, zeros, immutability -----------------------------------
@pytest.mark.parametrize("values, match", [
    (-H_TRUE[0], "negative values"),
    (np.zeros(48), "all zeros"),
    (np.where(AXIS > 2900, np.nan, 1.0), "NaN"),
])
def test_bad_spectrum_seeds_are_refused(values, match):
    X, W, band = _scene()
    with pytest.raises(ValueError, match=match):
        build_seeds(X, [ComponentSpec("A", h_source=Spectrum(values))], spatial_shape=band.shape)


@pytest.mark.parametrize("src, match", [
    (FixedW(-np.ones((24, 24))), "negative values"),
    (FixedW(np.zeros((24, 24))), "all zeros"),
    (ImportedMap(np.full(576, np.nan)), "NaN"),
    (ImportedMap(np.ones((576, 2))), r"shape \(576, 2\)"),
])
def test_bad_map_seeds_are_refused(src, match):
    X, W, band = _scene()
    with pytest.raises(ValueError, match=match):
        build_seeds(X, [ComponentSpec("A", h_source=Spectrum(H_TRUE[0]), w_source=src)],
                    spatial_shape=band.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_seed_dtype_follows_the_data(dtype):
    X, W, band = _scene(dtype=dtype)
    comps = [ComponentSpec("A", h_source=Spectrum(H_TRUE[0].astype(np.float32))),
             ComponentSpec("B", h_source=RoiMask(band == 1),
                           w_source=FixedW(W[:, 1].astype(np.float64)))]
    s = build_seeds(X, comps, spatial_shape=band.shape)
    assert s.H0.dtype == dtype and s.W0.dtype == dtype


def test_uint16_stack_seeds_are_float32():
    X, W, band = _scene()
    Xi = np.round(X * 1000).astype(np.uint16)
    s = build_seeds(Xi, [ComponentSpec("A", h_source=RoiMask(band == 0))],
                    spatial_shape=band.shape)
    assert s.H0.dtype == np.float32
    np.testing.assert_allclose(s.H0[0], Xi[band.ravel() == 0].mean(0), rtol=1e-6)


def test_exact_zeros_in_user_seeds_pass_unchanged_and_the_mu_lift_matters():
    X, W, band = _scene(k=2, noise=0.005)
    wmap = W[:, 0].astype(np.float32)  # exact zeros outside A's pixels
    h_b = H_TRUE[1].copy()
    h_b[:6] = 0.0  # silent channels
    comps = [ComponentSpec("A", h_source=Spectrum(H_TRUE[0]), w_source=FixedW(wmap)),
             ComponentSpec("B", h_source=Spectrum(h_b))]
    s = build_seeds(X, comps, spatial_shape=band.shape)
    assert s.W0[:, 0].tobytes() == wmap.tobytes()  # FixedW: bit-identical, zeros kept
    assert np.all(s.H0[1, :6] == 0)
    zw, zh = s.W0[:, 0] == 0, s.H0[1] == 0
    assert zw.sum() > 100
    W0c, H0c, Xc = s.W0.copy(), s.H0.copy(), X.copy()

    with pytest.warns(ConvergenceWarning):  # tol=0: a fixed number of iterations
        stuck = nmf(X, 2, W0=s.W0, H0=s.H0, solver="mu", backend="torch", mu_eps_lift=False,
                    max_iter=50, tol=0, random_state=0)
    assert np.all(stuck.W[zw, 0] == 0) and np.all(stuck.H[1, zh] == 0)
    with pytest.warns(ConvergenceWarning):
        lifted = nmf(X, 2, W0=s.W0, H0=s.H0, solver="mu", backend="torch", max_iter=50, tol=0,
                     random_state=0)
    assert np.count_nonzero(lifted.W[zw, 0]) > 0.5 * zw.sum()
    assert np.all(lifted.H[1, zh] > 0)
    assert lifted.summary["mu_eps_lift"]["n_lifted_W"] >= zw.sum()
    with pytest.warns(ConvergenceWarning):
        cd = nmf(X, 2, W0=s.W0, H0=s.H0, solver="cd", backend="sklearn", max_iter=50, tol=0,
                 random_state=0)
    assert cd.summary["mu_eps_lift"] == {"applied": False}
    assert np.all(cd.H >= 0) and np.count_nonzero(cd.H[1, zh]) > 0  # CD moves zeros itself
    # fixed-H NNLS keeps the spectra with their zeros exactly as given
    fixed = nnls(X, s.H0)
    assert fixed.H.tobytes() == s.H0.tobytes()
    # neither the seeds nor the data were touched by any solver
    assert s.W0.tobytes() == W0c.tobytes() and s.H0.tobytes() == H0c.tobytes()
    assert X.tobytes() == Xc.tobytes()


def test_inputs_are_never_modified():
    X, W, band = _scene(noise=0.01)
    Xp = X - 0.05
    labels = band + 1
    spec = Spectrum(H_TRUE[2].copy(), axis=AXIS.copy())
    fixed = FixedW(W[:, 1].copy())
    comps = [ComponentSpec("A", h_source=RoiLabel(1)),
             ComponentSpec("B", h_source=RoiMask(band == 1), w_source=fixed),
             ComponentSpec("C", h_source=spec),
             ComponentSpec("D")]
    copies = [a.copy() for a in (X, Xp, labels, spec.values, spec.axis, fixed.map)]
    X.setflags(write=False)
    Xp.setflags(write=False)
    for mode in W_SEED_MODES:
        build_seeds(X, comps, X_processed=Xp, spatial_shape=band.shape, labels=labels,
                    spectral_values=AXIS, w_seed_mode=mode, random_state=0)
    for before, after in zip(copies, (X, Xp, labels, spec.values, spec.axis, fixed.map),
                             strict=True):
        assert before.tobytes() == after.tobytes()


def test_same_random_state_gives_identical_seeds():
    X, W, band = _scene(noise=0.01)
    comps = [ComponentSpec("A", h_source=RoiMask(band == 0)), ComponentSpec("B"),
             ComponentSpec("C")]
    kw = dict(spatial_shape=band.shape, w_seed_mode="empty", h_fallback="random")
    a = build_seeds(X, comps, random_state=3, **kw)
    b = build_seeds(X, comps, random_state=3, **kw)
    c = build_seeds(X, comps, random_state=4, **kw)
    assert a.H0.tobytes() == b.H0.tobytes() and a.W0.tobytes() == b.W0.tobytes()
    assert not np.array_equal(a.H0[1], c.H0[1])
    assert not np.array_equal(a.W0, c.W0)


def test_seeds_on_very_different_scales_are_balanced():
    X, W, band = _scene(k=2, noise=0.01)
    comps = [ComponentSpec("A", h_source=Spectrum(H_TRUE[0]),
                           w_source=ImportedMap(1000.0 * W[:, 0] + 1.0)),  # raw-image scale
             ComponentSpec("B", h_source=Spectrum(H_TRUE[1]),
                           w_source=ImportedMap(W[:, 1] / W[:, 1].max()))]  # unit max
    s = build_seeds(X, comps, spatial_shape=band.shape)
    assert s.W0.max(axis=0) == pytest.approx([1.0, 1.0])
    res = nmf(X, 2, W0=s.W0, H0=s.H0, max_iter=1000, tol=1e-4, random_state=0)
    angles = spectral_angle(res.H, H_TRUE[:2])
    print(f"\nscale-imbalanced imported maps -> spectral angles {angles}")
    assert np.all(angles < 0.05)
    # generated maps (every W-seed mode) have unit maximum per component
    for mode in W_SEED_MODES:
        g = build_seeds(100.0 * X, [ComponentSpec("A", h_source=Spectrum(H_TRUE[0])),
                                    ComponentSpec("B", h_source=Spectrum(1e-3 * H_TRUE[1]))],
                        spatial_shape=band.shape, w_seed_mode=mode, random_state=0)
        assert g.W0.max(axis=0) == pytest.approx([1.0, 1.0]), mode
        assert g.W0.min() >= 1e-3 - 1e-9, mode


# -- W-seed modes -------------------------------------------------------------------------
def _exact_comps(k=3):
    return [ComponentSpec(n, h_source=Spectrum(H_TRUE[i])) for i, n in enumerate("ABC"[:k])]


def test_nnls_maps_are_near_disjoint_on_separable_data():
    X, W, band = _scene(noise=0.01)
    pure = band.ravel() < 3
    nn = build_seeds(X, _exact_comps(), spatial_shape=band.shape, w_seed_mode="nnls").W0
    hw = build_seeds(X, _exact_comps(), spatial_shape=band.shape, w_seed_mode="h_weighted").W0

    def crosstalk(M):  # off-target share of the map mass in the pure stripes
        own = M[pure, band.ravel()[pure]]
        return float((M[pure].sum(axis=1) - own).sum() / M[pure].sum())

    print(f"\ncross-talk in pure pixels: nnls {crosstalk(nn):.4f}, "
          f"h_weighted {crosstalk(hw):.4f}")
    assert crosstalk(nn) < 0.03
    assert crosstalk(hw) > 0.3  # overlapping spectra: a projection cannot separate them


def test_selective_score_formula_and_mixed_pixels_stay_mixed():
    H = H_TRUE[:2]
    u = H / np.linalg.norm(H, axis=1, keepdims=True)
    rho = float(u[0] @ u[1])
    X = np.stack([H[0], H[1], u[0] + u[1], 2 * H[0]])  # row 2: equal cosines to both
    S = w_seed_maps(X, H, "selective_score")
    a = X @ u.T
    # pure pixels: sigma 1 for the own spectrum, 0 for the competitor
    assert S[0] == pytest.approx([a[0, 0], 0.0])
    assert S[1] == pytest.approx([0.0, a[1, 1]])
    # an even mixture scores sigma 1/2 for both: it stays mixed
    assert S[2] == pytest.approx(0.5 * a[2])
    assert S[3, 0] == pytest.approx(2 * S[0, 0])  # amplitude is kept
    assert 0.3 < rho < 0.95  # the spectra overlap strongly

    Xs, W, band = _scene(k=2, noise=0.005)
    s = build_seeds(Xs, _exact_comps(2), spatial_shape=band.shape, w_seed_mode="selective_score")
    b = band.ravel()
    mixed = b == 3
    ratio = s.W0[mixed, 0] / s.W0[mixed, 1]
    print(f"\nselective_score on A+B mixtures: median A/B {np.median(ratio):.3f}, "
          f"min of both {s.W0[mixed].min():.3f}; pure-B pixels' A score max "
          f"{s.W0[b == 1, 0].max():.4f}")
    assert np.all((ratio > 0.7) & (ratio < 1.4))
    assert s.W0[mixed].min() > 0.15
    assert s.W0[b == 1, 0].max() < 0.05 and s.W0[b == 0, 1].max() < 0.05


def test_h_weighted_average_and_empty_values():
    X, W, band = _scene(noise=0.01)
    Xd = X.astype(np.float64)
    kw = dict(spatial_shape=band.shape, random_state=5, w_floor=0.0)
    hw = build_seeds(X, _exact_comps(), w_seed_mode="h_weighted", **kw)
    for j in range(3):
        img = Xd @ (H_TRUE[j] / H_TRUE[j].sum())
        np.testing.assert_allclose(hw.W0[:, j], img / img.max(), rtol=1e-5, atol=1e-7)
    av = build_seeds(X, _exact_comps(), w_seed_mode="average", **kw)
    mean_img = Xd.mean(axis=1)
    for j in range(3):
        np.testing.assert_allclose(av.W0[:, j], mean_img / mean_img.max(), rtol=1e-5)
    em = build_seeds(X, _exact_comps(), w_seed_mode="empty", **kw)
    assert em.W0.shape == (X.shape[0], 3)
    assert em.W0.max() == pytest.approx(1.0) and em.W0.min() >= 0.99 - 1e-6
    em2 = build_seeds(X, _exact_comps(), w_seed_mode="empty", **kw)
    assert em.W0.tobytes() == em2.W0.tobytes()
    assert [r.w_source for r in em.reports] == ["empty"] * 3


# -- residual fallback --------------------------------------------------------------------
def test_residual_fallback_recovers_an_unseeded_component():
    X, W, band = _scene(noise=0.01)
    comps = [ComponentSpec("A", h_source=Spectrum(H_TRUE[0])),
             ComponentSpec("B", h_source=Spectrum(H_TRUE[1])),
             ComponentSpec("C")]
    s = build_seeds(X, comps, spatial_shape=band.shape, random_state=0)
    rep = s.reports[2]
    assert rep.h_fallback == "residual" and rep.h_source == "residual"
    assert s.fallback_components == ["C"]
    angle = spectral_angle(s.H0[2], H_TRUE[2])
    r = build_seeds(X, comps, spatial_shape=band.shape, random_state=0, h_fallback="random")
    angle_random = spectral_angle(r.H0[2], H_TRUE[2])
    assert r.reports[2].h_fallback == "random"
    # the residual of overlapping spectra is a distorted copy of C, but far better than
    # chance, and seeded NNMF started from it recovers C
    fits = {}
    for name, seeds in (("residual", s), ("random", r)):
        fit = nmf(X, 3, W0=seeds.W0, H0=seeds.H0, max_iter=1000, tol=1e-4, random_state=0)
        fits[name] = spectral_angle(fit.H[2], H_TRUE[2])
    print(f"\nunseeded C: seed angle residual {angle:.4f} / random {angle_random:.4f} rad; "
          f"after seeded NNMF residual {fits['residual']:.4f} / random {fits['random']:.4f} rad")
    assert angle < 0.35 and angle_random > 0.6
    assert fits["residual"] < 0.05
    # rescaled to the amplitude of the basis (median of its maxima)
    assert s.H0[2].max() == pytest.approx(np.median(H_TRUE[:2].max(axis=1)), rel=1e-5)
    assert any("residual fallback" in w for w in rep.warnings)


def test_unusable_residual_falls_back_to_random_and_says_so():
    X, W, band = _scene(k=2)  # exactly explained by A and B
    comps = [ComponentSpec("A", h_source=Spectrum(H_TRUE[0])),
             ComponentSpec("B", h_source=Spectrum(H_TRUE[1])),
             ComponentSpec("ghost")]
    s = build_seeds(X.astype(np.float64), comps, spatial_shape=band.shape, random_state=1)
    rep = s.reports[2]
    assert rep.h_fallback == "random"
    assert any("residual estimate failed" in w for w in rep.warnings)
    assert np.all(s.H0[2] > 0)
    fixed = build_seeds(X, comps, spatial_shape=band.shape, random_state=1, build_w=False,
                        fixed_h=True)
    assert fixed.W0 is None
    assert any("emergency fallback" in w for w in fixed.reports[2].warnings)


def test_no_possible_fallback_names_the_unseeded_components():
    X, W, band = _scene()
    comps = [ComponentSpec("A", h_source=Spectrum(H_TRUE[0])), ComponentSpec("B"),
             ComponentSpec("C")]
    with pytest.raises(ValueError, match=r"'B', 'C' have no usable spectrum seed"):
        build_seeds(X, comps, spatial_shape=band.shape, h_fallback="none")
    with pytest.raises(ValueError, match=r"None of the components \('x', 'y'\) has a seed"):
        build_seeds(X, [ComponentSpec("x"), ComponentSpec("y")], spatial_shape=band.shape)


def test_map_only_component_gets_the_map_weighted_spectrum():
    X, W, band = _scene()
    comps = [ComponentSpec("A", w_source=FixedW(W[:, 0] * (band.ravel() == 0))),
             ComponentSpec("bg", background=True, w_source=BackgroundMap())]
    s = build_seeds(X, comps, spatial_shape=band.shape)
    assert spectral_angle(s.H0[0], H_TRUE[0]) < 1e-5
    assert s.reports[0].h_source.startswith("map-weighted mean")
    # an estimate, not a given spectrum: flagged like the other fallbacks (fixed-H NNLS
    # then warns that it keeps an estimate fixed)
    assert s.reports[0].h_fallback == "map-mean" and s.fallback_components == ["A", "bg"]
    mean_img = X.astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(s.W0[:, 1], np.maximum(mean_img / mean_img.max(), 1e-3),
                               rtol=1e-5)


# -- overwrite and use_subtracted ---------------------------------------------------------
def test_overwrite_replaces_only_the_spectral_information_map():
    X, W, band = _scene(noise=0.01)
    pix = np.flatnonzero(band.ravel() == 0)[:6]
    fixed = W[:, 2].astype(np.float32)
    comps = [ComponentSpec("A", h_source=SeedPixels(pixels=pix)),
             ComponentSpec("B", h_source=Spectrum(H_TRUE[1])),
             ComponentSpec("C", h_source=Spectrum(H_TRUE[2]), w_source=FixedW(fixed))]
    kw = dict(spatial_shape=band.shape, w_seed_mode="nnls")
    on = build_seeds(X, comps, overwrite=True, **kw)
    off = build_seeds(X, comps, overwrite=False, **kw)
    assert on.H0.tobytes() == off.H0.tobytes()  # spectra do not depend on overwrite
    assert (on.reports[0].overwritten, on.reports[0].w_source) == (True, "nnls")
    assert (off.reports[0].overwritten, off.reports[0].w_source) == (False, "spectral-info")
    # with overwrite, A's map is exactly the NNLS map of its spectrum
    plain = [ComponentSpec("A", h_source=Spectrum(on.H0[0].astype(np.float64)))] + comps[1:]
    ref = build_seeds(X, plain, **kw)
    assert on.W0.tobytes() == ref.W0.tobytes()
    # without, it is the spectral-information image: similarity to the seed-pixel spectrum
    h = X[pix].astype(np.float64).mean(0)
    cos = (X @ h) / (np.linalg.norm(X, axis=1) * np.linalg.norm(h))
    np.testing.assert_allclose(off.W0[:, 0], np.maximum(cos / cos.max(), 1e-3), rtol=1e-5)
    # other components are not affected; a map source is always kept
    assert np.array_equal(on.W0[:, 1:], off.W0[:, 1:])
    assert on.W0[:, 2].tobytes() == fixed.tobytes()
    assert on.reports[2].w_source == "fixed-w"


def test_gaussian_spectral_information_map():
    X, W, band = _scene(noise=0.01)
    g = Gaussian([(2870, 45, 1.0)], n_seed_pixels=10)
    s = build_seeds(X, [ComponentSpec("A", h_source=g), ComponentSpec("B", h_source=RoiMask(
        band == 1))], spatial_shape=band.shape, spectral_values=AXIS, overwrite=False)
    marked = s.W0[:, 0] == 1.0
    assert marked.sum() == 10 and np.all(band.ravel()[marked] == 0)
    assert np.all(s.W0[~marked, 0] == np.float32(1e-3))


def test_flat_source_gives_a_constant_spectrum_and_the_mean_image():
    X, W, band = _scene(noise=0.01)
    comps = [ComponentSpec("A", h_source=RoiMask(band == 0)),
             ComponentSpec("offset", h_source=Flat(level=0.3), background=True)]
    kept = build_seeds(X, comps, spatial_shape=band.shape, overwrite=False)
    assert np.array_equal(kept.H0[1], np.full(AXIS.size, 0.3, dtype=kept.H0.dtype))
    img = X.astype(np.float64).mean(axis=1)  # the band image of a flat spectrum
    np.testing.assert_allclose(kept.W0[:, 1], np.maximum(img / img.max(), 1e-3), rtol=1e-5)
    assert kept.reports[1].h_source == "flat 0.3"
    # overwrite=True (default): the map comes from the W-seed mode, the spectrum stays
    rebuilt = build_seeds(X, comps, spatial_shape=band.shape)
    assert np.array_equal(rebuilt.H0[1], kept.H0[1])
    assert not np.allclose(rebuilt.W0[:, 1], kept.W0[:, 1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_locked_flat_row_models_an_offset_present_in_every_pixel():
    """A pixel-varying offset everywhere: a locked flat row fits it; without it NNMF cannot."""
    X, W, band = _scene(noise=0.0)
    rng = np.random.default_rng(3)
    offset = 0.2 + 0.1 * rng.random(X.shape[0])
    Xo = (X + offset[:, None]).astype(np.float32)
    rois = [ComponentSpec(n, h_source=RoiMask(band == i)) for i, n in enumerate("ABC")]
    flat = ComponentSpec("offset", h_source=Flat(), background=True, locked=True)
    seeds = build_seeds(Xo, rois + [flat], spatial_shape=band.shape)
    fit = nmf(Xo, 4, W0=seeds.W0, H0=seeds.H0, solver="hals", locked=[3], max_iter=300,
              tol=1e-4)
    plain = nmf(Xo, 3, W0=seeds.W0[:, :3], H0=seeds.H0[:3], solver="hals", max_iter=300,
                tol=1e-4)
    assert np.array_equal(fit.H[3], np.ones(AXIS.size, dtype=fit.H.dtype))  # locked
    # the data are exactly 3 spectra + a flat offset: the flat row explains the offset
    assert fit.summary["relative_error"] < 1e-3 < 0.02 < plain.summary["relative_error"]
    # how the offset is split between the flat row and the other spectra is not
    # determined by the data when it is in every pixel (see the user guide); the
    # spectra still come out closer to the truth than without the flat row
    assert spectral_angle(H_TRUE, fit.H[:3]).mean() < spectral_angle(H_TRUE, plain.H).mean()


def test_use_subtracted_chooses_raw_or_processed_working_data():
    X, W, band = _scene(noise=0.01)
    b = np.full(AXIS.size, 0.02)
    Xp = X - b  # some values become negative
    b_ = band.ravel()
    raw_mean = X[b_ == 0].astype(np.float64).mean(0)
    proc_mean = np.maximum(Xp, 0)[b_ == 0].astype(np.float64).mean(0)

    def run(use_subtracted, background=False):
        comps = [ComponentSpec("A", h_source=RoiMask(band == 0), use_subtracted=use_subtracted,
                               background=background),
                 ComponentSpec("B", h_source=RoiMask(band == 1))]
        return build_seeds(X, comps, X_processed=Xp, spatial_shape=band.shape,
                           w_seed_mode="h_weighted", w_floor=0.0)

    sub, raw, bg = run(True), run(False), run(True, background=True)
    np.testing.assert_allclose(sub.H0[0], proc_mean, rtol=1e-5)
    np.testing.assert_allclose(raw.H0[0], raw_mean, rtol=1e-5)
    np.testing.assert_allclose(bg.H0[0], raw_mean, rtol=1e-5)  # background: always raw
    assert [r.working_data for r in (sub.reports[0], raw.reports[0], bg.reports[0])] == \
        ["processed", "raw", "raw"]
    for s, data in ((sub, np.maximum(Xp, 0)), (raw, X)):
        img = data.astype(np.float64) @ (s.H0[0] / s.H0[0].sum())
        np.testing.assert_allclose(s.W0[:, 0], img / img.max(), rtol=1e-4, atol=1e-6)
    # the other component's spectrum and map are unchanged
    assert sub.H0[1].tobytes() == raw.H0[1].tobytes()
    assert sub.W0[:, 1].tobytes() == raw.W0[:, 1].tobytes()
    assert any("negative value" in note for note in sub.notes)


def test_previous_result_source_gives_spectrum_and_map():
    X, W, band = _scene()
    prev = PreviousResult(h=H_TRUE[0] * 3, w=(W[:, 0] * 50).reshape(band.shape))
    s = build_seeds(X, [ComponentSpec("A", h_source=prev, w_source=prev)],
                    spatial_shape=band.shape)
    np.testing.assert_allclose(s.H0[0], 3 * H_TRUE[0], rtol=1e-6)
    np.testing.assert_allclose(s.W0[:, 0], W[:, 0] / W[:, 0].max(), rtol=1e-6)
    assert s.reports[0].w_source == "previous-result"


def test_a_single_spectral_point_is_refused_clearly():
    X, W, band = _scene()
    comps = [ComponentSpec("A", h_source=Spectrum(np.array([1.0]), axis=np.array([2900.0])))]
    with pytest.raises(ValueError, match="single spectral point"):
        build_seeds(X, comps, spatial_shape=band.shape, spectral_values=AXIS)


def test_the_residual_fallback_fits_every_pixel_unless_told_otherwise():
    """A small structure the sample of pixels would miss is found by the fallback."""
    X, W, band = _scene()
    comps = [ComponentSpec("A", h_source=Spectrum(H_TRUE[0])), ComponentSpec("B"),
             ComponentSpec("C")]
    s = build_seeds(X, comps, spatial_shape=band.shape, spectral_values=AXIS)
    assert f"residual fallback fitted on {X.shape[0]} of {X.shape[0]} pixels." in s.notes
    few = build_seeds(X, comps, spatial_shape=band.shape, spectral_values=AXIS,
                      max_residual_pixels=50)
    assert f"residual fallback fitted on 50 of {X.shape[0]} pixels." in few.notes
