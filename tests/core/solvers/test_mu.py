"""Multiplicative-update NNMF (``core/solvers/mu.py``), numpy and torch.

References: scikit-learn's ``mu`` solver, which performs the same Lee & Seung
updates in the same order (W, then H); from the same start, with ``tol=0`` (a
fixed number of iterations), its iterates and ours agree to rounding (measured
2e-15 relative after 200 iterations in float64, 8e-7 in float32).  MU is monotone,
so the error sampled at every iteration must never increase (up to the rounding of
the float64 error, ``32 eps`` relative).  With every spectrum locked, MU solves
the fixed-H NNLS problem, whose optimum comes from ``scipy.optimize.nnls``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls
from sklearn.decomposition import non_negative_factorization

from napari_unmix.core.init import initialize_factors
from napari_unmix.core.solvers._common import residual_norm
from napari_unmix.core.solvers.mu import fit_mu_numpy, fit_mu_torch

BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("torch", id="torch", marks=pytest.mark.requires_torch),
]
EPS64 = np.finfo(np.float64).eps


def fit(backend, X, W, H, **kw):
    kw.setdefault("tol", 0.0)
    if backend == "torch":
        kw.setdefault("device", "cpu")
        return fit_mu_torch(X, W, H, **kw)
    return fit_mu_numpy(X, W, H, **kw)


def start(X, k=3, seed=1):
    """A random start (MU cannot move exact zeros, which NNDSVD produces)."""
    return initialize_factors(X, k, init="random", random_state=seed)


def sklearn_mu(X, W0, H0, n_iter):
    W, H, done = non_negative_factorization(
        X, W=W0.copy(), H=H0.copy(), n_components=H0.shape[0], init="custom", solver="mu",
        beta_loss="frobenius", tol=0.0, max_iter=n_iter)
    assert done == n_iter
    return W, H


def max_rel(a, b):
    return float(np.abs(np.asarray(a, float) - b).max() / np.abs(b).max())


# ------------------------------------------------------------- against scikit-learn


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("dtype", "bound"), [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("n_iter", [1, 25, 200])
def test_iterates_match_sklearn_mu(backend, dtype, bound, n_iter, noisy):
    X = noisy.X.astype(dtype)
    W0, H0 = start(X)
    W_ref, H_ref = sklearn_mu(X, W0, H0, n_iter)
    res = fit(backend, X, W0, H0, max_iter=n_iter)
    assert res.n_iter == n_iter and not res.converged
    assert res.W.dtype == res.H.dtype == dtype
    assert max_rel(res.W, W_ref) <= bound
    assert max_rel(res.H, H_ref) <= bound


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("data", ["noisy", "overlap"])
def test_objective_never_increases(request, backend, data):
    p = request.getfixturevalue(data)
    W0, H0 = start(p.X)
    res = fit(backend, p.X, W0, H0, max_iter=60, track_error_every=1)
    assert [i for i, _ in res.history] == list(range(61))
    errors = np.array([e for _, e in res.history])
    assert (np.diff(errors) <= 32 * EPS64 * errors[:-1]).all(), np.diff(errors).max()
    assert errors[-1] < 0.5 * errors[0]                  # and it does make progress
    # the sampled errors are those of the iterates: a run stopped at n returns one
    for n in (1, 2, 7):
        short = fit(backend, p.X, W0, H0, max_iter=n)
        assert residual_norm(p.X, short.W, short.H) == pytest.approx(errors[n], rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_rows_locked_solves_the_nnls_problem(backend, noisy):
    """H fixed: MU on W alone goes down to the fixed-H NNLS optimum (measured 1.6e-4
    above it after 1000 iterations), never below it."""
    X, H = noisy.X, noisy.H
    optimum = np.sqrt(sum(scipy_nnls(H.T, x)[1] ** 2 for x in X))
    res = fit(backend, X, noisy.W + 0.2, H, max_iter=1000, locked=np.ones(3, bool),
              track_error_every=50)
    assert res.H.tobytes() == H.tobytes()
    errors = np.array([e for _, e in res.history])
    assert (np.diff(errors) <= 32 * EPS64 * errors[:-1]).all()
    assert optimum * (1 - 1e-12) <= errors[-1] <= optimum * (1 + 1e-3)


# ---------------------------------------------------------------- locks and inputs


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_locked_rows_bit_identical(backend, dtype, noisy):
    X = noisy.X.astype(dtype)
    rng = np.random.default_rng(3)
    H0 = (noisy.H * rng.uniform(0.7, 1.3, noisy.H.shape)).astype(dtype)
    W0 = (noisy.W + 0.1).astype(dtype)
    locked = np.array([False, True, False])
    res = fit(backend, X, W0, H0, max_iter=50, locked=locked)
    assert res.H[1].tobytes() == H0[1].tobytes()
    assert not np.allclose(res.H[[0, 2]], H0[[0, 2]])
    assert (res.W >= 0).all() and (res.H >= 0).all()
    assert residual_norm(X, res.W, res.H) < residual_norm(X, W0, H0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_inputs_never_modified(backend, noisy):
    X = noisy.X.copy()
    W0, H0 = start(X)
    locked = np.array([True, False, False])
    copies = [a.copy() for a in (X, W0, H0, locked)]
    for a in (X, W0, H0, locked):
        a.flags.writeable = False                        # read-only inputs are fine too
    res = fit(backend, X, W0, H0, max_iter=5, locked=locked)
    for a, b in zip((X, W0, H0, locked), copies, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.shares_memory(res.W, W0) and not np.shares_memory(res.H, H0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exact_zeros_stay_zero(backend, noisy):
    W0, H0 = start(noisy.X)
    W0[5, 1] = W0[40, 0] = 0.0
    H0[2, 7] = 0.0
    res = fit(backend, noisy.X, W0, H0, max_iter=30)
    assert res.W[5, 1] == res.W[40, 0] == res.H[2, 7] == 0.0
    assert (res.W[W0 > 0] > 0).all() and (res.H[H0 > 0] > 0).all()


# ------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_in_float32_out(backend, noisy):
    W0, H0 = start(noisy.X)
    r64 = fit(backend, noisy.X, W0, H0, max_iter=30)
    X32, W32, H32 = (a.astype(np.float32) for a in (noisy.X, W0, H0))
    r32 = fit(backend, X32, W32, H32, max_iter=30)
    assert r64.W.dtype == r64.H.dtype == np.float64
    assert r32.W.dtype == r32.H.dtype == np.float32
    P64, P32 = r64.W @ r64.H, r32.W.astype(float) @ r32.H.astype(float)
    assert np.linalg.norm(P32 - P64) / np.linalg.norm(P64) < 1e-4


@pytest.mark.parametrize("backend", [
    pytest.param("numpy", id="numpy"),
    pytest.param("torch", id="torch", marks=[pytest.mark.requires_torch]),
])
def test_seeds_are_cast_to_the_data_dtype(backend, noisy):
    """float64 seeds on float32 data: the factors are computed in the data's dtype, as
    ``fit_mu_numpy`` and both HALS solvers do."""
    W0, H0 = start(noisy.X)
    res = fit(backend, noisy.X.astype(np.float32), W0, H0, max_iter=5)
    assert res.W.dtype == res.H.dtype == np.float32
    ref = fit(backend, *(a.astype(np.float32) for a in (noisy.X, W0, H0)), max_iter=5)
    np.testing.assert_array_equal(res.W, ref.W)
    np.testing.assert_array_equal(res.H, ref.H)


# --------------------------------------------------------------------- stopping rule


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("tol", "every"), [(1e-3, 1), (1e-4, 7), (1e-5, 10)])
def test_stops_at_first_sample_meeting_tol(backend, tol, every, noisy):
    W0, H0 = start(noisy.X)
    reports = []
    res = fit(backend, noisy.X, W0, H0, max_iter=20_000, tol=tol, track_error_every=every,
              report=lambda *args: reports.append(args))
    assert res.converged
    its = [i for i, _ in res.history]
    errs = [e for _, e in res.history]
    assert its == list(range(0, res.n_iter + 1, every))
    gains = [(a - b) / a for a, b in itertools.pairwise(errs)]
    assert len(gains) >= 2
    assert all(g > tol for g in gains[:-1]) and gains[-1] <= tol
    assert reports == [(i, 20_000, e) for i, e in res.history]
    assert residual_norm(noisy.X, res.W, res.H) == pytest.approx(errs[-1], rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cap_and_zero_iterations(backend, noisy):
    W0, H0 = start(noisy.X)
    capped = fit(backend, noisy.X, W0, H0, max_iter=23, tol=1e-12, track_error_every=10)
    assert capped.n_iter == 23 and not capped.converged
    assert [i for i, _ in capped.history] == [0, 10, 20]
    none = fit(backend, noisy.X, W0, H0, max_iter=0)
    assert none.n_iter == 0 and not none.converged
    np.testing.assert_array_equal(none.W, W0)
    np.testing.assert_array_equal(none.H, H0)
    assert none.history == [(0, pytest.approx(residual_norm(noisy.X, W0, H0), rel=1e-12))]


def test_bad_sampling_interval(noisy):
    W0, H0 = start(noisy.X)
    with pytest.raises(ValueError, match="track_error_every must be >= 1"):
        fit_mu_numpy(noisy.X, W0, H0, max_iter=5, tol=0.0, track_error_every=0)


# --------------------------------------------------------------- numpy vs torch


@pytest.mark.requires_torch
@pytest.mark.parametrize("locked", [None, np.array([False, False, True])])
def test_numpy_and_torch_agree(noisy, locked):
    W0, H0 = start(noisy.X)
    a = fit("numpy", noisy.X, W0, H0, max_iter=40, locked=locked, track_error_every=5)
    b = fit("torch", noisy.X, W0, H0, max_iter=40, locked=locked, track_error_every=5)
    assert max_rel(b.W, a.W) <= 1e-12 and max_rel(b.H, a.H) <= 1e-12
    assert [i for i, _ in b.history] == [i for i, _ in a.history]
    np.testing.assert_allclose([e for _, e in b.history], [e for _, e in a.history],
                               rtol=1e-12)


@pytest.mark.cuda
@pytest.mark.parametrize(("dtype", "bound"), [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_cuda_matches_numpy(noisy, dtype, bound):
    X = noisy.X.astype(dtype)
    W0, H0 = start(X)
    locked = np.array([False, True, False])
    a = fit_mu_numpy(X, W0, H0, max_iter=50, tol=0.0, locked=locked)
    b = fit_mu_torch(X, W0, H0, max_iter=50, tol=0.0, locked=locked, device="cuda")
    assert b.W.dtype == b.H.dtype == dtype
    assert b.H[1].tobytes() == a.H[1].tobytes()
    assert max_rel(b.W, a.W) <= bound and max_rel(b.H, a.H) <= bound


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strength", [1e20, 1e38, 1e60])
def test_a_huge_anchor_in_float32_is_the_locked_fit(backend, strength, noisy):
    """The anchor weight was cast to float32 and ``lam * H`` overflowed (from about
    1e38 on): inf / inf gave NaN spectra.  The anchored H update is formed in float64
    now, so a row that strongly anchored is its anchor, as a locked row would be."""
    X = noisy.X.astype(np.float32)
    W0, H0 = (a.astype(np.float32) for a in start(noisy.X))
    kw = {"max_iter": 60, "tol": 1e-6}
    anchored = fit(backend, X, W0, H0, anchor_weights=np.full(3, strength),
                   anchor_spectra=H0, **kw)
    locked = fit(backend, X, W0, H0, locked=np.ones(3, bool), **kw)
    assert np.isfinite(anchored.W).all() and np.isfinite(anchored.H).all()
    assert np.isfinite([e for _, e in anchored.history]).all()
    np.testing.assert_allclose(anchored.H, H0, rtol=1e-6)
    np.testing.assert_allclose(anchored.W, locked.W, rtol=1e-4, atol=1e-6 * locked.W.max())
