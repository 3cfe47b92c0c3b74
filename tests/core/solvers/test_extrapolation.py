"""Extrapolated HALS (``core.solvers.extrapolation``): fewer iterations, the same fit.

The references are plain HALS (``extrapolate=False``) from the same start and the
exact-arithmetic rules of the scheme: a kept step never raises the objective, an
undone step leaves the factors bit-identical to before it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from napari_unmix.core.init import initialize_factors
from napari_unmix.core.solvers._common import residual_norm
from napari_unmix.core.solvers.extrapolation import BETA0, ETA, Extrapolation
from napari_unmix.core.solvers.hals import fit_hals_numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from _data import make_stack  # noqa: E402


def _iterations_to(X, W0, H0, target, extrapolate):
    """The first iteration whose error is at most ``target`` (every iteration sampled)."""
    fit = fit_hals_numpy(X, W0, H0, max_iter=400, tol=0.0, track_error_every=1,
                         extrapolate=extrapolate)
    reached = [i for i, e in fit.history if e <= target]
    return (reached[0] if reached else None), fit


# not "overlap" (noise-free float64 data): there the scheme stops extrapolating at
# float32's resolution, early, and plain HALS from that point is the slower one
# (module documentation of core.solvers.extrapolation)
@pytest.mark.parametrize("data", ["noisy", "benchmark"])
def test_reaches_plain_hals_error_in_fewer_iterations(request, data):
    if data == "benchmark":
        X, k = make_stack(n_pixels=16384).X, 5
    else:
        X, k = request.getfixturevalue(data).X, 3
    W0, H0 = initialize_factors(X, k, init="nndsvda", random_state=0)
    plain = fit_hals_numpy(X, W0, H0, max_iter=400, tol=0.0, extrapolate=False)
    best = residual_norm(X, plain.W, plain.H)
    target = best * 1.001   # within 0.1 % of what 400 plain iterations reach
    n_plain, _ = _iterations_to(X, W0, H0, target, extrapolate=False)
    n_ext, fast = _iterations_to(X, W0, H0, target, extrapolate=True)
    assert n_plain is not None and n_ext is not None
    assert n_ext < n_plain
    # ... and it ends no worse than plain HALS after the same 400 iterations
    assert residual_norm(X, fast.W, fast.H) <= best * (1 + 1e-6)


def test_an_undone_step_restores_the_spectra_exactly():
    rng = np.random.default_rng(0)
    H = rng.random((3, 8))
    ext = Extrapolation(H, np.array([True, True, False]), xx=1e6)
    assert not ext.start(H)                         # a plain first step: always kept
    H += 0.1
    H[2] -= 0.1                                     # (the locked row does not move)
    assert ext.finish(H, objective=100.0)
    H_kept = H.copy()
    assert ext.start(H)                             # extrapolated start
    np.testing.assert_allclose(H[:2], H_kept[:2] + BETA0 * 0.1, rtol=1e-12)
    np.testing.assert_array_equal(H[2], H_kept[2])  # locked rows never move
    H[:] = 5.0
    assert not ext.finish(H, objective=101.0)      # raised the objective: undone
    np.testing.assert_array_equal(H, H_kept)
    assert ext.beta == pytest.approx(BETA0 / ETA) and ext.n_restarts == 1
    assert not ext.start(H)                         # the retry is a plain step
    np.testing.assert_array_equal(H, H_kept)
    assert ext.finish(H, objective=101.0)          # plain steps are always kept


@pytest.mark.parametrize("backend", [
    "numpy", pytest.param("torch", marks=pytest.mark.requires_torch)])
def test_an_undone_step_leaves_the_factors_of_a_plain_step(backend, noisy):
    """A run whose extrapolated steps are all refused is plain HALS, bit for bit."""
    from napari_unmix.core.solvers import extrapolation

    X = noisy.X
    W0, H0 = initialize_factors(X, 3, init="nndsvda", random_state=0)
    fit = fit_hals_numpy if backend == "numpy" else _torch_fit
    plain = fit(X, W0, H0, max_iter=15, tol=0.0, extrapolate=False)
    original = extrapolation.Extrapolation.finish

    def refuse(self, H, objective):
        return original(self, H, np.inf if self.extrapolated else objective)

    extrapolation.Extrapolation.finish = refuse
    try:
        refused = fit(X, W0, H0, max_iter=15, tol=0.0, extrapolate=True)
    finally:
        extrapolation.Extrapolation.finish = original
    np.testing.assert_array_equal(refused.W, plain.W)
    np.testing.assert_array_equal(refused.H, plain.H)


def _torch_fit(X, W, H, **kw):
    from napari_unmix.core.solvers.hals_torch import fit_hals_torch

    return fit_hals_torch(X, W, H, device="cpu", **kw)


def test_progress_below_the_resolution_ends_extrapolation():
    H = np.ones((2, 4))
    ext = Extrapolation(H, np.array([True, True]), xx=1.0)
    ext.start(H)
    assert ext.finish(H, objective=0.5)
    assert not ext.off and ext.H_next is not None
    assert ext.start(H)
    assert ext.finish(H, objective=0.5 - 1e-9)   # below 10 eps32 ||X||^2
    assert ext.off and ext.H_next is None
    assert not ext.start(H)                       # plain steps from now on


def test_the_summary_says_what_the_extrapolation_did(noisy):
    from napari_unmix.core import nmf

    hals = nmf(noisy.X, 3, random_state=0, solver="hals", backend="numpy", tol=0.0,
               max_iter=200)
    record = hals.summary.extrapolation
    assert set(record) == {"n_restarts", "ended_after"}
    assert record["n_restarts"] >= 0
    # 200 iterations on float64 data: it ends at float32's resolution on the way
    assert record["ended_after"] is not None and 0 < record["ended_after"] < 200
    assert type(hals.summary).from_dict(hals.summary.to_dict()).extrapolation == record
    mu = nmf(noisy.X, 3, random_state=0, solver="mu", backend="numpy", tol=1e-2)
    assert mu.summary.extrapolation is None


HALS_BACKENDS = [pytest.param("numpy", id="numpy"),
                 pytest.param("torch", id="torch", marks=pytest.mark.requires_torch),
                 pytest.param("dask", id="dask")]


@pytest.mark.parametrize("backend", HALS_BACKENDS)
@pytest.mark.parametrize(("k", "sample"), [(3, 0), (4, 2)])
def test_float32_takes_the_decisions_of_float64(backend, k, sample):
    """The extrapolation decides (undo a step, end at the resolution) on objectives
    summed in float64 whatever the data's dtype: float32 summed in float32 ended it
    one step later on these samples (maps 6.6e-3 and 1.4e-2 apart at the noise stop)."""
    import warnings

    from napari_unmix.core import nmf
    from napari_unmix.core.synthetic import make_crs_sample

    s = make_crs_sample(shape=(64, 64), n_channels=48, random_state=sample)
    X = s.stack.reshape(s.stack.shape[0], -1).T.astype(np.float64)
    runs = []
    for dtype in (np.float64, np.float32):
        data = X.astype(dtype)
        if backend == "dask":
            import dask.array as da

            data = da.from_array(data, chunks=(1024, -1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs.append(nmf(data, k, solver="hals", backend="torch" if backend == "torch"
                            else "numpy", device="cpu", random_state=0))
    r64, r32 = runs
    assert r64.summary.extrapolation == r32.summary.extrapolation
    assert r64.n_iter == r32.n_iter
    W64, W32 = (np.asarray(r.W, dtype=np.float64) for r in runs)
    H64, H32 = (np.asarray(r.H, dtype=np.float64) for r in runs)
    assert np.abs(W32 - W64).max() <= 1e-4 * np.abs(W64).max()
    assert np.abs(H32 - H64).max() <= 1e-4 * np.abs(H64).max()
