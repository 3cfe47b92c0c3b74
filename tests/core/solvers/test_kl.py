"""The Poisson-loss solvers (``core/solvers/kl.py``): KL multiplicative updates, numpy and torch.

References
----------
* scikit-learn's ``mu`` solver with ``beta_loss="kullback-leibler"`` performs the same
  Lee & Seung updates in the same order; from the same start, with ``tol=0``, the
  iterates agree to rounding (measured: bit-identical in numpy float64, 1e-14 in
  torch after 200 iterations).
* ``scipy.optimize.minimize`` (L-BFGS-B, bounds ``w >= 0``, analytic gradient) of
  each pixel's divergence is the reference of the fixed-H solver.
* The anchored ``H`` update must be the exact minimiser of its majoriser, checked
  against a bounded scalar minimisation entry by entry.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar
from scipy.special import xlogy
from sklearn.decomposition import non_negative_factorization

from napari_unmix.core.solvers._common import kl_divergence
from napari_unmix.core.solvers.kl import (
    _anchored_h,
    _Ops,
    fit_kl_numpy,
    fit_kl_torch,
    fit_nnls_kl_numpy,
    fit_nnls_kl_torch,
)
from napari_unmix.core.solvers.mu import fit_mu_numpy
from napari_unmix.core.solvers.sklearn_nmf import fit_sklearn

BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("torch", id="torch", marks=pytest.mark.requires_torch),
]


def fit(backend, X, W, H, **kw):
    kw.setdefault("tol", 0.0)
    if backend == "torch":
        return fit_kl_torch(X, W, H, device="cpu", **kw)
    return fit_kl_numpy(X, W, H, **kw)


def nnls_fit(backend, X, H, **kw):
    if backend == "torch":
        return fit_nnls_kl_torch(X, H, device="cpu", **kw)
    return fit_nnls_kl_numpy(X, H, **kw)


def gaussians(m, centres, width):
    nu = np.linspace(0.0, 1.0, m)
    return np.exp(-0.5 * ((nu[None, :] - np.asarray(centres)[:, None]) / width) ** 2)


@pytest.fixture(scope="module")
def counts():
    """Poisson counts of 3 overlapping bands (mean about 3 counts), max scaled into [1, 2)."""
    rng = np.random.default_rng(7)
    H = gaussians(40, [0.35, 0.5, 0.65], 0.1) + 0.02
    W = rng.gamma(1.0, 2.0, (300, 3)) * (rng.random((300, 3)) < 0.7)
    X = rng.poisson(W @ H).astype(np.float64)
    X[:5] = 0.0                                   # all-zero pixels are normal
    scale = 2.0 ** np.floor(np.log2(X.max()))
    return X / scale, W / scale, H


def start(X, k=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.random((X.shape[0], k)) + 0.1, rng.random((k, X.shape[1])) + 0.1


def divergence(X, W, H):
    """Reference ``D(X || WH)`` in float64 (scipy's xlogy: 0 log 0 = 0)."""
    Y = np.asarray(W, np.float64) @ np.asarray(H, np.float64)
    X = np.asarray(X, np.float64)
    return float((xlogy(X, X) - xlogy(X, Y) - X + Y).sum())


def max_rel(a, b):
    return float(np.abs(np.asarray(a, float) - b).max() / np.abs(b).max())


# ------------------------------------------------------------------- the divergence


@pytest.mark.parametrize("backend", BACKENDS)
def test_kl_divergence_against_the_formula(backend, counts):
    X, W, H = counts
    W = W + 0.01
    ref_rows = [divergence(X[i:i + 1], W[i:i + 1], H) for i in range(len(X))]
    args = (X, W, H)
    if backend == "torch":
        import torch

        args = tuple(torch.as_tensor(a) for a in args)
    rows = kl_divergence(*args, floor=1e-300, per_row=True, chunk_rows=7, xp=backend)
    np.testing.assert_allclose(rows, ref_rows, rtol=1e-12, atol=1e-14)
    total = kl_divergence(*args, floor=1e-300, xp=backend)
    assert total == pytest.approx(divergence(X, W, H), rel=1e-12)
    # a zero count contributes WH only; the all-zero pixels: sum of WH
    np.testing.assert_allclose(rows[:5], (W[:5] @ H).sum(axis=1), rtol=1e-12)


def test_kl_divergence_floor():
    X = np.array([[2.0, 0.0]])
    W = np.array([[1.0]])
    H = np.array([[0.0, 1.0]])  # the first channel is covered by no spectrum
    d = kl_divergence(X, W, H, floor=1e-6)
    assert d == pytest.approx(2 * np.log(2 / 1e-6) - 2 + 1e-6 + 1.0, rel=1e-12)


# ------------------------------------------------------------- NNMF against scikit-learn


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("dtype", "bound"), [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("n_iter", [1, 25, 200])
def test_iterates_match_sklearn_kl_mu(backend, dtype, bound, n_iter, counts):
    X = counts[0].astype(dtype)
    W0, H0 = (a.astype(dtype) for a in start(X))
    W_ref, H_ref, done = non_negative_factorization(
        X, W=W0.copy(), H=H0.copy(), n_components=3, init="custom", solver="mu",
        beta_loss="kullback-leibler", tol=0.0, max_iter=n_iter)
    assert done == n_iter
    # scikit-learn zeroes H entries below eps64 after each step (we do not): that
    # changes entries by less than eps64, far below the bound (it happens here)
    res = fit(backend, X, W0, H0, max_iter=n_iter)
    assert res.n_iter == n_iter and not res.converged
    assert res.W.dtype == res.H.dtype == dtype
    assert max_rel(res.W, W_ref) <= bound
    assert max_rel(res.H, H_ref) <= bound


def test_sklearn_backend_fits_the_poisson_loss(counts):
    X = counts[0]
    W0, H0 = start(X)
    ours = fit_kl_numpy(X, W0, H0, max_iter=40, tol=0.0)
    sk = fit_sklearn(X, W0, H0, solver="mu", max_iter=40, tol=0.0, loss="poisson")
    assert max_rel(sk.W, ours.W) <= 1e-12 and max_rel(sk.H, ours.H) <= 1e-12
    # its history is the divergence, like ours
    assert sk.history[-1][1] == pytest.approx(divergence(X, sk.W, sk.H), rel=1e-10)
    with pytest.raises(ValueError, match="'cd' solver cannot fit the Poisson loss"):
        fit_sklearn(X, W0, H0, solver="cd", max_iter=5, tol=0.0, loss="poisson")


def test_mu_dispatches_the_loss(counts):
    X = counts[0]
    W0, H0 = start(X)
    a = fit_mu_numpy(X, W0, H0, max_iter=20, tol=0.0, loss="poisson")
    b = fit_kl_numpy(X, W0, H0, max_iter=20, tol=0.0)
    np.testing.assert_array_equal(a.W, b.W)
    c = fit_mu_numpy(X, W0, H0, max_iter=20, tol=0.0)  # least squares: other iterates
    assert max_rel(c.W, b.W) > 1e-3
    with pytest.raises(ValueError, match="Unknown loss 'l1'"):
        fit_mu_numpy(X, W0, H0, max_iter=2, tol=0.0, loss="l1")


# --------------------------------------------------------------------- monotone


def _anchor(H):
    return np.array([1.0, 0.0, 30.0]), np.roll(H, 3, axis=1) + 0.05


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["plain", "locked", "anchored", "anchored+locked"])
def test_objective_never_increases(backend, case, counts):
    X, _, H_true = counts
    W0, H0 = start(X)
    kw = {}
    if "locked" in case:
        H0[1] = H_true[1]
        kw["locked"] = np.array([False, True, False])
    if "anchored" in case:
        kw["anchor_weights"], kw["anchor_spectra"] = _anchor(H_true)
    res = fit(backend, X, W0, H0, max_iter=80, track_error_every=1, **kw)
    e = np.array([v for _, v in res.history])
    assert len(e) == 81
    assert (np.diff(e) <= 1e-12 * e[:-1]).all(), np.diff(e).max()
    assert e[-1] < 0.5 * e[0]
    # the history is the objective: D plus the anchor penalty
    D = divergence(X, res.W, res.H)
    if "anchored" in case:
        lam, H_anchor = kw["anchor_weights"], kw["anchor_spectra"]
        if "locked" in case:
            lam = lam * np.array([1, 0, 1])
        D += float(np.dot(lam, ((res.H - H_anchor) ** 2).sum(axis=1)))
    assert e[-1] == pytest.approx(D, rel=1e-10)
    if "locked" in case:
        np.testing.assert_array_equal(res.H[1], H0[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_anchor_pulls_and_zero_weight_is_the_free_fit(backend, counts):
    X, _, H_true = counts
    W0, H0 = start(X)
    free = fit(backend, X, W0, H0, max_iter=60)
    zero = fit(backend, X, W0, H0, max_iter=60, anchor_weights=np.zeros(3),
               anchor_spectra=H_true)
    np.testing.assert_array_equal(zero.H, free.H)
    strong = fit(backend, X, W0, H0, max_iter=60, anchor_weights=np.full(3, 1e8),
                 anchor_spectra=H_true)
    assert max_rel(strong.H, H_true) < 1e-4


def test_numpy_and_torch_agree_with_anchors_and_locks(counts):
    pytest.importorskip("torch")
    X, _, H_true = counts
    W0, H0 = start(X)
    lam, Ha = _anchor(H_true)
    kw = dict(max_iter=50, locked=np.array([True, False, False]), anchor_weights=lam,
              anchor_spectra=Ha)
    a = fit("numpy", X, W0, H0, **kw)
    b = fit("torch", X, W0, H0, **kw)
    assert max_rel(b.W, a.W) < 1e-12 and max_rel(b.H, a.H) < 1e-12


def test_blocks_do_not_change_the_iterates(counts):
    X = counts[0]
    W0, H0 = start(X)
    one = fit_kl_numpy(X, W0, H0, max_iter=30, tol=0.0)
    many = fit_kl_numpy(X, W0, H0, max_iter=30, tol=0.0, block_bytes=X.shape[1] * 8 * 7)
    assert max_rel(many.W, one.W) < 1e-12 and max_rel(many.H, one.H) < 1e-12


def test_anchored_update_is_the_exact_minimiser_of_the_majoriser():
    # g(h) = a h - b log h + lam (h - h0)^2 over h > 0, entry by entry
    rng = np.random.default_rng(3)
    k, m = 4, 60
    a = rng.uniform(0.01, 5.0, k)
    b = rng.uniform(0.0, 3.0, (k, m)) * (rng.random((k, m)) < 0.9)
    h0 = rng.uniform(0.0, 2.0, (k, m))
    lam = np.array([0.0, 1e-3, 1.0, 1e3])
    H = np.ones((k, m))  # b = H * C with H = 1: C = b
    h = _anchored_h(H, b, a, lam[:, None], 2 * lam[:, None] * h0, _Ops("numpy"))
    assert np.isfinite(h).all() and (h >= 0).all()
    for j in range(k):
        for c in range(m):
            def g(x, j=j, c=c):
                return a[j] * x - xlogy(b[j, c], x) + lam[j] * (x - h0[j, c]) ** 2
            if b[j, c] == 0 and lam[j] == 0:
                assert h[j, c] == 0
                continue
            hi = 10 * max(h[j, c], h0[j, c], b[j, c] / a[j], 1e-3)
            best = minimize_scalar(g, bounds=(0.0, hi), method="bounded",
                                   options={"xatol": 1e-13})
            assert g(h[j, c]) <= g(best.x) + 1e-10 * (1 + abs(g(best.x)))
    np.testing.assert_allclose(h[0], b[0] / a[0], rtol=1e-14)   # lam = 0: the plain update


# ----------------------------------------------------------------- fixed-H NNLS


def _pixel_reference(x, H):
    """min_w>=0 D(x || w H) by L-BFGS-B (float64, analytic gradient)."""
    hs = H.sum(axis=1)

    def f(w):
        y = np.maximum(w @ H, 1e-300)
        r = x / y
        return float((xlogy(x, x) - xlogy(x, y) - x + y).sum()), hs - H @ r

    w0 = np.full(H.shape[0], max(x.sum(), 1e-12) / (H.shape[0] * hs.mean()))
    best = minimize(f, w0, jac=True, method="L-BFGS-B", bounds=[(0, None)] * len(w0),
                    options={"ftol": 1e-16, "gtol": 1e-12, "maxiter": 20000})
    return best.x, best.fun


@pytest.mark.parametrize("backend", BACKENDS)
def test_nnls_reaches_the_lbfgs_optimum(backend, counts):
    X, W, H = counts
    # pixels with counts, a true zero abundance among them
    rows = [i for i in range(5, 300, 37) if X[i].any()]
    assert len(rows) >= 7 and (W[rows] == 0).any()
    Xs = X[rows]
    res = nnls_fit(backend, Xs, H, max_iter=200000, tol=1e-13)
    assert res.converged and not res.capped.any()
    for i, x in enumerate(Xs):
        _, f_ref = _pixel_reference(x, H)
        f = divergence(x[None], res.W[i:i + 1], H)
        assert abs(f - f_ref) <= 1e-6 * f_ref, (i, f, f_ref)


def test_nnls_edge_pixels_and_spectra(counts):
    X, _, H = counts
    H = np.vstack([H, np.zeros(H.shape[1])])   # a spectrum with no signal
    res = fit_nnls_kl_numpy(X, H, max_iter=3000, tol=1e-8)
    np.testing.assert_array_equal(res.W[:5], 0.0)  # all-zero pixels: w = 0, their optimum
    np.testing.assert_array_equal(res.W[:, 3], 0.0)
    assert np.isfinite(res.W).all() and (res.W >= 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_nnls_per_pixel_stopping(backend, counts):
    X, _, H = counts
    res = nnls_fit(backend, X, H, max_iter=30, tol=0.0)   # few meet tol=0 in 30
    assert res.n_iter == 30 and not res.converged
    assert res.capped[X.any(axis=1)].mean() > 0.9
    assert not res.capped[~X.any(axis=1)].any()  # all-zero pixels stop at once
    loose = nnls_fit(backend, X, H, max_iter=5000, tol=1e-3)
    assert loose.converged and loose.n_iter < 5000
    # a pixel's iterates do not depend on the other pixels of its chunk
    tight = nnls_fit(backend, X, H, max_iter=5000, tol=1e-7)
    alone = nnls_fit(backend, X[40:41], H, max_iter=5000, tol=1e-7)
    np.testing.assert_allclose(alone.W[0], tight.W[40], rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nnls_dtype_and_inputs_untouched(backend, dtype, counts):
    X = counts[0].astype(dtype)
    H = counts[2].astype(dtype)
    Xc, Hc = X.copy(), H.copy()
    res = nnls_fit(backend, X, H, max_iter=500, tol=1e-6)
    assert res.W.dtype == dtype
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(H, Hc)


def test_nnls_numpy_and_torch_agree(counts):
    pytest.importorskip("torch")
    X, _, H = counts
    a = nnls_fit("numpy", X, H, max_iter=400, tol=1e-7)
    b = nnls_fit("torch", X, H, max_iter=400, tol=1e-7)
    np.testing.assert_array_equal(a.capped, b.capped)
    assert max_rel(b.W, a.W) < 1e-10


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strength", [1e20, 1e30, 1e40])
def test_a_huge_anchor_in_float32_is_the_locked_fit(backend, strength, counts):
    """``p * p`` of the anchored H update overflowed float32 from ``lambda h0`` about
    1e19 (NaN factors, 1000 iterations); an anchor weight beyond float32's range
    (1e40) was cast to inf.  Now the row is as good as locked, whatever the weight."""
    X, _, H_true = (a.astype(np.float32) for a in counts)
    W0, H0 = (a.astype(np.float32) for a in start(X))
    H_anchor = H_true.astype(np.float32)
    lam = np.full(3, strength)
    kw = {"max_iter": 300, "tol": 1e-6}
    anchored = fit(backend, X, W0, H_anchor, anchor_weights=lam, anchor_spectra=H_anchor,
                   **kw)
    locked = fit(backend, X, W0, H_anchor, locked=np.ones(3, bool), **kw)
    assert np.isfinite(anchored.W).all() and np.isfinite(anchored.H).all()
    assert np.isfinite([e for _, e in anchored.history]).all()
    np.testing.assert_array_equal(anchored.H, H_anchor)   # the nearest float32: h0
    np.testing.assert_allclose(anchored.W, locked.W, rtol=1e-6, atol=1e-7)
    assert anchored.converged and anchored.n_iter == locked.n_iter


def test_anchored_h_is_finite_for_any_finite_anchor():
    rng = np.random.default_rng(3)
    k, m = 4, 16
    b = rng.uniform(0.0, 2.0, (k, m)).astype(np.float32)
    a = rng.uniform(0.5, 2.0, k).astype(np.float32)
    h0 = rng.uniform(0.1, 2.0, (k, m)).astype(np.float32)
    lam = np.array([1e-3, 1e20, 1e100, 1e300])[:, None]
    H = np.ones((k, m), np.float32)
    h = _anchored_h(H, b, a, lam, 2 * lam * h0.astype(np.float64), _Ops("numpy"))
    assert h.dtype == np.float32 and np.isfinite(h).all()
    np.testing.assert_array_equal(h[1:], h0[1:])   # strong anchors: h0, to float32
