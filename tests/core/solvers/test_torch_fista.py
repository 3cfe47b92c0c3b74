"""Fixed-H NNLS by (restarted) FISTA in torch (``core/solvers/torch_fista.py``).

Reference: ``scipy.optimize.nnls`` pixel by pixel (``nnls_ref``).  FISTA is not
exact: it stops when the relative change of the (unit-norm scaled) coefficients
over one iteration is ``<= tol``.  For projected gradient on a strongly convex
quadratic the distance to the optimum is then about ``tol * kappa``, ``kappa``
the condition number of the scaled Gram matrix; FISTA's momentum makes single
steps uneven, so the coefficient bound is ``10 * tol * kappa``.  The objective
excess is second order in the coefficient error, so objectives are compared with
a slack of ``tol * ||x||^2`` (measured at ``tol = 1e-6``: at most 2e-9 of
``||x||^2`` on these problems), and an objective below SciPy's optimum by more
than rounding would be a bug in one of the two.

The nearly collinear problems (``lambda_min`` of the scaled Gram matrix 1e-9 and
1e-12) are left out: ``kappa`` is then 1e9 .. 1e12, the bounds mean nothing, and
the stopping rule does stop early there (``collinear-noisy`` with restart at
``tol = 1e-6``: objective 8e-6 of ``||x||^2`` above the optimum), which is the
documented behaviour of a relative-change rule, not a defect.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.core import nnls
from napari_unmix.core.solvers.active_set import fit_nnls_active_set_numpy
from napari_unmix.core.solvers.torch_fista import fit_nnls_fista

pytestmark = pytest.mark.requires_torch

EPS64 = np.finfo(np.float64).eps
WELL_POSED = ["random", "overlap-noisy", "half-zero-exact", "duplicate-zero-exact",
              "duplicate-zero-noisy", "scaled", "rank-deficient", "cumulative", "k6-exact",
              "k6-noisy", "k7", "k11"]
#: cases whose optimum is unique (H has full row rank): coefficients are comparable
UNIQUE = ["random", "overlap-noisy", "scaled", "k6-noisy", "k7", "k11"]
RESTART = [pytest.param(False, id="plain"), pytest.param(True, id="restart")]


def fit(X, H, **kw):
    kw.setdefault("device", "cpu")
    kw.setdefault("max_iter", 20_000)
    kw.setdefault("tol", 1e-6)
    return fit_nnls_fista(X, H, **kw)


def kappa(H):
    """Condition number of the Gram matrix FISTA iterates on (unit-norm spectra)."""
    Hn = H / np.linalg.norm(H, axis=1)[:, None]
    ev = np.linalg.eigvalsh(Hn @ Hn.T)
    return float(ev[-1] / ev[0])


# ---------------------------------------------------------------------- against SciPy


@pytest.mark.parametrize("restart", RESTART)
@pytest.mark.parametrize("name", WELL_POSED)
def test_objective_within_tolerance_of_scipy(name, restart, nnls_case, nnls_ref):
    X, H = nnls_case(name)
    tol = 1e-6
    res = fit(X, H, tol=tol, restart=restart)
    assert res.converged and not res.capped.any() and res.n_iter < 20_000
    assert res.W.dtype == np.float64 and (res.W >= 0).all()
    f_ref = nnls_ref.scipy_objective(X, H)
    energy = nnls_ref.energy(X)
    nnls_ref.assert_matches(X, res.W, H, rel=0.0, floor=tol, f_ref=f_ref)
    # never below the optimum, beyond the rounding of the objectives themselves
    assert (nnls_ref.objective(X, res.W, H) >= f_ref - 1e-12 * energy).all()


@pytest.mark.parametrize("restart", RESTART)
@pytest.mark.parametrize("name", UNIQUE)
def test_coefficients_within_tol_times_kappa(name, restart, nnls_case, nnls_ref):
    X, H = nnls_case(name)
    tol = 1e-6
    res = fit(X, H, tol=tol, restart=restart)
    ref = nnls_ref.solve(X, H)
    # compared on the scaled coefficients the rule works on (w_j ||h_j||): with the
    # "scaled" case's spectra over 1e-5 .. 1e12 the raw columns differ by 17 decades
    norms = np.linalg.norm(H, axis=1)
    err = np.linalg.norm((res.W - ref) * norms) / np.linalg.norm(ref * norms)
    assert err <= 10 * tol * kappa(H), err


@pytest.mark.parametrize("restart", RESTART)
def test_every_column_equally_accurate_over_17_decades(restart, nnls_case):
    """Spectra at 1e-5 .. 1e12, abundances scaled inversely (exact data): the unit-norm
    preconditioning gives every column the same relative accuracy."""
    _, resonances = nnls_case("overlap-noisy")
    scales = 10.0 ** np.array([-5.0, 12.0, 0.0, 6.0])
    rng = np.random.default_rng(4)
    W_true = rng.uniform(0.5, 2.0, (50, 4)) / scales
    H = resonances * scales[:, None]
    tol = 1e-8
    res = fit(W_true @ H, H, tol=tol, restart=restart)
    assert res.converged
    rel = np.linalg.norm(res.W - W_true, axis=0) / np.linalg.norm(W_true, axis=0)
    assert (rel <= 10 * tol * kappa(H)).all(), rel


def test_float32_in_float32_out(nnls_case, nnls_ref):
    X, H = nnls_case("overlap-noisy")
    X32, H32 = X.astype(np.float32), H.astype(np.float32)
    res = fit(X32, H32, tol=1e-5, restart=True)
    assert res.W.dtype == np.float32 and res.converged
    # float32 products: rounding of about eps32 * kappa on the coefficients, on top of
    # the tolerance
    nnls_ref.assert_matches(X32, res.W, H32, rel=0.0, floor=1e-5)


SCALES = [1e-25, 1.0, 1e20, 1e30]


@pytest.mark.parametrize("restart", RESTART)
@pytest.mark.parametrize("what", ["data", "spectra", "both"])
def test_float32_data_and_spectra_in_any_units_give_the_same_w(what, restart, nnls_case):
    """Norms that cannot under- or overflow: the same W up to the scale from 1e-25 to
    1e30, the same iterations, no W = 0, no false cap (the norms of float32 data x 1e30
    were infinite) and no false "converged" (x 1e-25: zero norms)."""
    # well conditioned: the rounding of X * factor moves W by < 4e-6 (overlap-noisy:
    # 3e-5, from its condition number alone)
    X, H = (a.astype(np.float32) for a in nnls_case("random"))
    ref = fit(X, H, tol=1e-5, restart=restart)
    assert ref.converged
    for factor in SCALES:
        fx = np.float32(factor if what in ("data", "both") else 1.0)
        fh = np.float32(factor if what in ("spectra", "both") else 1.0)
        res = fit(X * fx, H * fh, tol=1e-5, restart=restart)
        W = res.W.astype(np.float64) * (float(fh) / float(fx))   # back to X, H's units
        assert np.isfinite(res.W).all() and res.W.any(), factor
        assert res.converged and res.n_iter == ref.n_iter, factor
        np.testing.assert_allclose(W, ref.W, rtol=0, atol=2e-5 * ref.W.max(),
                                   err_msg=str(factor))


@pytest.mark.parametrize("factor", SCALES)
def test_nnls_on_float32_data_in_any_units_raises_no_cap_warning(factor, nnls_case):
    import warnings

    X, H = (a.astype(np.float32) for a in nnls_case("random"))
    X = np.clip(X, 0, None)  # nnls refuses negative data
    ref = nnls(X, H, solver="fista", backend="torch", device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = nnls(X * np.float32(factor), H, solver="fista", backend="torch", device="cpu")
    assert not res.summary.hit_max_iter
    np.testing.assert_allclose(res.W / factor, ref.W, rtol=0, atol=2e-5 * ref.W.max())


# ----------------------------------------------------------------- special spectra


def test_zero_spectrum_gets_zero_abundance(nnls_case):
    X, H = nnls_case("duplicate-zero-noisy")
    assert not H[-1].any()
    res = fit(X, H, restart=True)
    assert (res.W[:, -1] == 0).all()
    assert (res.W[:, :-1].sum(axis=1) > 0).any()


def test_all_zero_basis_gives_zero():
    X = np.random.default_rng(0).random((12, 5))
    res = fit(X, np.zeros((3, 5)))
    assert res.W.shape == (12, 3) and res.W.dtype == X.dtype
    assert (res.W == 0).all()
    assert res.converged and res.n_iter == 0 and not res.capped.any()


def test_inputs_never_modified_and_read_only_inputs(nnls_case, nnls_ref):
    X, H = nnls_case("overlap-noisy")
    X0, H0 = X.copy(), H.copy()
    X.flags.writeable = False
    H.flags.writeable = False
    res = fit(X, H, restart=True)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(H, H0)
    nnls_ref.assert_matches(X, res.W, H, rel=0.0, floor=1e-6)


# ------------------------------------------------------------------ iteration and stop


def test_cap_returns_the_last_iterate_flagged(nnls_case):
    X, H = nnls_case("overlap-noisy")
    res = fit(X, H, max_iter=30, tol=1e-12)
    assert not res.converged and res.n_iter == 30
    assert res.capped.shape == (X.shape[0],) and res.capped.all()
    assert np.isfinite(res.W).all() and (res.W >= 0).all()
    longer = fit(X, H, max_iter=31, tol=1e-12)
    assert not np.array_equal(longer.W, res.W)        # really the 30th iterate


@pytest.mark.parametrize("restart", RESTART)
@pytest.mark.parametrize("every", [1, 7, 10])
def test_stops_only_at_checks(restart, every, nnls_case):
    X, H = nnls_case("random")
    res = fit(X, H, restart=restart, check_every=every)
    assert res.converged and res.n_iter % every == 0
    # the check before the stop did not meet the rule: one check earlier it runs on
    if res.n_iter > every:
        early = fit(X, H, restart=restart, check_every=every, max_iter=res.n_iter - every)
        assert not early.converged


@pytest.mark.parametrize("restart", RESTART)
def test_trace_holds_the_objective_of_every_iterate(restart, nnls_case, nnls_ref):
    """``trace`` gets ``1/2 a G a - b a`` of the scaled coefficients after every
    iteration, which is ``1/2 (||x - w H||^2 - ||x||^2)``."""
    X, H = nnls_case("overlap-noisy")
    trace = []
    res = fit(X, H, restart=restart, max_iter=50, tol=0.0, trace=trace)
    assert len(trace) == res.n_iter == 50
    energy = nnls_ref.energy(X)
    expected = 0.5 * (nnls_ref.objective(X, res.W, H) - energy)
    np.testing.assert_allclose(trace[-1], expected, rtol=0, atol=1e-12 * energy.max())
    short = fit(X, H, restart=restart, max_iter=20, tol=0.0)
    np.testing.assert_allclose(trace[19], 0.5 * (nnls_ref.objective(X, short.W, H) - energy),
                               rtol=0, atol=1e-12 * energy.max())


def test_restart_fista_is_monotone_and_faster_than_plain(nnls_case):
    X, H = nnls_case("overlap-noisy", n=80)
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


@pytest.mark.parametrize("restart", [False, True])
def test_fista_agrees_with_exact_within_its_tolerance(restart, nnls_case, nnls_ref):
    X, H = nnls_case("overlap-noisy", n=80)
    X = X.clip(0)
    tol = 1e-6
    exact = nnls(X, H, solver="active-set", backend="numpy")
    approx = nnls(X, H, solver="fista", backend="torch", tol=tol, max_iter=50_000,
                  restart=restart, device="cpu")
    assert approx.params["restart"] is restart and not approx.summary["exact"]
    # stopping at relative change tol leaves a coefficient error of about tol * kappa
    err = np.linalg.norm(approx.W - exact.W) / np.linalg.norm(exact.W)
    assert err <= 10 * tol * kappa(H)
    # ... and an objective excess second order in it; never below the exact optimum
    f_exact = nnls_ref.objective(X, exact.W, H)
    f_approx = nnls_ref.objective(X, approx.W, H)
    energy = nnls_ref.energy(X)
    assert (f_approx >= f_exact - 1e-12 * energy).all()
    assert (f_approx - f_exact <= tol * energy).all()


# ------------------------------------------------------------------------------- CUDA


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cuda_matches_the_exact_solution(dtype, nnls_case, nnls_ref):
    X, H = nnls_case("overlap-noisy", n=2000)
    X, H = X.astype(dtype), H.astype(dtype)
    tol = 1e-6 if dtype == np.float64 else 1e-5
    gpu = fit_nnls_fista(X, H, max_iter=20_000, tol=tol, device="cuda", restart=True)
    assert gpu.W.dtype == dtype and gpu.converged
    exact = fit_nnls_active_set_numpy(X, H)
    f_gpu, f_exact = nnls_ref.objective(X, gpu.W, H), nnls_ref.objective(X, exact.W, H)
    assert (f_gpu <= f_exact + tol * nnls_ref.energy(X)).all()
