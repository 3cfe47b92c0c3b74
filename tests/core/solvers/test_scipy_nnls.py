"""Fixed-H NNLS with SciPy's Lawson-Hanson solver, one pixel at a time
(``core/solvers/scipy_nnls.py``).

The wrapper must hand ``scipy.optimize.nnls`` the right problem (``H.T`` as the
matrix, each pixel in float64) and turn SciPy's ``RuntimeError`` at its iteration
limit into a flagged NaN pixel.  Reference: SciPy itself, called here directly.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls

from napari_unmix.core.solvers.scipy_nnls import fit_nnls_scipy


def fit(X, H, **kw):
    kw.setdefault("max_iter", 100 * H.shape[0])
    return fit_nnls_scipy(X, H, **kw)


def refused_by_scipy(X, H, maxiter):
    """Pixels for which ``scipy.optimize.nnls`` itself raises at ``maxiter``."""
    refused = []
    for p, x in enumerate(X):
        try:
            scipy_nnls(H.T, x, maxiter=maxiter)
        except RuntimeError:
            refused.append(p)
    return refused


def test_objective_matches_scipy(nnls_case_name, nnls_case, nnls_ref):
    X, H = nnls_case(nnls_case_name)
    res = fit(X, H)
    assert res.W.shape == (X.shape[0], H.shape[0]) and res.W.dtype == np.float64
    assert res.converged and not res.capped.any()
    assert (res.W >= 0).all()
    nnls_ref.assert_matches(X, res.W, H)


@pytest.mark.parametrize("name", ["random", "duplicate-zero-noisy", "scaled", "rank-deficient"])
def test_same_solution_as_scipy_pixel_by_pixel(name, nnls_case):
    X, H = nnls_case(name)
    res = fit(X, H, max_iter=1000)
    expected = np.array([scipy_nnls(H.T, x, maxiter=1000)[0] for x in X])
    np.testing.assert_array_equal(res.W, expected)


def test_float32_in_float32_out(nnls_case, nnls_ref):
    X, H = nnls_case("overlap-noisy")
    X32, H32 = X.astype(np.float32), H.astype(np.float32)
    res = fit(X32, H32)
    assert res.W.dtype == np.float32
    nnls_ref.assert_matches(X32, res.W, H32)


def test_zero_spectra_get_zero_abundance(nnls_case):
    X, H = nnls_case("duplicate-zero-noisy")
    res = fit(X, H)
    assert (res.W[:, -1] == 0).all()
    res = fit(X, np.zeros_like(H))
    assert (res.W == 0).all() and res.converged


def test_inputs_never_modified_and_read_only_inputs(nnls_case, nnls_ref):
    X, H = nnls_case("overlap-noisy")
    X = np.asfortranarray(X)
    X0, H0 = X.copy(), H.copy()
    X.flags.writeable = False
    H.flags.writeable = False
    res = fit(X, H)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(H, H0)
    nnls_ref.assert_matches(X, res.W, H)


def test_no_pixels():
    res = fit(np.empty((0, 6)), np.ones((2, 6)))
    assert res.W.shape == (0, 2) and res.converged and res.capped.shape == (0,)


# ------------------------------------------------------------------ the iteration cap


def test_runtime_error_at_the_cap_is_caught_and_flagged(low_rank):
    X, H = low_rank.X, low_rank.H
    # SciPy raises at its iteration limit instead of returning an approximation;
    # one active-set iteration is too few for every pixel here
    assert refused_by_scipy(X, H, 1) == list(range(len(X)))
    res = fit(X, H, max_iter=1)
    assert not res.converged and res.capped.all()
    assert np.isnan(res.W).all()


def test_capped_pixels_flagged_others_kept(low_rank):
    X, H = low_rank.X, low_rank.H
    refused = refused_by_scipy(X, H, 3)
    assert 0 < len(refused) < len(X)  # the test needs both kinds of pixel
    res = fit(X, H, max_iter=3)
    assert not res.converged
    np.testing.assert_array_equal(np.flatnonzero(res.capped), refused)
    assert np.isnan(res.W[refused]).all()
    ok = ~res.capped
    np.testing.assert_array_equal(res.W[ok], fit(X, H).W[ok])
