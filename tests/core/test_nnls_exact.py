"""Exact fixed-H NNLS (``core/solvers/active_set.py``) against SciPy, and restart FISTA.

Reference: ``scipy.optimize.nnls`` (Lawson-Hanson, float64) pixel by pixel.  An
exact solver must reach the same objective ``f = ||x - w H||^2`` per pixel:

    f_ours <= f_scipy * (1 + 1e-6) + floor * ||x||^2

The relative part is the accuracy asked of an exact solver.  The absolute floor
only matters for data that the spectra fit exactly (f_scipy at rounding level,
where a relative comparison means nothing):

* float64: 1e-20.  SciPy itself, in float64, is only accurate to about
  ``(eps * cond(H))^2 ~ 1e-22`` on the nearly collinear basis below (cond ~ 4e4);
  everything else lands at 1e-27 or below (measured).
* float32: 1e-12.  Returning W in float32 alone moves f by about
  ``eps32^2 ||x||^2 ~ 1e-14 ||x||^2`` (measured 2e-15 .. 4e-14).

Cases follow SciPy's ``optimize/tests/test_nnls.py`` and gh-20168 / gh-20302:
random and rank-deficient bases, half-zero true solutions, duplicate and all-zero
spectra, nearly collinear spectra (``lambda_min`` of the scaled Gram matrix about
1e-9 and 1e-12), spectra scaled over 1e-5 .. 1e12, a cumulative (monotone-fit)
basis; k from 1 to n_channels, both code paths (enumeration for k <= 6, block
pivoting above, tabulated for k <= 10 and grouped beyond).
"""

from __future__ import annotations

import tracemalloc
import zlib

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls
from sklearn.exceptions import ConvergenceWarning

from napari_unmix.core import nnls
from napari_unmix.core.solvers import NNLS_SOLVERS, pick_nnls_solver
from napari_unmix.core.solvers.active_set import (
    fit_nnls_active_set_numpy,
    fit_nnls_active_set_torch,
)

EPS64 = np.finfo(np.float64).eps
FLOOR = {np.dtype(np.float64): 1e-20, np.dtype(np.float32): 1e-12}

NUMPY = pytest.param("numpy", id="numpy")
TORCH = pytest.param("torch", id="torch", marks=pytest.mark.requires_torch)


def fit(backend, X, H, **kw):
    if backend == "numpy":
        return fit_nnls_active_set_numpy(X, H, **kw)
    kw.setdefault("device", "cpu")
    return fit_nnls_active_set_torch(X, H, **kw)


def objective(X, W, H):
    """Per-pixel ``||x - w H||^2`` in float64."""
    R = np.asarray(X, np.float64) - np.asarray(W, np.float64) @ np.asarray(H, np.float64)
    return np.einsum("ij,ij->i", R, R)


def scipy_objective(X, H):
    A = np.asarray(H, np.float64).T
    return np.array([scipy_nnls(A, np.asarray(x, np.float64), maxiter=100 * A.shape[1])[1] ** 2
                     for x in X])


def assert_matches_scipy(X, W, H):
    f = objective(X, W, H)
    f_ref = scipy_objective(X, H)
    energy = objective(X, np.zeros((X.shape[0], H.shape[0])), H)
    excess = f - f_ref * (1 + 1e-6) - FLOOR[np.dtype(X.dtype)] * energy
    assert excess.max() <= 0, (
        f"worst pixel {int(excess.argmax())}: f={f[excess.argmax()]:.6g}, "
        f"scipy={f_ref[excess.argmax()]:.6g}")


def gaussian(m, center, width):
    axis = np.linspace(0.0, 1.0, m)
    return np.exp(-0.5 * ((axis - center) / width) ** 2)


# ------------------------------------------------------------------------------ cases


def _sparse(rng, n, k, zero=0.5):
    W = rng.gamma(1.0, 1.0, (n, k))
    W[rng.random((n, k)) < zero] = 0.0
    return W


def case(name, n=60):
    """``(X, H)`` of a named test problem, float64."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    m = 24
    resonances = np.stack([gaussian(m, c, 0.15) for c in (0.3, 0.4, 0.5, 0.6)])
    noise = 0.01 * rng.standard_normal((n, m))
    if name == "random":
        H = rng.random((4, m))
        return _sparse(rng, n, 4) @ H + noise, H
    if name == "overlap-noisy":
        return _sparse(rng, n, 4) @ resonances + noise, resonances
    if name == "half-zero-exact":                     # true solutions with half zeros
        W = _sparse(rng, n, 4)
        W[:, ::2] = 0.0
        return W @ resonances, resonances
    if name.startswith("collinear"):                  # nearly collinear: ill-conditioned G
        step = {"collinear-exact": 1e-4, "collinear-noisy": 1e-4, "collinear-1e-6": 1e-6}[name]
        H = resonances.copy()
        H[1] = H[0] + step * gaussian(m, 0.7, 0.2)
        X = _sparse(rng, n, 4) @ H
        return (X if name == "collinear-exact" else X + noise), H
    if name.startswith("duplicate-zero"):             # duplicated and all-zero spectra
        H = np.vstack([resonances, resonances[1], np.zeros(m)])
        W = _sparse(rng, n, 6)
        return W @ H + (noise if name.endswith("noisy") else 0.0), H
    if name == "scaled":                              # scales from 1e-5 to 1e12
        H = resonances * 10.0 ** np.array([-5.0, 12.0, 0.0, 6.0])[:, None]
        return _sparse(rng, n, 4) @ resonances + noise, H
    if name == "rank-deficient":                      # more spectra than channels, signed
        return rng.standard_normal((n, 5)), rng.standard_normal((8, 5))
    if name == "cumulative":                          # gh-20168: monotone-fit basis
        N = 16
        counts = rng.integers(0, 40, N).astype(float)
        A = np.diag(counts) @ np.tril(np.ones((N, N)))
        z = np.flatnonzero(counts == 0)
        A[z, z] = 1.0
        A[z, np.minimum(z + 1, N - 1)] = -1.0
        return 100 * rng.random((n, N)), np.ascontiguousarray(A.T)
    if name.startswith("k6"):                         # enumeration with 64-bit set masks
        H = np.stack([gaussian(m, c, 0.12) for c in np.linspace(0.25, 0.75, 6)])
        X = _sparse(rng, n, 6) @ H
        return (X if name == "k6-exact" else X + noise), H
    if name == "k7":                                  # tabulated pivoting
        H = rng.random((7, m))
        return _sparse(rng, n, 7) @ H, H
    if name == "k11":                                 # grouped pivoting
        H = rng.random((11, m))
        return _sparse(rng, n, 11) @ H + noise, H
    raise KeyError(name)


CASES = ["random", "overlap-noisy", "half-zero-exact", "collinear-exact", "collinear-noisy",
         "collinear-1e-6", "duplicate-zero-exact", "duplicate-zero-noisy", "scaled",
         "rank-deficient", "cumulative", "k6-exact", "k6-noisy", "k7", "k11"]


# ---------------------------------------------------------------------- against SciPy


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", CASES)
def test_objective_matches_scipy(name, dtype, backend):
    X, H = case(name)
    X, H = X.astype(dtype), H.astype(dtype)
    res = fit(backend, X, H)
    assert res.W.dtype == dtype and res.W.shape == (X.shape[0], H.shape[0])
    assert res.converged and not res.capped.any()
    assert (res.W >= 0).all()
    assert_matches_scipy(X, res.W, H)


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
@pytest.mark.parametrize("name", ["overlap-noisy", "duplicate-zero-exact", "scaled", "k6-noisy",
                                  "rank-deficient"])
def test_enumeration_and_pivoting_agree(name, backend):
    X, H = case(name)
    enum = fit(backend, X, H, method="enumerate") if H.shape[0] <= 6 else None
    pivot = fit(backend, X, H, method="pivot")
    assert_matches_scipy(X, pivot.W, H)
    if enum is not None:
        assert_matches_scipy(X, enum.W, H)
        assert enum.n_iter == 0                    # no pixel needed pivoting


def test_zero_spectra_get_zero_abundance():
    X, H = case("duplicate-zero-noisy")
    res = fit_nnls_active_set_numpy(X, H)
    assert (res.W[:, -1] == 0).all()
    res = fit_nnls_active_set_numpy(X, np.zeros_like(H))
    assert (res.W == 0).all() and res.converged


@pytest.mark.requires_torch
@pytest.mark.parametrize("name", ["random", "overlap-noisy", "collinear-noisy", "k6-noisy",
                                  "k7", "k11"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_and_torch_agree(name, dtype):
    X, H = case(name)
    X, H = X.astype(dtype), H.astype(dtype)
    a = fit_nnls_active_set_numpy(X, H)
    b = fit_nnls_active_set_torch(X, H, device="cpu")
    # same algorithm and tables, float64 inside: equal up to rounding of the products
    scale = np.abs(a.W).max()
    tol = 1e-9 if dtype == np.float64 else 4 * np.finfo(np.float32).eps
    np.testing.assert_allclose(b.W, a.W, rtol=0, atol=tol * scale * (1e3 if "collinear" in name
                                                                      else 1))
    assert a.n_iter == b.n_iter


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
def test_inputs_untouched_and_read_only_inputs(backend):
    X, H = case("overlap-noisy")
    X, H = np.asfortranarray(X.astype(np.float32)), H.astype(np.float32)
    X0, H0 = X.copy(), H.copy()
    X.flags.writeable = False
    H.flags.writeable = False
    res = fit(backend, X, H)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(H, H0)
    assert_matches_scipy(X, res.W, H)


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
@pytest.mark.parametrize("shape", ["one-pixel", "k=1", "k=n_channels", "no-pixels"])
def test_awkward_shapes(backend, shape):
    rng = np.random.default_rng(5)
    m = 9
    if shape == "one-pixel":
        X, H = rng.random((1, m)), rng.random((3, m))
    elif shape == "k=1":
        X, H = rng.random((30, m)), rng.random((1, m))
    elif shape == "k=n_channels":
        X, H = rng.random((30, m)), rng.random((m, m))
    else:
        X, H = np.empty((0, m)), rng.random((3, m))
    res = fit(backend, X, H)
    assert res.W.shape == (X.shape[0], H.shape[0])
    assert (res.W >= 0).all()
    if X.shape[0]:
        assert_matches_scipy(X, res.W, H)


def test_blocks_and_threads_do_not_change_the_answer():
    # only BLAS's summation order depends on the block size: rounding-level changes
    for name, n in [("overlap-noisy", 500), ("k11", 300)]:
        X, H = case(name, n=n)
        whole = fit_nnls_active_set_numpy(X, H, n_threads=1, block_size=100000)
        for block, threads in [(7, 1), (64, 2), (33, 3)]:
            part = fit_nnls_active_set_numpy(X, H, block_size=block, n_threads=threads)
            np.testing.assert_allclose(part.W, whole.W, rtol=0,
                                       atol=1e-12 * np.abs(whole.W).max())


def test_temporaries_do_not_grow_with_the_chunk():
    """Extra memory is O(threads x block x (k 2^k + n_channels)), not O(n_pixels)."""
    rng = np.random.default_rng(1)
    H = np.stack([gaussian(16, c, 0.2) for c in (0.3, 0.5, 0.7)]).astype(np.float32)
    extra = {}
    for n in (30_000, 300_000):
        X = (rng.random((n, 3)) @ H).astype(np.float32)           # 1.9 / 19 MB
        tracemalloc.start()
        try:
            fit_nnls_active_set_numpy(X, H, n_threads=2)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        extra[n] = peak - n * H.shape[0] * 4                       # minus W itself
    # a float64 copy of X would add 38 MB, a per-pixel table of all 2^k sets 58 MB
    assert extra[300_000] < 8 * 2**20, extra
    assert extra[300_000] < 1.5 * extra[30_000] + 2**20, extra


# ---------------------------------------------------------------------- the iteration cap


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
def test_capped_pixels_are_flagged_and_nan(backend):
    X, H = case("k7")                     # pivoting: the first exchange leaves the full set
    capped = fit(backend, X, H, max_iter=0)
    assert not capped.converged and capped.capped.any()
    assert np.isnan(capped.W[capped.capped]).all()
    assert not np.isnan(capped.W[~capped.capped]).any()
    full = fit(backend, X, H, max_iter=1000)
    assert full.converged and not full.capped.any() and full.n_iter >= 1
    np.testing.assert_array_equal(capped.W[~capped.capped], full.W[~capped.capped])
    one = fit(backend, X, H, max_iter=full.n_iter)
    assert one.converged
    if full.n_iter > 1:
        assert fit(backend, X, H, max_iter=full.n_iter - 1).capped.any()


def test_cap_through_nnls_warns():
    X, H = case("k11")                    # needs 3 exchanges
    X = X.clip(0)
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        res = nnls(X, H, solver="active-set", backend="numpy", max_iter=1)
    assert res.summary["exact"] and res.summary["n_capped_pixels"] > 0
    assert res.summary["hit_max_iter"]


def test_bad_arguments():
    X, H = case("random")
    with pytest.raises(ValueError, match="channel"):
        fit_nnls_active_set_numpy(X, H[:, :-1])
    with pytest.raises(ValueError, match="max_iter"):
        fit_nnls_active_set_numpy(X, H, max_iter=-1)
    with pytest.raises(ValueError, match="method"):
        fit_nnls_active_set_numpy(X, H, method="simplex")
    X7, H7 = case("k7")
    with pytest.raises(ValueError, match="enumerate"):
        fit_nnls_active_set_numpy(X7, H7, method="enumerate")


# ------------------------------------------------------------------------ registration


def test_registered_as_exact():
    for backend in ("numpy", "torch"):
        spec = NNLS_SOLVERS[("active-set", backend)]
        assert spec.exact and spec.algorithm == "active-set"
    assert pick_nnls_solver().exact


def test_auto_uses_an_exact_solver():
    X, H = case("overlap-noisy")
    X = X.clip(0)
    res = nnls(X, H)
    assert res.summary["exact"] is True
    assert res.params["solver"] == "active-set"
    assert res.summary["n_capped_pixels"] == 0
    assert_matches_scipy(X, res.W, H)


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
def test_through_nnls_by_name(backend):
    X, H = case("duplicate-zero-noisy")
    X = X.clip(0)
    res = nnls(X, H, solver="active-set", backend=backend, device="cpu", chunk_size=25)
    assert res.params["backend"] == backend and res.summary["exact"]
    assert res.summary["n_chunks"] == 3 and not res.summary["hit_max_iter"]
    assert_matches_scipy(X, res.W, H)


def test_auto_through_nnls_keeps_float32():
    X, H = case("overlap-noisy")
    res = nnls(X.clip(0).astype(np.float32), H.astype(np.float32))
    assert res.W.dtype == np.float32
    assert_matches_scipy(X.clip(0).astype(np.float32), res.W, H.astype(np.float32))


# ------------------------------------------------------------------------ restart FISTA

ILL = np.stack([gaussian(24, c, 0.15) for c in (0.3, 0.4, 0.5, 0.6)])   # kappa(G) ~ 1e3


def _kappa(H):
    Hn = H / np.linalg.norm(H, axis=1)[:, None]
    ev = np.linalg.eigvalsh(Hn @ Hn.T)
    return float(ev[-1] / ev[0])


@pytest.mark.requires_torch
def test_restart_fista_is_monotone_and_faster_than_plain():
    from napari_unmix.core.solvers.torch_fista import fit_nnls_fista

    X, H = case("overlap-noisy", n=80)
    traces = {}
    fits = {}
    for restart in (False, True):
        traces[restart] = []
        fits[restart] = fit_nnls_fista(X, H, max_iter=50_000, tol=1e-6, device="cpu",
                                       restart=restart, trace=traces[restart])
        assert fits[restart].converged
    f = np.array(traces[True])                               # (iterations, pixels)
    slack = 16 * EPS64 * np.einsum("ij,ij->i", X, X)        # rounding of f itself
    assert (np.diff(f, axis=0) <= slack).all()
    # plain FISTA is not monotone on this basis, which is why restart exists
    assert (np.diff(np.array(traces[False]), axis=0) > slack).any()
    assert fits[True].n_iter < fits[False].n_iter / 3


@pytest.mark.requires_torch
@pytest.mark.parametrize("restart", [False, True])
def test_fista_agrees_with_exact_within_its_tolerance(restart):
    X, H = case("overlap-noisy", n=80)
    X = X.clip(0)
    tol = 1e-6
    exact = nnls(X, H, solver="active-set", backend="numpy")
    approx = nnls(X, H, solver="fista", backend="torch", tol=tol, max_iter=50_000,
                  restart=restart, device="cpu")
    assert approx.params["restart"] is restart and not approx.summary["exact"]
    # stopping at relative change tol leaves a coefficient error of about tol * kappa
    err = np.linalg.norm(approx.W - exact.W) / np.linalg.norm(exact.W)
    assert err <= 10 * tol * _kappa(H)
    # ... and an objective excess second order in it; never below the exact optimum
    f_exact, f_approx = objective(X, exact.W, H), objective(X, approx.W, H)
    energy = np.einsum("ij,ij->i", X, X)
    assert (f_approx >= f_exact - 1e-12 * energy).all()
    assert (f_approx - f_exact <= tol * energy).all()


# ------------------------------------------------------------------------------- CUDA


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["overlap-noisy", "collinear-exact", "duplicate-zero-noisy",
                                  "k6-noisy", "k7", "k11"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_on_cuda_matches_numpy_on_cpu(name, dtype):
    X, H = case(name, n=3000)
    X, H = X.astype(dtype), H.astype(dtype)
    cpu = fit_nnls_active_set_numpy(X, H)
    gpu = fit_nnls_active_set_torch(X, H, device="cuda")
    assert gpu.W.dtype == dtype and not gpu.capped.any()
    assert_matches_scipy(X[:200], gpu.W[:200], H)
    f_cpu, f_gpu = objective(X, cpu.W, H), objective(X, gpu.W, H)
    energy = np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64))
    assert np.abs(f_gpu - f_cpu).max() <= (1e-9 * f_cpu + FLOOR[np.dtype(dtype)] * energy).max()
    if name in ("overlap-noisy", "k11"):                  # unique optimum: same W
        np.testing.assert_allclose(gpu.W, cpu.W, rtol=0,
                                   atol=1e-6 * np.abs(cpu.W).max())


@pytest.mark.cuda
def test_nnls_auto_on_cuda_uses_torch_exact():
    X, H = case("overlap-noisy")
    res = nnls(X.clip(0), H)
    assert res.params["solver"] == "active-set" and res.params["backend"] == "torch"
    assert res.device.startswith("cuda") and res.summary["exact"]
