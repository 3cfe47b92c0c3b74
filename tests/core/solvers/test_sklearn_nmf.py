"""NNMF through scikit-learn, ``mu`` and ``cd`` (``core/solvers/sklearn_nmf.py``).

The wrapper promises scikit-learn's algorithm unchanged: from the same start its
factors are bit-identical to ``sklearn.decomposition.NMF`` (Frobenius loss, no
regularisation) fitted with ``init="custom"``.  Beyond that it adds the error
history, the ``converged`` flag, progress reports, the all-rows lock, and keeps
scikit-learn's ``ConvergenceWarning`` to itself.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning

from napari_unmix.core.init import initialize_factors
from napari_unmix.core.solvers.sklearn_nmf import fit_sklearn

SOLVERS = ["cd", "mu"]


def start(X, k=3):
    return initialize_factors(X, k, init="nndsvda", random_state=1)


def sklearn_estimator(X, W0, H0, solver, max_iter, tol):
    est = NMF(n_components=H0.shape[0], init="custom", solver=solver, beta_loss="frobenius",
              tol=tol, max_iter=max_iter, alpha_W=0.0, alpha_H=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        W = est.fit_transform(X, W=W0.copy(), H=H0.copy())
    return W, est.components_, est.n_iter_


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("max_iter", "tol"), [(300, 1e-4), (7, 0.0)])
def test_bit_identical_to_sklearn_nmf(solver, dtype, max_iter, tol, noisy):
    X = noisy.X.astype(dtype)
    W0, H0 = start(X)
    W_ref, H_ref, n_ref = sklearn_estimator(X, W0, H0, solver, max_iter, tol)
    res = fit_sklearn(X, W0, H0, solver=solver, max_iter=max_iter, tol=tol, random_state=0)
    assert res.W.dtype == res.H.dtype == dtype
    assert res.n_iter == n_ref
    np.testing.assert_array_equal(res.W, W_ref)
    np.testing.assert_array_equal(res.H, H_ref)


@pytest.mark.parametrize("solver", SOLVERS)
def test_history_is_the_start_and_end_error(solver, noisy):
    X = noisy.X
    W0, H0 = start(X)
    res = fit_sklearn(X, W0, H0, solver=solver, max_iter=500, tol=1e-4)
    (i0, e0), (i1, e1) = res.history
    assert (i0, i1) == (0, res.n_iter)
    assert e0 == pytest.approx(np.linalg.norm(X - W0 @ H0), rel=1e-12)
    assert e1 == pytest.approx(np.linalg.norm(X - res.W @ res.H), rel=1e-12)
    assert e1 < e0


@pytest.mark.parametrize("solver", SOLVERS)
def test_converged_flag_and_no_warning_escapes(solver, noisy):
    W0, H0 = start(noisy.X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        capped = fit_sklearn(noisy.X, W0, H0, solver=solver, max_iter=3, tol=1e-12)
    assert caught == []            # scikit-learn warned; the caller decides from n_iter
    assert capped.n_iter == 3 and not capped.converged
    done = fit_sklearn(noisy.X, W0, H0, solver=solver, max_iter=5000, tol=1e-3)
    assert done.converged and done.n_iter < 5000


@pytest.mark.parametrize("solver", SOLVERS)
def test_report_at_start_and_end(solver, noisy):
    W0, H0 = start(noisy.X)
    calls = []
    res = fit_sklearn(noisy.X, W0, H0, solver=solver, max_iter=40, tol=0.0,
                      report=lambda *a, **kw: calls.append((a, kw)))
    (e0, e1) = (e for _, e in res.history)
    assert calls == [((0, 40, e0), {}), ((40, 40, e1), {"fraction": 1.0})]


# ------------------------------------------------------------------------ locking


@pytest.mark.parametrize(("solver", "bound"), [("cd", 1e-9), ("mu", 1e-3)])
def test_all_rows_locked_fits_w_to_the_nnls_optimum(solver, bound, noisy):
    """``update_H=False``: H comes back as given and W solves the fixed-H NNLS problem
    (measured above SciPy's optimum by 4e-16 for cd, 2e-6 for mu)."""
    X, H = noisy.X, noisy.H
    optimum = np.sqrt(sum(scipy_nnls(H.T, x)[1] ** 2 for x in X))
    res = fit_sklearn(X, noisy.W + 0.2, H, solver=solver, max_iter=2000, tol=1e-10,
                      locked=np.ones(3, bool))
    assert res.H.tobytes() == H.tobytes() and res.H is not H
    err = np.linalg.norm(X - res.W @ H)
    assert optimum * (1 - 1e-12) <= err <= optimum * (1 + bound)


def test_a_subset_cannot_be_locked(noisy):
    W0, H0 = start(noisy.X)
    with pytest.raises(ValueError, match="cannot lock a subset"):
        fit_sklearn(noisy.X, W0, H0, solver="cd", max_iter=5, tol=0.0,
                    locked=np.array([True, False, False]))


@pytest.mark.parametrize("locked", [None, np.zeros(3, bool)])
def test_no_row_locked_is_a_plain_fit(locked, noisy):
    W0, H0 = start(noisy.X)
    a = fit_sklearn(noisy.X, W0, H0, solver="cd", max_iter=20, tol=0.0, locked=locked)
    b = fit_sklearn(noisy.X, W0, H0, solver="cd", max_iter=20, tol=0.0)
    np.testing.assert_array_equal(a.H, b.H)
    assert not np.array_equal(a.H, H0)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("locked", [None, np.ones(3, bool)])
def test_inputs_never_modified(solver, locked, noisy):
    X = noisy.X.copy()
    W0, H0 = start(X)
    copies = [a.copy() for a in (X, W0, H0)]
    res = fit_sklearn(X, W0, H0, solver=solver, max_iter=10, tol=0.0, locked=locked)
    for a, b in zip((X, W0, H0), copies, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.shares_memory(res.W, W0) and not np.shares_memory(res.H, H0)
