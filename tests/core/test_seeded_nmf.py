"""Seeded NNMF that improves on its seeds: anchoring, the balanced start, drift and scale.

References: the free fit (anchor 0), fixed-H NNLS (an infinite anchor), the locked
fit, the objective of the anchored problem, and the same data at another scale.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from sklearn.exceptions import ConvergenceWarning

from napari_unmix.core import (
    NMF_SOLVERS,
    AnalysisConfig,
    ComponentSpec,
    Gaussian,
    RoiMask,
    Spectrum,
    nmf,
    nnls,
    run_analysis,
)
from napari_unmix.core.init import balance_seeds
from napari_unmix.core.metrics import mean_spectral_angle, spectral_angle
from napari_unmix.core.solvers.hals import anchor_penalty, fit_hals_numpy
from napari_unmix.core.solvers.hals_torch import fit_hals_torch
from napari_unmix.core.solvers.mu import fit_mu_numpy

ANCHORING = [key for key, spec in NMF_SOLVERS.items() if spec.partial_lock]


def quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*a, **kw)


def seeds_of(p, blur=1.5):
    """Seeds a user would give: blurred true spectra and maps at unit maximum."""
    H0 = gaussian_filter1d(p.H, blur, axis=1)
    W0 = p.W / p.W.max(axis=0) + 1e-3
    return W0, H0


def objective(X, W, H, lam, H0):
    return float(np.linalg.norm(X - W @ H) ** 2 + anchor_penalty(H, lam, H0))


# --------------------------------------------------------------------------- anchoring
@pytest.mark.parametrize("key", [pytest.param(k, id="/".join(k)) for k in ANCHORING])
def test_anchor_zero_is_the_free_fit(key, noisy):
    W0, H0 = seeds_of(noisy)
    free = quiet(nmf, noisy.X, 3, W0=W0, H0=H0, solver=key[0], backend=key[1],
                 random_state=0, max_iter=200)
    zero = quiet(nmf, noisy.X, 3, W0=W0, H0=H0, anchor=0.0, balance=False, solver=key[0],
                 backend=key[1], random_state=0, max_iter=200)
    assert zero.W.tobytes() == free.W.tobytes() and zero.H.tobytes() == free.H.tobytes()


@pytest.mark.parametrize("key", [pytest.param(k, id="/".join(k)) for k in ANCHORING])
def test_a_huge_anchor_is_fixed_h_nnls(key, noisy):
    W0, H0 = seeds_of(noisy)
    res = quiet(nmf, noisy.X, 3, W0=W0, H0=H0, anchor=1e9, solver=key[0], backend=key[1],
                max_iter=3000, tol=1e-10)
    ref = nnls(noisy.X, H0)
    np.testing.assert_allclose(res.H, H0, rtol=1e-6, atol=1e-9 * H0.max())
    # W of the anchored fit is the exact NNLS abundance of the seeds
    assert np.linalg.norm(res.W - ref.W) / np.linalg.norm(ref.W) < 1e-3


def test_an_infinite_anchor_locks_the_row(noisy):
    W0, H0 = seeds_of(noisy)
    inf = nmf(noisy.X, 3, W0=W0, H0=H0, anchor=[1.0, np.inf, 0.5], solver="hals",
              random_state=0)
    lock = nmf(noisy.X, 3, W0=W0, H0=H0, anchor=[1.0, 0.0, 0.5], locked=[1], solver="hals",
               random_state=0)
    assert inf.summary.locked == [1] and inf.summary.anchor == [1.0, None, 0.5]
    assert inf.H[1].tobytes() == H0[1].tobytes()
    np.testing.assert_array_equal(inf.W, lock.W)
    np.testing.assert_array_equal(inf.H, lock.H)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch",
                                                          marks=pytest.mark.requires_torch)])
def test_anchored_hals_keeps_locked_rows_bit_identical(backend, overlap):
    W0, H0 = seeds_of(overlap, blur=3.0)
    res = nmf(overlap.X, 3, W0=W0, H0=H0, anchor=[0.3, 2.0, 0.0], locked=[2], solver="hals",
              backend=backend, random_state=0)
    assert res.H[2].tobytes() == H0[2].tobytes()
    assert not np.array_equal(res.H[0], H0[0])  # the anchored rows still move


@pytest.mark.parametrize("fit", [fit_hals_numpy,
                                 pytest.param(fit_hals_torch, marks=pytest.mark.requires_torch),
                                 fit_mu_numpy])
def test_the_anchored_objective_never_increases(fit, overlap):
    """Restart from the same start with max_iter = 1, 2, ...: each extra iteration
    lowers ||X - WH||^2 + sum_j lambda_j ||H_j - H0_j||^2 or keeps it."""
    X = overlap.X
    W0, H0 = seeds_of(overlap, blur=3.0)
    lam = np.array([0.5, 2.0, 0.1]) * np.einsum("ij,ij->j", W0, W0)
    kw = {"anchor_weights": lam, "anchor_spectra": H0, "tol": 0.0}
    if fit is fit_hals_torch:
        kw["device"] = "cpu"
    values = []
    for i in range(1, 21):
        f = fit(X, W0, H0, max_iter=i, **kw)
        values.append(objective(X, f.W, f.H, lam, H0))
    v = np.array(values)
    assert (np.diff(v) <= 1e-10 * v[:-1]).all(), np.diff(v).max()
    assert v[-1] < v[0]
    # and the free fit ends at a lower residual but farther from the seeds
    free = fit(X, W0, H0, max_iter=20, tol=0.0, **({"device": "cpu"} if "device" in kw else {}))
    assert np.linalg.norm(free.H - H0) > np.linalg.norm(f.H - H0)


def test_anchoring_pulls_towards_the_seed_monotonically(overlap):
    W0, H0 = seeds_of(overlap, blur=3.0)
    dist = [np.linalg.norm(quiet(nmf, overlap.X, 3, W0=W0, H0=H0, anchor=a, solver="hals",
                                 max_iter=500).H - H0) for a in (0.0, 0.1, 1.0, 10.0)]
    assert dist == sorted(dist, reverse=True), dist


def test_anchor_is_refused_where_it_cannot_act(noisy):
    W0, H0 = seeds_of(noisy)
    with pytest.raises(ValueError, match="cannot anchor the spectra to their seeds"):
        nmf(noisy.X, 3, W0=W0, H0=H0, anchor=1.0, solver="cd", backend="sklearn")
    with pytest.raises(ValueError, match="it needs H0"):
        nmf(noisy.X, 3, W0=W0, anchor=1.0)
    with pytest.raises(ValueError, match="anchor must be one number >= 0"):
        nmf(noisy.X, 3, W0=W0, H0=H0, anchor=[1.0, -1.0, 0.0])
    with pytest.raises(ValueError, match="anchor must be a number >= 0"):
        AnalysisConfig(anchor=float("nan"))
    with pytest.raises(ValueError, match="anchor must be a number >= 0"):
        ComponentSpec("a", anchor=-0.5)


def test_auto_is_hals_when_anchored_and_mu_when_free(noisy):
    W0, H0 = seeds_of(noisy)
    assert nmf(noisy.X, 3, W0=W0, H0=H0, anchor=1.0).summary.solver == "hals"
    assert quiet(nmf, noisy.X, 3, W0=W0, H0=H0, anchor=0.0).summary.solver == "mu"


def test_config_anchor_strengths_follow_flags_and_sources(noisy):
    mask = np.zeros(noisy.n_pixels, dtype=bool)
    mask[:5] = True
    comps = [ComponentSpec("roi", h_source=RoiMask(mask)),
             ComponentSpec("model", h_source=Gaussian([(0.5, 0.1, 1.0)])),
             ComponentSpec("own", h_source=RoiMask(mask), anchor=3.0),
             ComponentSpec("lock", h_source=Spectrum(np.ones(noisy.n_channels)), locked=True),
             ComponentSpec("free")]
    cfg = AnalysisConfig(components=comps, anchor=2.0)
    assert cfg.anchor_strengths() == [2.0, 0.2, 3.0, np.inf, 0.0]
    back = AnalysisConfig.from_dict(cfg.to_dict())
    assert back.anchor == 2.0 and back.components[2].anchor == 3.0


# --------------------------------------------------------------------------- balanced start
def test_balanced_start_fits_the_scale_and_leaves_the_stored_seeds(noisy):
    W0, H0 = seeds_of(noisy)
    W0 = W0 * 40.0  # a seed map far off the data's scale
    res = nmf(noisy.X, 3, W0=W0, H0=H0, anchor=1.0)
    a = np.asarray(res.summary.init["balanced"])
    Wb, a_ref = balance_seeds(noisy.X, W0, H0)
    np.testing.assert_allclose(a, a_ref)
    # the amplitudes minimise ||X - W0 diag(a) H0||: no single rescale of one map does better
    base = np.linalg.norm(noisy.X - Wb @ H0)
    for j in range(3):
        for f in (0.9, 1.1):
            b = a.copy()
            b[j] *= f
            assert np.linalg.norm(noisy.X - (W0 * b) @ H0) > base
    assert base < 0.2 * np.linalg.norm(noisy.X - W0 @ H0)
    assert res.summary.error_history[0][1] == pytest.approx(base, rel=1e-6)
    # the result keeps the seeds as given, bit for bit
    assert res.arrays["W0"].tobytes() == W0.astype(noisy.X.dtype).tobytes()
    assert res.arrays["H0"].tobytes() == H0.astype(noisy.X.dtype).tobytes()


def test_without_anchor_w0_h0_are_a_custom_init_used_as_given(noisy):
    W0, H0 = seeds_of(noisy)
    res = quiet(nmf, noisy.X, 3, W0=W0, H0=H0, solver="hals", max_iter=5)
    assert "balanced" not in res.summary.init
    assert res.summary.error_history[0][1] == pytest.approx(np.linalg.norm(noisy.X - W0 @ H0))


# --------------------------------------------------------------------------- drift, collapse
def test_identical_seeds_are_reported_as_collapsed(noisy):
    W0, H0 = seeds_of(noisy)
    H0 = H0.copy()
    H0[1] = H0[0]
    W0 = W0.copy()
    W0[:, 1] = W0[:, 0]
    names = ["a", "b", "c"]
    # trusted strongly, the two copies of one seed stay (nearly) one spectrum ...
    with pytest.warns(UserWarning) as caught:
        res = nmf(noisy.X, 3, W0=W0, H0=H0, anchor=100.0, component_names=names)
    said = [str(w.message) for w in caught]
    assert any("'a' and 'b' have indistinguishable spectra" in m for m in said), said
    assert not any("start from the same seed" in m for m in said), said  # said once
    assert res.summary.seed_drift.collapsed == [[0, 1]]
    assert res.summary.seed_drift.seeds_alike == [[0, 1]]
    assert res.summary.seed_drift.min_pair[:2] == [0, 1]
    assert res.component_names == names
    # ... trusted as by default, the data pulls one copy onto the material left unseeded;
    # the pair is still named: the seeds did not tell the two apart, the data did
    with pytest.warns(UserWarning) as caught:
        res = nmf(noisy.X, 3, W0=W0, H0=H0, anchor=1.0, component_names=names)
    said = [str(w.message) for w in caught]
    assert any(re.search("'a' moved .* deg away from its seed", m) for m in said), said
    assert any("'a' and 'b' start from the same seed spectrum (0.0 deg apart" in m
               for m in said), said
    assert res.summary.seed_drift.drifted == [0] and res.summary.seed_drift.collapsed == []
    assert res.summary.seed_drift.seeds_alike == [[0, 1]]
    # the drifted copy went to the material nobody seeded
    assert spectral_angle(res.H[0], noisy.H[1]) < 0.5 * spectral_angle(res.H[0], H0[0])


def test_two_rois_over_one_region_are_named_whatever_the_fit_makes_of_them(noisy):
    """The user's case: two ROIs drawn over the same pixels give one seed twice."""
    stack = noisy.X.reshape(8, 12, noisy.X.shape[1])
    roi = np.zeros(stack.shape[:2], bool)
    roi[1:3, 1:3] = True
    other = np.zeros_like(roi)
    other[5:7, 8:10] = True
    comps = [ComponentSpec("first", h_source=RoiMask(roi)),
             ComponentSpec("again", h_source=RoiMask(roi.copy())),
             ComponentSpec("other", h_source=RoiMask(other))]
    cfg = AnalysisConfig(mode="seeded-nmf", components=comps, random_state=0)
    with pytest.warns(UserWarning, match="'first' and 'again' (start from the same seed "
                      "spectrum|have indistinguishable spectra)"):
        res = run_analysis(stack, cfg, spectral_axis=-1)
    assert res.summary.seed_drift.seeds_alike == [[0, 1]]


def test_a_spectrum_pulled_onto_other_data_is_reported_as_drifted(noisy, spectral_axis):
    W0, H0 = seeds_of(noisy)
    H0 = H0.copy()
    H0[2] = 0.05 + np.exp(-0.5 * ((spectral_axis - 0.05) / 0.02) ** 2)  # not in the data
    with pytest.warns(UserWarning, match="'c' moved .* deg away from its seed spectrum"):
        res = nmf(noisy.X, 3, W0=W0, H0=H0, anchor=0.0, component_names=["a", "b", "c"])
    drift = res.summary.seed_drift
    assert drift.drifted == [2] and drift.angles[2] > drift.drift_limit
    assert max(drift.angles[:2]) < drift.drift_limit


def test_good_seeds_raise_no_warning_and_drift_is_in_the_saved_result(noisy, tmp_path):
    W0, H0 = seeds_of(noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = nmf(noisy.X, 3, W0=W0, H0=H0, anchor=1.0)
    assert res.summary.seed_drift.drifted == [] and res.summary.seed_drift.collapsed == []
    assert res.summary.seed_drift.seeds_alike == []
    from napari_unmix.core import UnmixResult

    back = UnmixResult.load(res.save(tmp_path / "r.npz"))
    assert back.summary.seed_drift.angles == res.summary.seed_drift.angles


# --------------------------------------------------------------------------- scale
@pytest.mark.parametrize("key", [pytest.param(k, id="/".join(k),
                                              marks=[pytest.mark.requires_torch]
                                              if s.needs_torch else [])
                                 for k, s in NMF_SOLVERS.items()])
@pytest.mark.parametrize("seeded", [False, True], ids=["random", "seeded"])
def test_tiny_and_huge_float32_data_give_the_same_maps(key, seeded, noisy):
    X1 = noisy.X.astype(np.float32)
    W0, H0 = seeds_of(noisy)
    runs = {}
    for factor in (1e-6, 1.0, 1e6):
        kw = {"W0": W0, "H0": H0 * factor} if seeded else {"random_state": 0}
        runs[factor] = quiet(nmf, X1 * np.float32(factor), 3, solver=key[0], backend=key[1],
                             max_iter=300, tol=1e-6, **kw)
    ref = runs[1.0]
    fit_ref = (ref.W @ ref.H).astype(np.float64)
    for factor, res in runs.items():
        assert np.isfinite(res.W).all() and np.isfinite(res.H).all()
        assert res.W.any() and res.H.any()  # no collapse to zero
        fit = (res.W @ res.H).astype(np.float64) / factor
        # the same fit up to the scale: rounding differences of the scaled data only
        assert np.linalg.norm(fit - fit_ref) < 1e-4 * np.linalg.norm(fit_ref)
        assert abs(res.summary.relative_error - ref.summary.relative_error) < 1e-4
        assert res.summary.relative_error < 2 * noisy.noise_floor / np.linalg.norm(noisy.X)
        top = float(X1.max()) * factor
        if NMF_SOLVERS[key].scale_exact:  # fits X as it is: exact under powers of two
            assert res.summary.data_scale == 1.0
        else:
            assert 1 <= top / res.summary.data_scale < 2  # the solver saw values near 1


def test_mu_on_data_of_order_1e6_does_not_collapse(noisy):
    """The eps of MU is relative to the data: values of 1e-6 fit like values of 1."""
    X = (noisy.X * 1e-6).astype(np.float32)
    res = quiet(nmf, X, 3, solver="mu", random_state=0)
    assert res.summary.relative_error < 0.05
    assert res.summary.converged or res.summary.hit_max_iter


MU_KEYS = [pytest.param(("mu", "numpy"), id="mu/numpy"),
           pytest.param(("mu", "torch"), id="mu/torch", marks=pytest.mark.requires_torch)]


@pytest.mark.parametrize("key", MU_KEYS)
def test_mu_seeds_in_other_units_give_the_same_maps(key, noisy):
    """MU's guards and lift are relative: seeds in other units than the rescaled X
    give the same maps up to the scale, and no early, false "converged"."""
    X = noisy.X.astype(np.float32)
    W0, H0 = (a.astype(np.float32) for a in seeds_of(noisy))
    runs = {}
    for w_unit, h_unit in ((1.0, 1.0), (1.0, 1e-6), (1e6, 1.0), (1e-6, 1.0), (1e6, 1e-6)):
        runs[w_unit, h_unit] = quiet(nmf, X, 3, W0=W0 * np.float32(w_unit),
                                     H0=H0 * np.float32(h_unit), solver=key[0],
                                     backend=key[1], device="cpu", max_iter=3000, tol=1e-5)
    ref = runs[1.0, 1.0]
    W_ref = ref.W / ref.W.max(axis=0)
    x_norm = np.linalg.norm(X.astype(np.float64))
    for units, res in runs.items():
        W, H = res.W.astype(np.float64), res.H.astype(np.float64)
        peak = W.max(axis=0)
        np.testing.assert_allclose(W / peak, W_ref, atol=1e-4, err_msg=str(units))
        np.testing.assert_allclose(H * peak[:, None], ref.H * ref.W.max(axis=0)[:, None],
                                   rtol=1e-4, atol=1e-4 * ref.H.max(), err_msg=str(units))
        rel = np.linalg.norm(X - W @ H) / x_norm   # recomputed independently, float64
        assert res.summary.relative_error == pytest.approx(rel, rel=1e-5)
        assert rel == pytest.approx(ref.summary.relative_error, rel=1e-5), units
        assert ref.summary.converged
        assert res.summary.converged  # and not early: within 10 % of the iterations
        assert abs(res.summary.n_iter - ref.summary.n_iter) <= 0.1 * ref.summary.n_iter


SEEDED_KEYS = [pytest.param(("hals", "numpy"), id="hals/numpy"),
               pytest.param(("mu", "numpy"), id="mu/numpy"),
               pytest.param(("hals", "torch"), id="hals/torch", marks=pytest.mark.requires_torch),
               pytest.param(("mu", "torch"), id="mu/torch", marks=pytest.mark.requires_torch)]


@pytest.mark.parametrize("given", ["H0", "W0 and H0"])
@pytest.mark.parametrize("key", SEEDED_KEYS)
def test_float32_data_far_from_the_seeds_units_gives_the_same_maps(key, given, noisy):
    """Seed spectra near 1 for float32 data of order 1e-20 or 1e20 (values in physical
    units): the fitted or balanced seed map took the whole 1e20 and its squares left
    float32's range (NaN maps, "overflow in matmul").  The scale now moves into the
    spectra by a power of two: the maps are those of the data x 1 up to the scale."""
    W0, H0 = (a.astype(np.float32) for a in seeds_of(noisy))
    X = noisy.X.astype(np.float32)
    kw = dict(H0=H0, W0=W0 if given == "W0 and H0" else None, anchor=1.0, solver=key[0],
              backend=key[1], device="cpu", random_state=0, max_iter=300)
    ref = quiet(nmf, X, 3, **kw)
    W_ref = ref.W / ref.W.max(axis=0)
    for units in (1e-20, 1e20):
        Xu = X * np.float32(units)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("error", RuntimeWarning)  # no overflow on the way
            res = nmf(Xu, 3, **kw)
        W, H = res.W.astype(np.float64), res.H.astype(np.float64)
        assert np.isfinite(W).all() and np.isfinite(H).all(), units
        peak = W.max(axis=0)
        np.testing.assert_allclose(W / peak, W_ref, atol=1e-4, err_msg=str(units))
        np.testing.assert_allclose(H * peak[:, None] / units,
                                   ref.H * ref.W.max(axis=0)[:, None],
                                   rtol=1e-4, atol=1e-4 * ref.H.max(), err_msg=str(units))
        rel = np.linalg.norm(Xu.astype(np.float64) - W @ H) / np.linalg.norm(Xu.astype(np.float64))
        assert res.summary.relative_error == pytest.approx(rel, rel=1e-4)
        assert rel == pytest.approx(ref.summary.relative_error, rel=1e-4), units
        assert "scale moved to H" in res.summary.init
    assert "scale moved to H" not in ref.summary.init


@pytest.mark.parametrize("key", SEEDED_KEYS)
def test_unbalanced_seeds_far_from_float32_data_do_not_collapse(key, noisy):
    """The specification's seeded NNMF (no anchor: the seeds as given, unbalanced) of
    float32 data 1e20 times smaller than ``W0 H0``: MU collapsed to ``W = H = 0``
    (relative error 1.0) after "overflow encountered in matmul".  It now fits as the
    same problem does in float64."""
    W0, H0 = (a.astype(np.float32) for a in seeds_of(noisy))
    Xu = noisy.X.astype(np.float32) * np.float32(1e-20)
    kw = dict(W0=W0, H0=H0, solver=key[0], backend=key[1], device="cpu", max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", RuntimeWarning)
        res = nmf(Xu, 3, **kw)
    ref = quiet(nmf, Xu.astype(np.float64), 3, **{**kw, "W0": W0.astype(np.float64),
                                                 "H0": H0.astype(np.float64)})
    assert np.isfinite(res.W).all() and np.isfinite(res.H).all()
    assert res.summary.relative_error == pytest.approx(ref.summary.relative_error, rel=1e-3)
    assert ref.summary.relative_error < 0.05


# --------------------------------------------------------------------------- run_analysis
def test_run_analysis_anchors_with_the_config_trust(noisy):
    share = noisy.W / noisy.W.sum(axis=1, keepdims=True)
    mask = [share[:, j] > 0.9 for j in range(3)]  # the nearly pure pixels of each
    comps = [ComponentSpec(f"c{j}", h_source=RoiMask(m)) for j, m in enumerate(mask)]
    a = run_analysis(noisy.X, AnalysisConfig(mode="seeded-nmf", components=comps,
                                             random_state=0), spectral_axis=1)
    assert a.summary.anchor == [1.0, 1.0, 1.0] and a.summary.solver == "hals"
    assert "balanced" in a.summary.init
    b = run_analysis(noisy.X, AnalysisConfig(mode="seeded-nmf", components=comps, anchor=0.0,
                                             solver="hals", random_state=0), spectral_axis=1)
    assert b.summary.anchor == [0.0, 0.0, 0.0]
    assert a.config.anchor == 1.0 and b.config.anchor == 0.0
    H0 = a.arrays["H0"]
    assert np.linalg.norm(a.H - H0) < np.linalg.norm(b.H - H0)


@pytest.mark.realdata
@pytest.mark.parametrize("scene", ["samson", "jasper"])
def test_real_scenes_seeded_from_small_rois_stay_near_or_beat_their_seeds(scene):
    """Discs of radius 2 px on the purest region of each material (placed from the
    ground truth, as a user paints a region they recognise)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from _scenes import disc_rois, load_scene

    try:
        cube, M, A, names = load_scene(scene)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    rois = disc_rois(A, cube.shape[:2], radius=2)
    comps = [ComponentSpec(n, h_source=RoiMask(r)) for n, r in zip(names, rois, strict=True)]
    res = run_analysis(cube, AnalysisConfig(mode="seeded-nmf", components=comps,
                                            random_state=0), spectral_axis=-1)
    seeds = mean_spectral_angle(M, res.arrays["H0"])
    free = quiet(run_analysis, cube, AnalysisConfig(mode="seeded-nmf", components=comps,
                                                    anchor=0.0, solver="hals", random_state=0),
                 spectral_axis=-1)
    sad = mean_spectral_angle(M, res.H)
    print(f"\n{scene}: seeds {seeds:.4f}, seeded NNMF {sad:.4f}, free fit "
          f"{mean_spectral_angle(M, free.H):.4f} rad")
    assert not res.summary.hit_max_iter
    # measured: samson 0.0572 -> 0.0537, jasper 0.0730 -> 0.0778 (free 0.11 / 0.27)
    assert sad <= 1.1 * seeds
    assert sad < 0.6 * mean_spectral_angle(M, free.H)
    if scene == "samson":
        assert sad < seeds
