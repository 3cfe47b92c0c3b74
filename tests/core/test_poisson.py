"""The Poisson loss through ``core.nnls``, ``core.nmf``, ``AnalysisConfig``, ``run_analysis``
and the CLI.

The target: on Poisson counts at about 5 counts per channel (three strongly
overlapping Gaussian bands, sparse abundances), fixed-H NNLS with the true spectra
recovers the abundances with an RMSE at least 20 % lower under the Poisson loss than
under least squares (measured over five seeds with the default ``tol``: 22.3 %;
``benchmarks/poisson.py`` prints the table for 1, 5, 20 and 100 counts).

References: scikit-learn's ``NMF(beta_loss="kullback-leibler", solver="mu")`` from the
same start (the same iterates), ``scipy.optimize.minimize`` (L-BFGS-B) of each pixel's
divergence, and the divergence written out with ``scipy.special.xlogy``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import xlogy
from sklearn.decomposition import non_negative_factorization
from sklearn.exceptions import ConvergenceWarning

from napari_unmix.cli import main
from napari_unmix.core import (
    MODES,
    AnalysisConfig,
    Cancelled,
    ComponentSpec,
    Spectrum,
    UnmixResult,
    nmf,
    nnls,
    run_analysis,
)
from napari_unmix.core.metrics import mean_spectral_angle
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.io import write_spectra_csv, write_stack_tiff


def bands(seed, counts=5.0, n=2000, m=64, centres=(0.42, 0.5, 0.58), width=0.08, p=0.3):
    """Poisson counts of Gaussian bands; ``W`` scaled to ``counts`` per channel on average.

    The default: three bands whose spacing equals their width (strong overlap) and
    sparse abundances (a pixel holds a band with probability ``p``, exponential
    amplitudes), the regime of ``benchmarks/_data.py``.
    """
    rng = np.random.default_rng(seed)
    nu = np.linspace(0.0, 1.0, m)
    H = np.exp(-0.5 * ((nu[None, :] - np.asarray(centres)[:, None]) / width) ** 2)
    W = rng.exponential(1.0, (n, len(centres))) * (rng.random((n, len(centres))) < p)
    W *= counts / (W @ H).mean()
    return rng.poisson(W @ H).astype(np.float64), W, H


def rmse(W_true, W):
    """Mean over components of the abundance RMSE (the scale of fixed-H NNLS is known)."""
    return float(np.mean(np.sqrt(np.mean((np.asarray(W, float) - W_true) ** 2, axis=0))))


def divergence_rows(X, W, H):
    Y = np.asarray(W, np.float64) @ np.asarray(H, np.float64)
    X = np.asarray(X, np.float64)
    return (xlogy(X, X) - xlogy(X, Y) - X + Y).sum(axis=1)


@pytest.fixture(scope="module")
def counts():
    X, W, H = bands(11, n=400, centres=(0.3, 0.5, 0.7), width=0.1, p=0.6)
    return X, W, H


# ------------------------------------------------------------------- the target


def test_poisson_nnls_beats_least_squares_on_counts():
    ls, ps = [], []
    for seed in range(5):
        X, W, H = bands(seed)
        ls.append(rmse(W, nnls(X, H).W))
        ps.append(rmse(W, nnls(X, H, loss="poisson").W))
    gain = 1.0 - np.mean(ps) / np.mean(ls)
    # measured 0.223 (per seed 0.197 .. 0.263); least squares would give 0
    assert gain >= 0.20, (gain, ls, ps)
    assert all(p < q for p, q in zip(ps, ls, strict=True))


# --------------------------------------------------------------------- fixed-H NNLS


def _lbfgs(x, H):
    hs = H.sum(axis=1)

    def f(w):
        y = np.maximum(w @ H, 1e-300)
        return float((xlogy(x, x) - xlogy(x, y) - x + y).sum()), hs - H @ (x / y)

    w0 = np.full(len(H), max(x.sum(), 1e-12) / (len(H) * hs.mean()))
    return minimize(f, w0, jac=True, method="L-BFGS-B", bounds=[(0, None)] * len(H),
                    options={"ftol": 1e-16, "gtol": 1e-12, "maxiter": 20000}).fun


def test_nnls_reaches_the_optimum_of_every_pixel(counts):
    X, _, H = counts
    X = X[X.any(axis=1)][:12] * 3.0    # not a power of two: the data is scaled inside
    res = nnls(X, H, loss="poisson", tol=1e-13, max_iter=200000, chunk_size=5)
    assert res.summary.n_chunks == 3 and not res.summary.hit_max_iter
    f = divergence_rows(X, res.W, H)
    f_ref = np.array([_lbfgs(x, H) for x in X])
    np.testing.assert_allclose(f, f_ref, rtol=1e-6)
    # the summary's deviance is 2 D, per pixel and in total
    np.testing.assert_allclose(res.arrays["deviance"], 2 * f, rtol=1e-10)
    assert res.summary.deviance == pytest.approx(2 * f.sum(), rel=1e-10)
    assert res.summary.mean_deviance == pytest.approx(2 * f.mean(), rel=1e-10)


def test_nnls_summary_params_and_file(counts, tmp_path):
    X, _, H = counts
    res = nnls(X, H, loss="poisson")
    s = res.summary
    assert (s.loss, s.solver, s.exact) == ("poisson", "mu", False)
    assert res.params["loss"] == "poisson"
    assert res.arrays["deviance"].shape == (len(X),)
    back = UnmixResult.load(res.save(tmp_path / "r.npz"))
    assert back.summary.loss == "poisson" and back.summary.deviance == s.deviance
    np.testing.assert_array_equal(back.arrays["deviance"], res.arrays["deviance"])
    ls = nnls(X, H)
    assert ls.summary.loss == "frobenius" and ls.summary.deviance is None
    assert "deviance" not in ls.arrays and ls.params["loss"] == "frobenius"


def test_nnls_progress_per_chunk_and_cancel(counts):
    X, _, H = counts
    infos = []
    nnls(X, H, loss="poisson", chunk_size=100, callback=infos.append)
    assert [i.iteration for i in infos] == [1, 2, 3, 4] and infos[-1].fraction == 1.0
    with pytest.raises(Cancelled):
        nnls(X, H, loss="poisson", chunk_size=100, callback=lambda info: False)


def test_nnls_capped_pixels_warn(counts):
    X, _, H = counts
    with pytest.warns(ConvergenceWarning, match="pixel.s. stopped at max_iter=20 before "
                      "reaching tol"):
        res = nnls(X, H, loss="poisson", max_iter=20, tol=1e-12)
    assert res.summary.hit_max_iter and res.summary.n_capped_pixels > 0
    assert len(res.summary.capped_pixels) == res.summary.n_capped_pixels
    assert np.isfinite(res.W).all()


def test_nnls_refusals():
    X, _, H = bands(0, n=50)
    with pytest.raises(ValueError, match="cannot fit loss='poisson'"):
        nnls(X, H, loss="poisson", solver="active-set")
    with pytest.raises(ValueError, match="fits loss='poisson' with abundance='sum-to-one'"):
        nnls(X, H, loss="poisson", abundance="sum-to-one")
    with pytest.raises(ValueError, match="Unknown loss 'kl'"):
        nnls(X, H, loss="kl")


# ----------------------------------------------------------- inputs, dtype, scale


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_untouched_and_dtype_kept(counts, dtype):
    X, _, H = counts
    X, H = X.astype(dtype), H.astype(dtype)
    W0, H0 = np.full((len(X), 3), 0.5, dtype), H + dtype(0.01)
    copies = [a.copy() for a in (X, H, W0, H0)]
    a = nnls(X, H, loss="poisson")
    b = nmf(X, 3, W0=W0, H0=H0, anchor=1.0, locked=[1], loss="poisson", max_iter=50)
    c = nmf(X, 3, loss="poisson", random_state=0, max_iter=50)
    for res in (a, b, c):
        assert res.W.dtype == res.H.dtype == res.arrays["deviance"].dtype == dtype
    for arr, copy in zip((X, H, W0, H0), copies, strict=True):
        np.testing.assert_array_equal(arr, copy)


def test_nan_and_negative_data_as_in_the_least_squares_path(counts):
    X, _, H = counts
    bad = X.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError) as ls_err:
        nnls(bad, H)
    with pytest.raises(ValueError) as p_err:
        nnls(bad, H, loss="poisson")
    assert str(p_err.value) == str(ls_err.value) and "NaN" in str(p_err.value)
    neg = X - 0.5
    with pytest.raises(ValueError, match="negative"):
        nnls(neg, H, loss="poisson")
    with pytest.raises(ValueError, match="negative"):
        nmf(neg, 3, loss="poisson")
    # the negative policy applies first: clip, then the Poisson fit of what is left
    res = nnls(neg, H, loss="poisson", negative="clip")
    assert res.summary.negative.policy == "clip" and res.summary.negative.n_negative > 0
    np.testing.assert_allclose(res.W, nnls(np.maximum(neg, 0), H, loss="poisson").W)


def _wh(res):
    return res.W.astype(np.float64) @ res.H.astype(np.float64)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("case", ["nnls", "nmf", "seeded-nmf"])
def test_scaled_counts_give_the_same_fit_up_to_the_scale(counts, case):
    X, W, H = counts
    c = 2.0 ** 10

    def run(Y):
        if case == "nnls":
            return nnls(Y, H, loss="poisson")
        if case == "nmf":
            return nmf(Y, 3, loss="poisson", random_state=4, max_iter=300)
        return nmf(Y, 3, H0=H + 0.05, anchor=1.0, locked=[2], loss="poisson", max_iter=300)

    a, b = run(X), run(X * c)
    np.testing.assert_allclose(_wh(b), c * _wh(a), rtol=1e-12, atol=1e-12 * c * X.max())
    assert b.n_iter == a.n_iter
    assert b.summary.deviance == pytest.approx(c * a.summary.deviance, rel=1e-12)


# ------------------------------------------------------------------------- NNMF


@pytest.mark.parametrize(("solver", "backend", "bound"), [
    ("mu", "numpy", 1e-12),
    pytest.param("mu", "torch", 1e-10, marks=pytest.mark.requires_torch),
    ("mu", "sklearn", 1e-12),
])
def test_nmf_iterates_match_sklearn_kl(counts, solver, backend, bound):
    X = counts[0] * 3.0   # the maximum outside [1, 2): core.nmf scales the data
    rng = np.random.default_rng(2)
    W0, H0 = rng.random((len(X), 3)) + 0.1, rng.random((3, X.shape[1])) + 0.1
    W_ref, H_ref, _ = non_negative_factorization(
        X, W=W0.copy(), H=H0.copy(), n_components=3, init="custom", solver="mu",
        beta_loss="kullback-leibler", tol=0.0, max_iter=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = nmf(X, 3, W0=W0, H0=H0, solver=solver, backend=backend, loss="poisson",
                  tol=0.0, max_iter=100)
    assert res.summary.loss == "poisson" and res.summary.solver == "mu"
    assert np.abs(res.W - W_ref).max() <= bound * np.abs(W_ref).max()
    assert np.abs(res.H - H_ref).max() <= bound * np.abs(H_ref).max()
    # scikit-learn's own divergence (its square root is what it reports)
    d = divergence_rows(X, res.W, res.H).sum()
    assert res.summary.deviance == pytest.approx(2 * d, rel=1e-9)


def _restarts(X, n, **kw):
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i in range(1, n + 1):
            res = nmf(X, 3, loss="poisson", tol=0.0, max_iter=i, **kw)
            out.append(res.summary.error_history[-1][1])
    return np.array(out)


@pytest.mark.parametrize("case", ["random", "anchored", "anchored+locked"])
def test_divergence_decreases_every_iteration(counts, case):
    # restart from the same start with max_iter = 1, 2, ...: the objective (D, plus
    # the anchor penalty) after each extra iteration must not increase
    X, _, H = counts
    kw = {"random_state": 3, "init": "random"}
    if case != "random":
        kw = {"W0": np.full((len(X), 3), 1.0), "H0": np.roll(H, 4, axis=1) + 0.05,
              "anchor": [0.3, 1.0, 3.0]}
        if case.endswith("locked"):
            kw["locked"] = [1]
    e = _restarts(X, 20, **kw)
    assert (np.diff(e) <= 1e-12 * e[:-1]).all(), np.diff(e).max()
    assert e[-1] < 0.9 * e[0]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_anchor_weights_pull_like_the_least_squares_ones():
    # anchor is scale-free under both losses: the same trust moves the spectra
    # about as far from their seeds (measured SAD 0.027 / 0.028 at anchor 1)
    X, W, H = bands(1, n=1500)
    from scipy.ndimage import gaussian_filter1d

    H0 = gaussian_filter1d(H, 2, axis=1)
    moved = {}
    for loss in ("frobenius", "poisson"):
        res = nmf(X, 3, H0=H0, anchor=1.0, solver="mu", loss=loss, max_iter=3000, tol=1e-5)
        moved[loss] = mean_spectral_angle(H0, res.H)
    assert 0.7 < moved["poisson"] / moved["frobenius"] < 1.4, moved
    # a huge anchor keeps the spectra and leaves W to the Poisson NNLS
    res = nmf(X, 3, H0=H, anchor=1e9, solver="mu", loss="poisson", max_iter=3000, tol=1e-8)
    ref = nmf(X, 3, H0=H, locked=[0, 1, 2], loss="poisson", tol=1e-8, max_iter=3000)
    assert np.abs(res.H - H).max() < 1e-4
    assert np.abs(res.W - ref.W).max() < 1e-2 * ref.W.max()


def test_nmf_all_locked_is_the_poisson_nnls(counts):
    X, _, H = counts
    res = nmf(X, 3, H0=H, locked=[0, 1, 2], loss="poisson", tol=1e-6)
    ref = nnls(X, H, loss="poisson", tol=1e-6)
    np.testing.assert_array_equal(res.W, ref.W)
    assert res.summary.solver == "mu" and res.summary.loss == "poisson"
    assert res.summary.deviance == pytest.approx(ref.summary.deviance, rel=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_nmf_summary_and_refusals(counts):
    X, _, H = counts
    res = nmf(X, 3, H0=H, anchor=1.0, loss="poisson", max_iter=40, tol=1e-3)
    s = res.summary
    assert s.loss == "poisson" and res.params["loss"] == "poisson"
    assert s.init["W0"] == "poisson nnls fit to H0"
    assert "divergence" in s.stopping_rule
    assert s.mean_deviance == pytest.approx(s.deviance / len(X))
    assert nmf(X, 3, random_state=0, max_iter=20, tol=1e-2).summary.loss == "frobenius"
    with pytest.raises(ValueError, match="cannot fit loss='poisson'"):
        nmf(X, 3, loss="poisson", solver="hals")
    with pytest.raises(ValueError, match="mu/sklearn cannot keep a subset"):
        nmf(X, 3, H0=H, locked=[0], loss="poisson", solver="mu", backend="sklearn")


# --------------------------------------------------------- config, modes, analysis


def test_config_loss_is_validated_and_saved():
    cfg = AnalysisConfig(mode="nnls", loss="poisson")
    assert AnalysisConfig.from_json(cfg.to_json()).loss == "poisson"
    assert AnalysisConfig().loss == "frobenius"
    with pytest.raises(ValueError, match="loss='kl' is not one of frobenius, poisson"):
        AnalysisConfig(loss="kl")
    assert {name for name, spec in MODES.items() if spec.uses("loss")} == {
        "nmf", "seeded-nmf", "nnls"}
    # the menus a front end shows for a loss (the table itself lists every entry)
    nnls_mode, nmf_mode = MODES["nnls"], MODES["nmf"]
    assert nnls_mode.solver_names(loss="poisson") == ["mu"]
    assert "mu" not in nnls_mode.solver_names(loss="frobenius")
    assert "mu" in nnls_mode.solver_names()
    assert nmf_mode.solver_names(loss="poisson") == ["mu"]
    assert "sklearn" in nmf_mode.backend_names("mu", loss="poisson")
    assert nmf_mode.backend_names("cd", loss="poisson") == []


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_run_analysis_passes_the_loss(counts):
    X, _, H = counts
    stack = X.T.reshape(X.shape[1], 20, 20)
    comps = [ComponentSpec(f"b{j}", h_source=Spectrum(H[j])) for j in range(3)]
    for mode in ("nnls", "seeded-nmf"):
        cfg = AnalysisConfig(mode=mode, components=comps, loss="poisson", max_iter=100,
                             tol=1e-3)
        res = run_analysis(stack, cfg)
        assert res.summary.loss == "poisson" and res.config.loss == "poisson"
        assert res.arrays["deviance"].shape == (400,)
        assert MODES[mode].pick_solver("auto", "auto", config=cfg).algorithm == "mu"
    cfg = AnalysisConfig(mode="nmf", n_components=3, loss="poisson", max_iter=50, tol=1e-3)
    assert run_analysis(stack, cfg).summary.solver == "mu"
    bad = AnalysisConfig(mode="nnls", components=comps, loss="poisson", solver="active-set")
    with pytest.raises(ValueError, match="cannot fit loss='poisson'"):
        MODES["nnls"].pick_solver(bad.solver, bad.backend, config=bad)


# ---------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    sample = make_crs_sample(shape=(16, 14), n_channels=12, random_state=1)
    d = tmp_path_factory.mktemp("poisson-cli")
    write_stack_tiff(d / "s.tif", sample.stack * 50, axes="CYX",
                     spectral_values=sample.spectral_axis, spectral_unit="cm^-1")
    write_spectra_csv(d / "h.csv", sample.H, sample.spectral_axis, sample.component_names,
                      "cm^-1")
    return d


def test_cli_nnls_with_the_poisson_loss(capsys, cli_files, tmp_path):
    code = main(["run", str(cli_files / "s.tif"), "--mode", "nnls", "--spectra",
                 str(cli_files / "h.csv"), "--loss", "poisson", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["summary"]["loss"] == "poisson" and doc["params"]["loss"] == "poisson"
    assert doc["summary"]["deviance"] > 0 and doc["summary"]["mean_deviance"] > 0
    res = UnmixResult.load(tmp_path / "result.npz")
    assert res.arrays["deviance"].shape == (16 * 14,)
    assert res.summary.deviance == pytest.approx(float(res.arrays["deviance"].sum()),
                                                 rel=1e-5)


@pytest.mark.parametrize(("args", "message"), [
    (["--mode", "pca", "-k", "2", "--loss", "poisson"],
     "--loss is not used by --mode pca (only by nmf, seeded-nmf, nnls); leave it out."),
    (["--mode", "nnls", "--spectra", "H", "--loss", "poisson", "--solver", "active-set"],
     "cannot fit --loss poisson (it fits --loss frobenius); use mu/numpy, mu/torch"),
])
def test_cli_refusals(capsys, cli_files, tmp_path, args, message):
    args = [str(cli_files / "h.csv") if a == "H" else a for a in args]
    code = main(["run", str(cli_files / "s.tif"), *args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not (tmp_path / "o").exists()
    assert main(["run", str(cli_files / "s.tif"), "--mode", "nnls", "--loss", "gauss",
                 "--out", str(tmp_path)]) == 2
    assert "invalid choice: 'gauss'" in capsys.readouterr().err


def test_series_shared_basis_fits_the_poisson_loss(counts):
    from napari_unmix.core import unmix_series

    X, _, H = counts
    stack = X.T.reshape(X.shape[1], 2, 10, 20).transpose(1, 0, 2, 3)  # (Z, C, Y, X)
    cfg = AnalysisConfig(mode="nnls", loss="poisson")
    res = unmix_series(stack, cfg, H=H, strategy="shared-basis")
    assert [p.fit.loss for p in res.planes] == ["poisson", "poisson"]
    ref = nnls(X[:200], H, loss="poisson")
    np.testing.assert_allclose(res.as_result().W[:200], ref.W, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch",
                                                          marks=pytest.mark.requires_torch)])
def test_seeded_poisson_nnmf_with_anchor_1e20_in_float32_is_the_locked_fit(backend):
    """The anchored H update overflowed float32 at anchor 1e20 (NaN maps)."""
    rng = np.random.default_rng(0)
    nu = np.linspace(0.0, 1.0, 24)
    H = np.stack([0.05 + np.exp(-0.5 * ((nu - c) / 0.1) ** 2) for c in (0.2, 0.5, 0.8)])
    W = rng.gamma(1.0, 1.0, (300, 3))
    X = rng.poisson(50 * W @ H).astype(np.float32)
    H0 = (50 * H * rng.uniform(0.8, 1.2, H.shape)).astype(np.float32)
    W0 = (W / W.max(axis=0)).astype(np.float32)
    runs = {}
    for anchor in (1e20, np.inf):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            runs[anchor] = nmf(X, 3, W0=W0, H0=H0, loss="poisson", solver="mu",
                               backend=backend, device="cpu", anchor=anchor, tol=1e-7,
                               max_iter=3000)
    res, locked = runs[1e20], runs[np.inf]
    assert np.isfinite(res.W).all() and np.isfinite(res.H).all()
    assert res.summary.converged
    np.testing.assert_array_equal(res.H, locked.H)     # = H0: the row is as locked
    # the locked run solves W exactly (Poisson NNLS); MU gets there to its tolerance
    np.testing.assert_allclose(res.W, locked.W, rtol=0, atol=1e-3 * locked.W.max())
    assert res.summary.deviance == pytest.approx(locked.summary.deviance, rel=1e-4)
