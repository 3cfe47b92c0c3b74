"""Fixed-H NNLS: SciPy (Lawson-Hanson) and torch FISTA against the truth and each other.

Reference: ``scipy.optimize.nnls`` called directly, pixel by pixel, in float64.

Tolerances.  Coefficient errors are measured as ``||W - W*||_F / ||W*||_F``.
SciPy's active-set method is exact up to rounding: a small multiple of
``eps64 * cond(H)``.  FISTA stops when the relative change of the (column-
normalised) coefficients over one iteration is ``<= tol``; for projected gradient
on a strongly convex quadratic the distance to the optimum is then at most about
``tol * kappa``, ``kappa`` the condition number of the Gram matrix it iterates
on.  FISTA's momentum makes single steps uneven, so we allow a factor 10 (measured
on these problems at tol <= 1e-6: at most 0.5 * tol * kappa; at tol=1e-8 without
restart the rule is less reliable, so tests stay at tol >= 1e-6 there).  The
objective excess over the optimum is second order in the coefficient error, so
objectives are compared with a slack of ``tol * ||x||^2``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls
from sklearn.exceptions import ConvergenceWarning

from napari_unmix.core import Cancelled, nnls

EPS64 = np.finfo(np.float64).eps
SCIPY = ("lawson-hanson", "scipy")
FISTA = ("fista", "torch")
BACKENDS = [pytest.param(SCIPY, id="scipy"),
            pytest.param(FISTA, id="fista", marks=pytest.mark.requires_torch)]


def run(key, X, H, **kw):
    return nnls(X, H, solver=key[0], backend=key[1], **kw)


def reference(X, H):
    """Per-pixel ``scipy.optimize.nnls`` in float64: the ground truth optimum."""
    A = np.asarray(H, dtype=np.float64).T
    return np.array([scipy_nnls(A, np.asarray(x, dtype=np.float64))[0] for x in X])


def objective(X, W, H):
    """Per-pixel ``1/2 ||x - w H||^2``."""
    R = X - W @ H
    return 0.5 * np.einsum("ij,ij->i", R, R)


def kappa(H):
    """Condition number of the Gram matrix FISTA iterates on (unit-norm spectra)."""
    Hn = H / np.where(np.linalg.norm(H, axis=1) > 0, np.linalg.norm(H, axis=1), 1)[:, None]
    s = np.linalg.svd(Hn, compute_uv=False)
    s = s[s > s[0] * 1e-12]
    return float((s[0] / s[-1]) ** 2)


def coefficient_bound(key, H, tol):
    """Bound on ``||W - W*||_F / ||W*||_F`` for a backend (see the module docstring)."""
    if key == SCIPY:
        return 1e3 * EPS64 * np.sqrt(kappa(H))
    return 10 * tol * kappa(H)


def rel_error(W, W_ref):
    return float(np.linalg.norm(W - W_ref) / np.linalg.norm(W_ref))


def assert_objective_optimal(key, X, W, H, tol):
    """Every pixel's objective is the optimum's, up to what the backend promises."""
    f = objective(X, W, H)
    f_ref = objective(X, reference(X, H), H)
    f0 = 0.5 * np.einsum("ij,ij->i", X, X)
    slack = (1e3 * EPS64 if key == SCIPY else tol) * f0
    assert (f <= f_ref + slack).all(), (f - f_ref).max()


# ----------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("key", BACKENDS)
@pytest.mark.parametrize("problem", ["low_rank", "overlap"])
def test_recovers_true_abundances(request, key, problem):
    p = request.getfixturevalue(problem)
    tol = 1e-6
    res = run(key, p.X, p.H, tol=tol, max_iter=20000)
    err = rel_error(res.W, p.W)
    assert err <= coefficient_bound(key, p.H, tol), err
    assert res.summary["hit_max_iter"] is False
    assert res.reconstruction_err <= 1e3 * EPS64 * np.linalg.norm(p.X) + tol * np.linalg.norm(
        p.X) * np.sqrt(kappa(p.H))
    assert res.mode == "nnls" and res.backend == key[1] and res.params["solver"] == key[0]


@pytest.mark.requires_torch
@pytest.mark.parametrize("tol", [1e-4, 1e-6])
def test_fista_agrees_with_scipy(noisy, tol):
    a = run(SCIPY, noisy.X, noisy.H)
    b = run(FISTA, noisy.X, noisy.H, tol=tol)
    assert rel_error(b.W, a.W) <= coefficient_bound(FISTA, noisy.H, tol)
    assert_objective_optimal(FISTA, noisy.X, b.W, noisy.H, tol)


@pytest.mark.parametrize("key", BACKENDS)
def test_half_zero_solution_is_found(key, low_rank):
    # about half of the true abundances are exactly zero (active constraints)
    zero = low_rank.W == 0
    assert 0.3 < zero.mean() < 0.6
    res = run(key, low_rank.X, low_rank.H, tol=1e-8)
    bound = coefficient_bound(key, low_rank.H, 1e-8) * np.linalg.norm(low_rank.W)
    assert (res.W >= 0).all()
    assert res.W[zero].max() <= bound


@pytest.mark.parametrize("key", BACKENDS)
def test_rank_deficient_basis(key, noisy):
    # a fourth spectrum that is the sum of two others: H has rank 3, the solution is
    # not unique, but the optimal objective is
    H = np.vstack([noisy.H, noisy.H[0] + noisy.H[1]])
    assert np.linalg.matrix_rank(H) == 3
    tol = 1e-6
    with pytest.warns(UserWarning, match="the spectra are linearly dependent"):
        res = run(key, noisy.X, H, tol=tol, max_iter=5000)
    assert res.summary.condition_number == np.inf and len(res.summary.identifiability) == 1
    assert np.isfinite(res.W).all() and (res.W >= 0).all()
    assert_objective_optimal(key, noisy.X, res.W, H, tol)


SCALES = np.array([1e-5, 1e3, 1e12])


@pytest.mark.parametrize("key", BACKENDS)
def test_spectra_scaled_over_17_decades(key, low_rank):
    # spectra at 1e-5 ... 1e12 and abundances scaled inversely: every component
    # contributes equally to X, so every coefficient is determined by the data
    H = low_rank.H * SCALES[:, None]
    W_true = low_rank.W / SCALES
    X = W_true @ H
    tol = 1e-8
    res = run(key, X, H, tol=tol, max_iter=5000)
    # every column to the same relative accuracy, whatever its scale
    rel = np.linalg.norm(res.W - W_true, axis=0) / np.linalg.norm(W_true, axis=0)
    assert (rel <= coefficient_bound(key, H, tol)).all(), rel
    assert_objective_optimal(key, X, res.W, H, tol)


@pytest.mark.parametrize("key", BACKENDS)
def test_scaled_spectra_objective(key, noisy):
    # unit abundances on spectra of very different scale: the 1e-5 spectrum is
    # invisible next to the 1e12 one, so only the objective can be compared
    H = noisy.H * SCALES[:, None]
    res = run(key, noisy.X, H, tol=1e-6, max_iter=5000)
    assert np.isfinite(res.W).all()
    assert_objective_optimal(key, noisy.X, res.W, H, 1e-6)


@pytest.mark.parametrize("key", BACKENDS)
def test_duplicate_and_zero_spectra(key, noisy):
    # H = [h0, h1, h2, h1 again, all zeros]
    H = np.vstack([noisy.H, noisy.H[1], np.zeros(noisy.n_channels)])
    tol = 1e-8
    with pytest.warns(UserWarning) as record:
        res = run(key, noisy.X, H, tol=tol, max_iter=5000)
    said = [str(w.message) for w in record]
    assert any("'component 1' and 'component 3' have the same spectrum" in m for m in said)
    assert any("'component 4' has an all-zero spectrum" in m for m in said)
    assert np.isfinite(res.W).all() and (res.W >= 0).all()
    # a zero spectrum explains nothing: its abundance stays 0
    assert (res.W[:, 4] == 0).all()
    # the duplicates share one abundance between them
    ref = reference(noisy.X, noisy.H)
    merged = np.column_stack([res.W[:, 0], res.W[:, 1] + res.W[:, 3], res.W[:, 2]])
    assert rel_error(merged, ref) <= coefficient_bound(key, noisy.H, tol)
    assert_objective_optimal(key, noisy.X, res.W, H, tol)


@pytest.mark.parametrize("key", BACKENDS)
def test_all_zero_basis(key, low_rank):
    with pytest.warns(UserWarning, match="has an all-zero spectrum"):
        res = run(key, low_rank.X, np.zeros_like(low_rank.H))
    assert (res.W == 0).all()
    assert res.reconstruction_err == pytest.approx(np.linalg.norm(low_rank.X))


@pytest.mark.parametrize("key", BACKENDS)
def test_fitted_abundances_keep_their_scale(key, low_rank):
    # fixed H: W is on the fitted scale, not normalised to unit maximum
    X = (500.0 * low_rank.W) @ low_rank.H
    res = run(key, X, low_rank.H, tol=1e-8)
    assert res.W.max() == pytest.approx(500.0 * low_rank.W.max(), rel=1e-6)
    np.testing.assert_allclose(res.W, 500.0 * low_rank.W, atol=1e-6 * 500.0)


@pytest.mark.parametrize("key", BACKENDS)
def test_single_pixel_single_component(key, low_rank):
    x = low_rank.X[:1]
    h = low_rank.H[:1]
    res = run(key, x, h, tol=1e-10)
    # one coefficient: the least-squares projection, clipped at 0
    expected = max(float(x[0] @ h[0] / (h[0] @ h[0])), 0.0)
    assert res.W[0, 0] == pytest.approx(expected, rel=1e-8)


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("key", BACKENDS)
def test_float32_in_float32_out(key, low_rank):
    X32 = low_rank.X.astype(np.float32)
    res = run(key, X32, low_rank.H, tol=1e-6)
    assert res.W.dtype == np.float32 and res.H.dtype == np.float32
    ref = run(key, low_rank.X, low_rank.H, tol=1e-6)
    # float32 rounding of X and H (eps32) amplified by the conditioning of H, plus
    # the iterative solver's own tolerance
    bound = 100 * np.finfo(np.float32).eps * np.sqrt(kappa(low_rank.H)) + (
        2 * coefficient_bound(key, low_rank.H, 1e-6))
    assert rel_error(res.W, ref.W) <= bound


@pytest.mark.parametrize("key", BACKENDS)
def test_tiny_values_behave_like_zeros(key, low_rank):
    X0 = low_rank.X.copy()
    X0[:10] = 0.0
    Xt = X0.copy()
    Xt[:10] = 1e-323  # subnormal float64: must not produce NaN or blow up
    a, b = run(key, X0, low_rank.H, tol=1e-8), run(key, Xt, low_rank.H, tol=1e-8)
    assert np.isfinite(b.W).all()
    np.testing.assert_allclose(b.W, a.W, atol=1e-300)


# ----------------------------------------------------------------------------- summary


@pytest.mark.parametrize("key", BACKENDS)
def test_summary_per_chunk(key, noisy):
    res = run(key, noisy.X, noisy.H, chunk_size=10)
    s = res.summary
    assert s["n_chunks"] == 10 and s["chunk_size"] == 10  # 96 pixels in chunks of 10
    assert len(s["chunk_iters"]) == 10
    assert s["max_chunk_iter"] == max(s["chunk_iters"]) == res.n_iter
    assert s["hit_max_iter"] is False and s["n_capped_pixels"] == 0
    assert s["exact"] is (key == SCIPY)
    if key == FISTA:
        # convergence is checked every 10 iterations
        assert all(0 < n <= 1000 and n % 10 == 0 for n in s["chunk_iters"])
    assert res.reconstruction_err == pytest.approx(
        np.linalg.norm(noisy.X - res.W @ noisy.H), rel=1e-10)


@pytest.mark.requires_torch
def test_fista_hitting_the_cap_warns_and_flags(overlap):
    # the ill-conditioned basis needs a few hundred iterations at tol=1e-4
    with pytest.warns(ConvergenceWarning, match="chunk.*max_iter=30"):
        res = run(FISTA, overlap.X, overlap.H, max_iter=30, chunk_size=40)
    s = res.summary
    assert s["hit_max_iter"] is True
    assert s["max_chunk_iter"] == 30 and s["chunk_iters"] == [30, 30, 30]
    assert s["n_capped_pixels"] == overlap.n_pixels
    # the last iterate is returned, not NaN
    assert np.isfinite(res.W).all() and (res.W >= 0).all()


def _refused_by_scipy(X, H, maxiter):
    """Pixels for which ``scipy.optimize.nnls`` itself raises at ``maxiter``."""
    refused = []
    for p, x in enumerate(X):
        try:
            scipy_nnls(H.T, x, maxiter=maxiter)
        except RuntimeError:
            refused.append(p)
    return refused


def test_scipy_maxiter_runtime_error_is_caught(low_rank):
    X, H = low_rank.X, low_rank.H
    # SciPy raises at its iteration limit instead of returning an approximation;
    # one active-set iteration is too few for every pixel here
    assert _refused_by_scipy(X, H, 1) == list(range(len(X)))
    with pytest.warns(ConvergenceWarning, match=f"{len(X)} pixel.*max_iter=1.*NaN"):
        res = run(SCIPY, X, H, max_iter=1)
    assert res.summary["hit_max_iter"] is True
    assert res.summary["capped_pixels"] == list(range(len(X)))
    assert np.isnan(res.W).all()
    assert np.isnan(res.reconstruction_err)


def test_scipy_capped_pixels_flagged_others_kept(low_rank):
    X, H = low_rank.X, low_rank.H
    refused = _refused_by_scipy(X, H, 3)
    assert 0 < len(refused) < len(X)  # the test needs both kinds of pixel
    with pytest.warns(ConvergenceWarning, match=f"{len(refused)} pixel.*NaN"):
        res = run(SCIPY, X, H, max_iter=3)
    s = res.summary
    assert s["hit_max_iter"] is True
    assert s["n_capped_pixels"] == len(refused)
    assert s["capped_pixels"] == refused
    assert np.isnan(res.W[refused]).all()
    ok = np.setdiff1d(np.arange(len(X)), refused)
    np.testing.assert_array_equal(res.W[ok], run(SCIPY, X, H).W[ok])
    # the error is reported over the pixels that have an answer
    assert res.reconstruction_err == pytest.approx(
        np.linalg.norm(X[ok] - res.W[ok] @ H), rel=1e-12)


# ----------------------------------------------------------------------------- chunks, cancel


def test_scipy_chunking_is_bit_identical(noisy):
    a = run(SCIPY, noisy.X, noisy.H)
    b = run(SCIPY, noisy.X, noisy.H, chunk_size=7)
    assert b.summary["n_chunks"] == 14
    assert a.W.tobytes() == b.W.tobytes()


@pytest.mark.requires_torch
def test_fista_chunking_same_answer(overlap):
    # every chunk stops on its own, so iterates differ; both are within tol of the
    # optimum
    tol = 1e-6
    a = run(FISTA, overlap.X, overlap.H, tol=tol, max_iter=5000)
    b = run(FISTA, overlap.X, overlap.H, tol=tol, max_iter=5000, chunk_size=7)
    assert a.summary["n_chunks"] == 1 and b.summary["n_chunks"] == 14
    assert rel_error(a.W, b.W) <= 2 * coefficient_bound(FISTA, overlap.H, tol)


@pytest.mark.parametrize("key", BACKENDS)
def test_callback_progress_and_cancel(key, noisy):
    infos = []
    run(key, noisy.X, noisy.H, chunk_size=32, callback=infos.append)
    assert [i.iteration for i in infos] == [1, 2, 3]
    assert all(i.stage == "nnls" and i.max_iter == 3 for i in infos)
    assert infos[-1].fraction == 1.0

    seen = []

    def stop_after_two(info):
        seen.append(info.iteration)
        return info.iteration < 2

    with pytest.raises(Cancelled):
        run(key, noisy.X, noisy.H, chunk_size=32, callback=stop_after_two)
    assert seen == [1, 2]  # stopped between chunks, without finishing the run


# ----------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("key", BACKENDS)
def test_inputs_never_modified(key, noisy):
    X, H = noisy.X.copy(), noisy.H.copy()
    X.setflags(write=False)
    H.setflags(write=False)
    res = run(key, X, H)
    np.testing.assert_array_equal(X, noisy.X)
    np.testing.assert_array_equal(H, noisy.H)
    assert res.H is not H and not np.shares_memory(res.H, H)


def test_channel_mismatch(noisy):
    with pytest.raises(ValueError, match="H has 31 channel.*data has 32.*Resample"):
        nnls(noisy.X, noisy.H[:, :-1])


def test_one_dimensional_spectrum(noisy):
    with pytest.raises(ValueError, match=r"H\[None, :\]"):
        nnls(noisy.X, noisy.H[0])


@pytest.mark.parametrize(("bad", "word"), [(-1.0, "negative"), (np.nan, "NaN")])
def test_bad_spectrum_values(noisy, bad, word):
    H = noisy.H.copy()
    H[1, 3] = bad
    with pytest.raises(ValueError, match=f"H .*{word}"):
        nnls(noisy.X, H)


@pytest.mark.parametrize("policy", ["clip", "offset"])
def test_negative_data_policy_is_recorded(noisy, policy):
    X = noisy.X - 0.02  # background-subtracted data dips below zero
    n_neg = int((X < 0).sum())
    assert n_neg > 0
    res = nnls(X, noisy.H, negative=policy)
    assert res.params["negative"] == policy
    assert res.summary["negative"]["policy"] == policy
    assert res.summary["negative"]["n_negative"] == n_neg
    expected = np.maximum(X, 0) if policy == "clip" else X - X.min()
    if policy == "offset":
        assert res.summary["negative"]["offset"] == pytest.approx(-X.min())
    np.testing.assert_allclose(res.W, reference(expected, noisy.H), atol=1e-12)


@pytest.mark.parametrize("chunk_size", [0, -1, 1.5, 32.0, True, "64"])
def test_bad_chunk_size(noisy, chunk_size):
    # 1.5 was truncated to 1 and 32.0 accepted; a float is refused, not rounded
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1 or None"):
        nnls(noisy.X, noisy.H, chunk_size=chunk_size)


def test_a_numpy_integer_chunk_size_is_a_chunk_size(noisy):
    res = nnls(noisy.X, noisy.H, chunk_size=np.int64(10))
    assert res.summary["n_chunks"] == 10


@pytest.mark.parametrize("name", ["solver", "backend"])
@pytest.mark.parametrize("value", [None, 1])
def test_a_solver_or_backend_that_is_not_a_name_is_refused(noisy, name, value):
    # None used to end in a TypeError from str.join inside the solver table
    with pytest.raises(TypeError, match=f"NNLS {name} must be a name: one of .*'auto'; "
                                        f"got {value!r}"):
        nnls(noisy.X, noisy.H, **{name: value})


# ----------------------------------------------------------------------------- restart, GPU


@pytest.mark.requires_torch
def test_restarted_fista_is_monotone_and_agrees(overlap):
    from napari_unmix.core.solvers.torch_fista import fit_nnls_fista

    trace = []
    fit = fit_nnls_fista(overlap.X, overlap.H, max_iter=400, tol=0.0, device="cpu",
                         restart=True, trace=trace)
    f = np.array(trace)  # (iterations, pixels)
    # monotone per pixel, up to rounding of the objective evaluation (its terms are
    # of the size of ||x||^2)
    slack = 16 * EPS64 * np.einsum("ij,ij->i", overlap.X, overlap.X)
    assert (np.diff(f, axis=0) <= slack).all()
    assert fit.n_iter == 400 and not fit.converged
    res = run(FISTA, overlap.X, overlap.H, tol=1e-8, restart=True, max_iter=20000)
    assert res.params["restart"] is True
    assert rel_error(res.W, overlap.W) <= coefficient_bound(FISTA, overlap.H, 1e-8)


@pytest.mark.cuda
def test_fista_on_cuda_matches_cpu(overlap):
    # restarted FISTA: plain FISTA's stopping rule is unreliable at this tol on the
    # ill-conditioned basis (on CUDA it reached max_iter=1000)
    tol = 1e-6
    cpu = run(FISTA, overlap.X, overlap.H, tol=tol, device="cpu", restart=True, max_iter=20000)
    gpu = run(FISTA, overlap.X, overlap.H, tol=tol, device="cuda", restart=True, max_iter=20000)
    assert gpu.device.startswith("cuda")
    assert rel_error(gpu.W, cpu.W) <= 2 * coefficient_bound(FISTA, overlap.H, tol)


@pytest.mark.parametrize(("H", "what"), [
    (lambda h: np.vstack([h, h[0] + 5e-7 * np.cos(7.0 * np.arange(h.shape[1]))]),
     "nearly collinear"),
    (lambda h: np.vstack([h] * 12), "spectra on 32 channels"),
])
def test_ill_determined_spectra_are_said_out_loud(noisy, H, what):
    """Near-collinear spectra get their condition number (and the exact solver's limit),
    more spectra than channels are said to give no unique abundances."""
    H = H(noisy.H)
    with pytest.warns(UserWarning, match=what):
        res = nnls(noisy.X, H, component_names=[f"s{i}" for i in range(len(H))])
    assert what in " ".join(res.summary.identifiability)
    assert res.summary.condition_number > 1e6


def test_well_conditioned_spectra_raise_no_word(noisy):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = nnls(noisy.X, noisy.H)
    assert res.summary.identifiability == [] and 1 < res.summary.condition_number < 100
    assert res.summary.n_error_pixels == noisy.n_pixels


def test_capped_scipy_pixels_are_reported_honestly(overlap):
    """SciPy pixels that hit max_iter are NaN: the summary counts them, says the error
    covers the other pixels, and the iteration count says the cap was reached."""
    from sklearn.exceptions import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match="the errors are over the other"):
        res = nnls(overlap.X, overlap.H, solver="lawson-hanson", backend="scipy", max_iter=1)
    s = res.summary
    assert s.n_capped_pixels > 0 and s.n_error_pixels == overlap.n_pixels - s.n_capped_pixels
    assert s.max_chunk_iter == 1 and res.n_iter == 1 and s.hit_max_iter
