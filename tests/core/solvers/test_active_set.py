"""Exact fixed-H NNLS (``core/solvers/active_set.py``), numpy and torch, against SciPy.

Reference: ``scipy.optimize.nnls`` (Lawson-Hanson, float64) pixel by pixel.  An
exact solver must reach the same objective ``f = ||x - w H||^2`` per pixel, to
``1e-6`` relative plus a rounding floor for exact fits (``NNLSReference`` in
``conftest.py`` explains the floors: 1e-20 of ``||x||^2`` in float64, 1e-12 in
float32).  The problems (``nnls_case``) cover random and rank-deficient bases,
half-zero true solutions, duplicate and all-zero spectra, nearly collinear
spectra, spectra scaled over 1e-5 .. 1e12, a cumulative basis, and k from 1 to
n_channels through both code paths (enumeration for k <= 6 non-zero spectra,
block pivoting above, tabulated for k <= 10 and grouped beyond).
"""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from napari_unmix.core import nnls
from napari_unmix.core.solvers.active_set import (
    fit_nnls_active_set_numpy,
    fit_nnls_active_set_torch,
)

NUMPY = pytest.param("numpy", id="numpy")
TORCH = pytest.param("torch", id="torch", marks=pytest.mark.requires_torch)


def fit(backend, X, H, **kw):
    if backend == "numpy":
        return fit_nnls_active_set_numpy(X, H, **kw)
    kw.setdefault("device", "cpu")
    return fit_nnls_active_set_torch(X, H, **kw)


def gaussian(m, center, width):
    axis = np.linspace(0.0, 1.0, m)
    return np.exp(-0.5 * ((axis - center) / width) ** 2)


# ---------------------------------------------------------------------- against SciPy


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_objective_matches_scipy(nnls_case_name, dtype, backend, nnls_case, nnls_ref):
    X, H = nnls_case(nnls_case_name)
    X, H = X.astype(dtype), H.astype(dtype)
    res = fit(backend, X, H)
    assert res.W.dtype == dtype and res.W.shape == (X.shape[0], H.shape[0])
    assert res.converged and not res.capped.any()
    assert (res.W >= 0).all()
    nnls_ref.assert_matches(X, res.W, H)


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
@pytest.mark.parametrize("name", ["overlap-noisy", "duplicate-zero-exact", "scaled", "k6-noisy",
                                  "rank-deficient"])
def test_enumeration_and_pivoting_agree(name, backend, nnls_case, nnls_ref):
    X, H = nnls_case(name)
    enum = fit(backend, X, H, method="enumerate") if H.shape[0] <= 6 else None
    pivot = fit(backend, X, H, method="pivot")
    nnls_ref.assert_matches(X, pivot.W, H)
    if enum is not None:
        nnls_ref.assert_matches(X, enum.W, H)
        assert enum.n_iter == 0                    # no pixel needed pivoting


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
def test_enumeration_counts_only_non_zero_spectra(backend, nnls_case, nnls_ref):
    """Seven spectra of which one is all zero: six non-zero ones, still enumerated."""
    X, H6 = nnls_case("k6-noisy")
    H = np.vstack([H6[:3], np.zeros(H6.shape[1]), H6[3:]])
    res = fit(backend, X, H, method="enumerate")
    assert res.n_iter == 0 and res.converged
    assert (res.W[:, 3] == 0).all()
    nnls_ref.assert_matches(X, res.W, H)
    with pytest.raises(ValueError, match="up to 6 non-zero spectra, got 7"):
        fit(backend, X, np.vstack([H, H6[0] + H6[1]]), method="enumerate")


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
def test_one_spectrum_is_the_clipped_projection(backend):
    """k = 1 has a closed form: ``w = max(0, x.h / h.h)``."""
    rng = np.random.default_rng(11)
    h = rng.random((1, 17))
    X = rng.standard_normal((40, 17))              # signed: about half project below 0
    expected = np.maximum(X @ h[0] / (h[0] @ h[0]), 0.0)
    assert 5 < (expected == 0).sum() < 35
    res = fit(backend, X, h)
    np.testing.assert_allclose(res.W[:, 0], expected, rtol=1e-13, atol=1e-15)
    assert (res.W[expected == 0] == 0).all()


def test_zero_spectra_get_zero_abundance(nnls_case):
    X, H = nnls_case("duplicate-zero-noisy")
    res = fit_nnls_active_set_numpy(X, H)
    assert (res.W[:, -1] == 0).all()
    res = fit_nnls_active_set_numpy(X, np.zeros_like(H))
    assert (res.W == 0).all() and res.converged


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
def test_all_zero_pixels_get_zero_abundance(backend, nnls_case, nnls_ref):
    X, H = nnls_case("overlap-noisy")
    X[::3] = 0.0
    res = fit(backend, X, H)
    assert (res.W[::3] == 0).all()
    nnls_ref.assert_matches(X, res.W, H)


@pytest.mark.requires_torch
@pytest.mark.parametrize("name", ["random", "overlap-noisy", "collinear-noisy", "k6-noisy",
                                  "k7", "k11"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_and_torch_agree(name, dtype, nnls_case):
    X, H = nnls_case(name)
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
def test_inputs_untouched_and_read_only_inputs(backend, nnls_case, nnls_ref):
    X, H = nnls_case("overlap-noisy")
    X, H = np.asfortranarray(X.astype(np.float32)), H.astype(np.float32)
    X0, H0 = X.copy(), H.copy()
    X.flags.writeable = False
    H.flags.writeable = False
    res = fit(backend, X, H)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(H, H0)
    nnls_ref.assert_matches(X, res.W, H)


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
@pytest.mark.parametrize("shape", ["one-pixel", "k=1", "k=n_channels", "no-pixels"])
def test_awkward_shapes(backend, shape, nnls_ref):
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
        nnls_ref.assert_matches(X, res.W, H)


def test_blocks_and_threads_do_not_change_the_answer(nnls_case):
    # only BLAS's summation order depends on the block size: rounding-level changes.
    # k6-noisy at 3000 pixels spans several of the enumeration's default blocks
    # (1358 pixels for k = 6); the others fit in one default block
    for name, n in [("overlap-noisy", 500), ("k6-noisy", 3000), ("k11", 300)]:
        X, H = nnls_case(name, n=n)
        whole = fit_nnls_active_set_numpy(X, H, n_threads=1, block_size=100000)
        for block, threads in [(None, 1), (7, 1), (64, 2), (33, 3)]:
            part = fit_nnls_active_set_numpy(X, H, block_size=block, n_threads=threads)
            np.testing.assert_allclose(part.W, whole.W, rtol=0,
                                       atol=1e-12 * np.abs(whole.W).max())


def test_temporaries_do_not_grow_with_the_chunk():
    """Extra memory is O(threads x block x (k 2^k + n_channels)), not O(n_pixels).

    The growth with n is measured on one thread: with two, whether the threads'
    blocks overlap in time (and so the peak) depends on scheduling, and a short run
    often sees one thread's temporaries only (measured 2.7 or 4.5 MB at 30 000
    pixels, 5.4 MB at 300 000).
    """
    rng = np.random.default_rng(1)
    H = np.stack([gaussian(16, c, 0.2) for c in (0.3, 0.5, 0.7)]).astype(np.float32)
    extra = {}
    for threads in (1, 2):
        for n in (30_000, 300_000):
            X = (rng.random((n, 3)) @ H).astype(np.float32)           # 1.9 / 19 MB
            tracemalloc.start()
            try:
                fit_nnls_active_set_numpy(X, H, n_threads=threads)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            extra[threads, n] = peak - n * H.shape[0] * 4               # minus W itself
    # a float64 copy of X would add 38 MB, a per-pixel table of all 2^k sets 58 MB
    assert extra[2, 300_000] < 8 * 2**20, extra
    assert extra[1, 300_000] < 1.5 * extra[1, 30_000] + 2**20, extra
    assert extra[2, 300_000] < 2 * extra[1, 300_000] + 2**20, extra


# ---------------------------------------------------------------------- the fit's sums


def _exact_sums(X, W, H):
    """``(sum ||x - w H||^2, sum ||x||^2)`` of the returned ``W``, summed exactly."""
    import math

    R = X.astype(np.float64) - W.astype(np.float64) @ H.astype(np.float64)
    return (math.fsum((R * R).ravel()), math.fsum((X.astype(np.float64) ** 2).ravel()))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_sums_are_those_of_the_returned_abundances(nnls_case_name, dtype, nnls_case):
    # formed block by block from ||x||^2 - 2 w.b + w G w (or, for fits to rounding
    # level, from the residual itself): within float64 rounding of ||X||^2 of the
    # exact sums of the returned (rounded) W, whatever the blocks and threads
    X, H = nnls_case(nnls_case_name, n=300)
    X, H = X.astype(dtype), H.astype(dtype)
    plain = fit_nnls_active_set_numpy(X, H)
    assert plain.fit_sums is None                       # only when asked for
    for block, threads in [(None, 1), (7, 1), (7, 3)]:
        res = fit_nnls_active_set_numpy(X, H, fit_sums=True, block_size=block,
                                        n_threads=threads)
        if block is None:
            np.testing.assert_array_equal(res.W, plain.W)
        sq_err, sq_x = res.fit_sums
        ref_err, ref_x = _exact_sums(X, res.W, H)
        assert sq_x == pytest.approx(ref_x, rel=1e-13)
        assert abs(sq_err - ref_err) <= 1e-12 * ref_x + 1e-9 * ref_err, (sq_err, ref_err)
    again = fit_nnls_active_set_numpy(X, H, fit_sums=True, block_size=7, n_threads=1)
    assert again.fit_sums == res.fit_sums               # same blocks: same sums, bit for bit


def test_fit_sums_of_a_fit_to_rounding_level_are_not_cancelled():
    # W H reproduces X to float64 rounding: ||x||^2 - 2 w.b + w G w would be a
    # difference of equal numbers (any sign, any size up to 1e-15 ||X||^2); the
    # residual summed directly is tiny and non-negative
    rng = np.random.default_rng(3)
    H = np.stack([gaussian(40, c, 0.1) for c in (0.2, 0.5, 0.8)])
    X = rng.random((500, 3)) @ H
    res = fit_nnls_active_set_numpy(X, H, fit_sums=True, block_size=64)
    sq_err, sq_x = res.fit_sums
    ref_err, ref_x = _exact_sums(X, res.W, H)
    assert 0.0 <= sq_err <= 1e-24 * sq_x and ref_err <= 1e-24 * ref_x
    assert sq_err == pytest.approx(ref_err, rel=1e-3, abs=1e-30 * sq_x)


def test_fit_sums_are_none_when_a_pixel_is_capped(nnls_case):
    X, H = nnls_case("k7")
    res = fit_nnls_active_set_numpy(X, H, max_iter=0, fit_sums=True)
    assert res.capped.any() and res.fit_sums is None


def test_nnls_summary_errors_from_the_solver_s_sums(nnls_case):
    # core.nnls takes the norms from the active set's sums: the same numbers (to
    # float32 rounding of the residual, which the other solvers' path sums) as
    # summing the residual afterwards, with and without an all-zero spectrum
    from napari_unmix.core.solvers.pooled import fit_norms

    for name in ("overlap-noisy", "duplicate-zero-noisy", "k11"):
        X, H = nnls_case(name, n=2000)
        X, H = X.clip(0).astype(np.float32), H.astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)          # the all-zero spectrum
            res = nnls(X, H)
        err, x_norm = fit_norms(X, res.W, H)
        ref_err, ref_x = (float(np.sqrt(v)) for v in _exact_sums(X, res.W, H))
        assert res.reconstruction_err == pytest.approx(ref_err, rel=1e-9)
        assert res.reconstruction_err == pytest.approx(err, rel=1e-5)
        assert res.summary.relative_error == pytest.approx(ref_err / ref_x, rel=1e-9)


def test_packed_signs_match_packbits():
    from napari_unmix.core.solvers.active_set_ops import NumpyOps

    rng = np.random.default_rng(0)
    for m in (8, 16, 80, 81, 3):
        P = rng.random((257, m)) < 0.5
        expect = np.packbits(P, axis=1, bitorder="little")
        np.testing.assert_array_equal(NumpyOps().pack(P), expect)
        np.testing.assert_array_equal(NumpyOps().pack(P[::2]), expect[::2])   # a view
    every = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(bool)      # all bytes
    np.testing.assert_array_equal(NumpyOps().pack(every)[:, 0], np.arange(256))


# ---------------------------------------------------------------------- the iteration cap


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
def test_capped_pixels_are_flagged_and_nan(backend, nnls_case):
    X, H = nnls_case("k7")                # pivoting: the first exchange leaves the full set
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


def test_bad_arguments(nnls_case):
    X, H = nnls_case("random")
    with pytest.raises(ValueError, match="channel"):
        fit_nnls_active_set_numpy(X, H[:, :-1])
    with pytest.raises(ValueError, match="2-D"):
        fit_nnls_active_set_numpy(X[0], H)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="max_iter"):
            fit_nnls_active_set_numpy(X, H, max_iter=bad)
    with pytest.raises(ValueError, match="method"):
        fit_nnls_active_set_numpy(X, H, method="simplex")
    X7, H7 = nnls_case("k7")
    with pytest.raises(ValueError, match="enumerate"):
        fit_nnls_active_set_numpy(X7, H7, method="enumerate")


# ---------------------------------------------------------- through core.nnls


def test_cap_through_nnls_warns(nnls_case):
    X, H = nnls_case("k11")               # needs 3 exchanges
    X = X.clip(0)
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        res = nnls(X, H, solver="active-set", backend="numpy", max_iter=1)
    assert res.summary["exact"] and res.summary["n_capped_pixels"] > 0
    assert res.summary["hit_max_iter"]


def test_auto_uses_an_exact_solver(nnls_case, nnls_ref):
    X, H = nnls_case("overlap-noisy")
    X = X.clip(0)
    res = nnls(X, H)
    assert res.summary["exact"] is True
    assert res.params["solver"] == "active-set"
    assert res.summary["n_capped_pixels"] == 0
    nnls_ref.assert_matches(X, res.W, H)


@pytest.mark.parametrize("backend", [NUMPY, TORCH])
def test_through_nnls_by_name(backend, nnls_case, nnls_ref):
    X, H = nnls_case("duplicate-zero-noisy")
    X = X.clip(0)
    with pytest.warns(UserWarning, match="same spectrum|all-zero spectrum"):
        res = nnls(X, H, solver="active-set", backend=backend, device="cpu", chunk_size=25)
    assert res.params["backend"] == backend and res.summary["exact"]
    assert res.summary["n_chunks"] == 3 and not res.summary["hit_max_iter"]
    nnls_ref.assert_matches(X, res.W, H)


def test_auto_through_nnls_keeps_float32(nnls_case, nnls_ref):
    X, H = nnls_case("overlap-noisy")
    res = nnls(X.clip(0).astype(np.float32), H.astype(np.float32))
    assert res.W.dtype == np.float32
    nnls_ref.assert_matches(X.clip(0).astype(np.float32), res.W, H.astype(np.float32))


# ------------------------------------------------------------------------------- CUDA


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["overlap-noisy", "collinear-exact", "duplicate-zero-noisy",
                                  "k6-noisy", "k7", "k11"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_on_cuda_matches_numpy_on_cpu(name, dtype, nnls_case, nnls_ref):
    X, H = nnls_case(name, n=3000)
    X, H = X.astype(dtype), H.astype(dtype)
    cpu = fit_nnls_active_set_numpy(X, H)
    gpu = fit_nnls_active_set_torch(X, H, device="cuda")
    assert gpu.W.dtype == dtype and not gpu.capped.any()
    nnls_ref.assert_matches(X[:200], gpu.W[:200], H)
    f_cpu, f_gpu = nnls_ref.objective(X, cpu.W, H), nnls_ref.objective(X, gpu.W, H)
    energy = nnls_ref.energy(X)
    floor = nnls_ref.FLOOR[np.dtype(dtype)]
    assert np.abs(f_gpu - f_cpu).max() <= (1e-9 * f_cpu + floor * energy).max()
    if name in ("overlap-noisy", "k11"):                  # unique optimum: same W
        np.testing.assert_allclose(gpu.W, cpu.W, rtol=0,
                                   atol=1e-6 * np.abs(cpu.W).max())


@pytest.mark.cuda
def test_nnls_auto_on_cuda_uses_torch_exact(nnls_case):
    X, H = nnls_case("overlap-noisy")
    res = nnls(X.clip(0), H)
    assert res.params["solver"] == "active-set" and res.params["backend"] == "torch"
    assert res.device.startswith("cuda") and res.summary["exact"]
