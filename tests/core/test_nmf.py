"""Random and seeded NNMF, for every registered solver x backend.

Tests taking ``nmf_key`` run once per entry of ``core.solvers.NMF_SOLVERS`` (see
conftest.py); torch entries are skipped when torch is not installed.

References: the true factors of the synthetic problems, SVD (Eckart-Young lower
bound of any rank-k error), SciPy NNLS for completed seeds.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import warnings

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls
from sklearn.exceptions import ConvergenceWarning

from napari_unmix.core import NMF_SOLVERS, Cancelled, nmf
from napari_unmix.core.init import INITS, initialize_factors
from napari_unmix.core.solvers import NNLS_SOLVERS

TORCH_MU = pytest.param(("mu", "torch"), id="mu/torch", marks=pytest.mark.requires_torch)


def run(key, X, k, **kw):
    return nmf(X, k, solver=key[0], backend=key[1], **kw)


def run_quiet(key, X, k, **kw):
    """``run`` for tests about something other than convergence: a hit cap is fine."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return run(key, X, k, **kw)


def spec_of(key):
    return NMF_SOLVERS[key]


def svd_error(X, k):
    """Smallest ``||X - A||_F`` over all rank-k ``A`` (no sign constraint)."""
    s = np.linalg.svd(X, compute_uv=False)
    return float(np.sqrt(np.sum(s[k:] ** 2)))


def best_cosines(H, H_true):
    """Cosine similarity of matched spectra (best permutation), one per component."""
    a = H / np.linalg.norm(H, axis=1, keepdims=True)
    b = H_true / np.linalg.norm(H_true, axis=1, keepdims=True)
    C = a @ b.T
    k = len(H)
    best = max(itertools.permutations(range(k)), key=lambda p: min(C[i, p[i]] for i in range(k)))
    return np.array([C[i, best[i]] for i in range(k)])


def perturbed(A, seed, amount=0.3):
    """A strictly positive seed near ``A``: multiplicative noise of ``amount``."""
    rng = np.random.default_rng(seed)
    return np.abs(A) * (1 + amount * rng.uniform(-1, 1, A.shape)) + 0.05 * np.abs(A).max()


# ----------------------------------------------------------------------------- output


@pytest.mark.parametrize("init", INITS)
def test_output_non_negative(nmf_key, init):
    # scikit-learn's test_nmf_fit_nn_output: data with exact zeros and a wide range
    rng = np.random.default_rng(42)
    X = np.c_[5.0 * np.ones(5) - np.arange(1, 6), 5.0 * np.ones(5) + np.arange(1, 6)]
    X = np.vstack([X, np.abs(rng.standard_normal((20, 2))) * 3])
    X = np.hstack([X, np.abs(rng.standard_normal((25, 4)))])
    res = run_quiet(nmf_key, X, 2, init=init, random_state=0, max_iter=200)
    assert res.W.shape == (25, 2) and res.H.shape == (2, 6)
    assert np.isfinite(res.W).all() and np.isfinite(res.H).all()
    assert (res.W >= 0).all() and (res.H >= 0).all()
    assert res.mode == "nmf" and res.params["init"] == init


def test_exact_low_rank_reconstructs(nmf_key, low_rank):
    # the best rank-2 fit leaves 33 % of ||X||; a solver that found the 3 components
    # gets orders of magnitude below.  The bound is set by the slowest family (MU,
    # sublinear: ~3e-5 after 5000 iterations here); CD reaches ~3e-7.
    X = low_rank.X
    assert svd_error(X, 2) > 0.3 * np.linalg.norm(X)
    res = run_quiet(nmf_key, X, 3, random_state=0, tol=1e-7, max_iter=5000)
    assert res.reconstruction_err <= 1e-4 * np.linalg.norm(X)
    # the components found are the true ones.  NMF is unique here only up to small
    # non-negative rotations (measured cosines ~0.998); a mixture of two true
    # spectra would score far lower, since distinct true spectra have cosine < 0.2
    Hn = low_rank.H / np.linalg.norm(low_rank.H, axis=1, keepdims=True)
    assert (Hn @ Hn.T)[~np.eye(3, dtype=bool)].max() < 0.2
    assert (best_cosines(res.H, low_rank.H) >= 0.99).all()


def test_noisy_reaches_noise_floor(nmf_key, noisy):
    # no rank-3 matrix beats the SVD error (a hard lower bound); the true factors
    # leave the noise floor, and a converged NNMF gets at least as close (it
    # fits part of the noise): within 1 % above it at tol=1e-6
    res = run(nmf_key, noisy.X, 3, random_state=0, tol=1e-6, max_iter=5000)
    assert svd_error(noisy.X, 3) * (1 - 1e-12) <= res.reconstruction_err
    assert res.reconstruction_err <= 1.01 * noisy.noise_floor
    assert res.summary["relative_error"] == pytest.approx(
        res.reconstruction_err / np.linalg.norm(noisy.X))
    # the reported error is the Frobenius norm of what was returned
    assert res.reconstruction_err == pytest.approx(
        np.linalg.norm(noisy.X - res.W @ res.H), rel=1e-10)


# ----------------------------------------------------------------------------- monotonicity


@pytest.mark.parametrize("data", ["noisy", "overlap"])
def test_objective_decreases_every_iteration(request, nmf_key, data):
    # restart from the same init with max_iter = 1, 2, ...: the objective after
    # each single extra iteration must not increase (MU and CD are monotone).
    # Slack: the error is evaluated in float64 from float64 factors, rounding
    # ~ n_channels * eps64 relative
    p = request.getfixturevalue(data)
    W0, H0 = initialize_factors(p.X, 3, init="random", random_state=1)
    errors = [run_quiet(nmf_key, p.X, 3, W0=W0, H0=H0, max_iter=i, tol=0.0).reconstruction_err
              for i in range(1, 26)]
    e = np.array(errors)
    slack = 32 * np.finfo(np.float64).eps * e[:-1]
    assert (np.diff(e) <= slack).all(), np.diff(e).max()
    assert e[-1] < 0.5 * e[0]  # and it does make progress


@pytest.mark.requires_torch
def test_torch_mu_error_trace_monotone(noisy):
    # one long run sampled at every iteration through the callback
    infos = []
    run_quiet(("mu", "torch"), noisy.X, 3, random_state=0, max_iter=400, tol=0.0,
              track_error_every=1, callback=infos.append)
    e = np.array([i.error for i in infos])
    assert [i.iteration for i in infos] == list(range(len(infos)))
    assert len(e) > 100
    assert (np.diff(e) <= 32 * np.finfo(np.float64).eps * e[:-1]).all()


# ----------------------------------------------------------------------------- stopping


@pytest.mark.requires_torch
@pytest.mark.parametrize(("tol", "every"), [(1e-3, 7), (1e-4, 10), (0.0, 1)])
def test_torch_mu_stopping_rule(noisy, tol, every):
    infos = []
    res = run_quiet(("mu", "torch"), noisy.X, 3, random_state=0, tol=tol,
                    track_error_every=every, callback=infos.append, max_iter=3000)
    its = [i.iteration for i in infos]
    E = np.array([i.error for i in infos])
    # the error is sampled at iteration 0 and every `every` iterations
    assert its == list(range(0, res.n_iter + 1, every))
    # the rule, evaluated on the reported samples: stop at the first sample whose
    # relative improvement over the previous sample is <= tol
    eps = np.finfo(noisy.X.dtype).eps
    improvement = (E[:-1] - E[1:]) / np.maximum(E[:-1], eps)
    # with tol > 0 this problem converges well before the cap (tol=0 may not)
    assert res.summary["converged"] or tol == 0.0
    if res.summary["converged"]:
        assert improvement[-1] <= tol
        assert (improvement[:-1] > tol).all()
        assert res.summary["hit_max_iter"] is False
    else:
        assert res.n_iter == 3000 and (improvement > tol).all()
    assert res.summary["error_history"] == [[i, e] for i, e in zip(its, E.tolist(),
                                                                     strict=True)]
    assert res.reconstruction_err == pytest.approx(E[-1], rel=1e-12)


@pytest.mark.requires_torch
def test_torch_mu_sampled_errors_are_true_errors(noisy):
    # the errors the callback reports are ||X - W_k H_k||_F of the k-th iterate:
    # stopping a run early at k (same init) returns exactly that iterate
    infos = []
    run(("mu", "torch"), noisy.X, 3, random_state=0, tol=1e-3, callback=infos.append)
    for info in infos[1:4]:
        res = run_quiet(("mu", "torch"), noisy.X, 3, random_state=0, tol=0.0,
                        max_iter=info.iteration, track_error_every=10**6)
        assert res.reconstruction_err == pytest.approx(info.error, rel=1e-12)


def test_hitting_max_iter_warns_and_flags(nmf_key, noisy):
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        res = run(nmf_key, noisy.X, 3, random_state=0, max_iter=3, tol=1e-12)
    assert res.summary["hit_max_iter"] is True
    assert res.summary["converged"] is False
    assert res.n_iter == 3 and res.summary["n_iter"] == 3


def test_converged_run_does_not_warn(nmf_key, noisy):
    # pytest turns warnings into errors: reaching tol must be silent
    res = run(nmf_key, noisy.X, 3, random_state=0, tol=1e-3, max_iter=5000)
    assert res.summary["hit_max_iter"] is False and res.summary["converged"] is True
    assert res.n_iter < 5000


# ----------------------------------------------------------------------------- progress


def test_callback_false_cancels(nmf_key, noisy):
    with pytest.raises(Cancelled):
        run(nmf_key, noisy.X, 3, random_state=0, callback=lambda info: False)


def test_cancel_midway(nmf_key, noisy):
    if not spec_of(nmf_key).cancellable:
        pytest.skip(f"{'/'.join(nmf_key)} reports only at start and end")
    seen = []

    def stop_at_20(info):
        seen.append(info.iteration)
        return info.iteration < 20

    with pytest.raises(Cancelled, match="iteration 20"):
        run(nmf_key, noisy.X, 3, random_state=0, tol=0.0, max_iter=500,
            track_error_every=10, callback=stop_at_20)
    assert seen == [0, 10, 20]


def test_progress_errors_are_in_the_data_units(nmf_key, noisy):
    # X x 8.0 is fitted as X / 8 inside (summary.data_scale) by the solvers that
    # need values near 1; HALS fits it as it is.  Either way what the callback (the
    # dock's progress bar) shows must be the error of the data, as in the summary
    infos = []
    res = run_quiet(nmf_key, 8.0 * noisy.X, 3, random_state=0, tol=0.0, max_iter=20,
                    track_error_every=5, callback=infos.append)
    assert (res.summary.data_scale == 1.0) == NMF_SOLVERS[nmf_key].scale_exact
    reported = [(i.iteration, i.error) for i in infos if i.error is not None]
    assert reported[-1][1] == pytest.approx(res.reconstruction_err, rel=1e-6)
    if nmf_key[1] != "sklearn":   # scikit-learn reports its start and its end only
        history = dict(res.summary.error_history)
        for it, err in reported:
            assert err == pytest.approx(history[it], rel=1e-12)


def test_progress_info(nmf_key, noisy):
    infos = []
    res = run(nmf_key, noisy.X, 3, random_state=0, tol=1e-3, callback=infos.append)
    assert len(infos) >= 2
    assert all(i.stage == "nmf" and i.max_iter == 1000 for i in infos)
    assert all(0.0 <= i.fraction <= 1.0 for i in infos)
    assert infos[0].iteration == 0 and infos[-1].iteration == res.n_iter
    assert infos[-1].error == pytest.approx(res.reconstruction_err, rel=1e-10)


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize(("dtype", "expected"), [
    (np.float32, np.float32), (np.float64, np.float64), (np.uint16, np.float32),
    (np.uint8, np.float32), (np.int64, np.float64)], ids=lambda d: np.dtype(d).name)
def test_dtype_rule(nmf_key, noisy, dtype, expected):
    X = noisy.X * (50 if np.dtype(dtype).kind in "iu" else 1)
    res = run_quiet(nmf_key, X.astype(dtype), 3, random_state=0, max_iter=50)
    assert res.W.dtype == expected and res.H.dtype == expected
    assert res.summary["dtype"] == np.dtype(expected).name


def test_float32_float64_agree(nmf_key, noisy):
    # same init, 50 iterations, no early stop.  float32 rounds every operation at
    # eps32 ~ 6e-8 relative; after 50 iterations the factors differ by ~1e-6
    # relative (measured), the reconstructions by ~1e-6.  Allow 1e-5 (sklearn's
    # test_nmf_float32_float64_consistency uses the same atol).
    r64 = run_quiet(nmf_key, noisy.X, 3, random_state=0, max_iter=50, tol=0.0)
    r32 = run_quiet(nmf_key, noisy.X.astype(np.float32), 3, random_state=0, max_iter=50,
                    tol=0.0)
    assert r32.W.dtype == np.float32
    for a, b in ((r32.W, r64.W), (r32.H, r64.H), (r32.W @ r32.H, r64.W @ r64.H)):
        assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()


def test_tiny_values_behave_like_zeros(nmf_key, low_rank):
    # scikit-learn's test_nmf_underflow: subnormal data must not create NaN/Inf
    X0 = low_rank.X.copy()
    X0[:10] = 0.0
    Xt = X0.copy()
    Xt[:10] = 1e-323
    a = run_quiet(nmf_key, X0, 3, random_state=0, max_iter=200)
    b = run_quiet(nmf_key, Xt, 3, random_state=0, max_iter=200)
    assert np.isfinite(b.W).all() and np.isfinite(b.H).all()
    # 1e-323 differs from 0 by one subnormal step: the fits agree to rounding
    np.testing.assert_allclose(b.H, a.H, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(b.W, a.W, rtol=1e-12, atol=1e-300)
    assert b.reconstruction_err == pytest.approx(a.reconstruction_err, rel=1e-12)


@pytest.mark.parametrize(("shape", "k"), [
    ((1, 32), 1), ((96, 1), 1), ((40, 4), 4), ((2, 2), 2), ((500, 3), 2), ((3, 500), 2)],
    ids=["1-pixel", "1-channel", "k=n_channels", "k=n_pixels", "tall", "wide"])
def test_awkward_shapes(nmf_key, shape, k):
    X = np.abs(np.random.default_rng(0).standard_normal(shape)) + 0.01
    res = run_quiet(nmf_key, X, k, random_state=0, max_iter=300)
    assert res.W.shape == (shape[0], k) and res.H.shape == (k, shape[1])
    assert np.isfinite(res.W).all() and np.isfinite(res.H).all()
    assert (res.W >= 0).all() and (res.H >= 0).all()
    # never worse than explaining nothing at all
    assert res.reconstruction_err <= np.linalg.norm(X)
    if k == 1 and min(shape) == 1:
        # rank-1 data: one component explains it exactly (up to solver tolerance)
        assert res.reconstruction_err <= 1e-3 * np.linalg.norm(X)


# ----------------------------------------------------------------------------- seeds


def test_seeded_with_only_H0(nmf_key, noisy):
    H0 = perturbed(noisy.H, 1)
    res = run(nmf_key, noisy.X, 3, H0=H0, tol=1e-6, max_iter=5000)
    assert res.mode == "seeded-nmf" and res.params["init"] == "custom"
    assert res.summary["init"] == {"W0": "nnls fit to H0", "H0": "given"}
    np.testing.assert_array_equal(res.arrays["H0"], H0)
    # the completed W0 is the NNLS fit of X to H0, on its fitted scale
    ref = np.array([scipy_nnls(H0.T, x)[0] for x in noisy.X])
    np.testing.assert_allclose(res.arrays["W0"], ref, rtol=1e-10, atol=1e-12)
    assert res.reconstruction_err <= 1.01 * noisy.noise_floor


def test_seeded_with_only_W0(nmf_key, noisy):
    W0 = perturbed(noisy.W, 2)
    res = run(nmf_key, noisy.X, 3, W0=W0, tol=1e-6, max_iter=5000)
    assert res.summary["init"] == {"W0": "given", "H0": "nnls fit to W0"}
    np.testing.assert_array_equal(res.arrays["W0"], W0)
    ref = np.array([scipy_nnls(W0, x)[0] for x in noisy.X.T]).T
    np.testing.assert_allclose(res.arrays["H0"], ref, rtol=1e-10, atol=1e-12)
    assert res.reconstruction_err <= 1.01 * noisy.noise_floor


def test_seeded_with_both(nmf_key, noisy):
    W0, H0 = perturbed(noisy.W, 3), perturbed(noisy.H, 4)
    res = run(nmf_key, noisy.X, 3, W0=W0, H0=H0, tol=1e-6, max_iter=5000)
    assert res.summary["init"] == {"W0": "given", "H0": "given"}
    assert res.reconstruction_err <= 1.01 * noisy.noise_floor
    # the seed steers the fit to the true components
    assert (best_cosines(res.H, noisy.H) >= 0.99).all()


def _lock_capable(key):
    return spec_of(key).partial_lock


def test_locked_rows_bit_identical(nmf_key, noisy):
    H0 = perturbed(noisy.H, 5)
    H0[0] = noisy.H[0]
    if not _lock_capable(nmf_key):
        with pytest.raises(ValueError, match="cannot"):
            run(nmf_key, noisy.X, 3, H0=H0, locked=[0])
        return
    res = run_quiet(nmf_key, noisy.X, 3, H0=H0, locked=[0], tol=1e-6, max_iter=3000)
    assert res.H[0].tobytes() == H0[0].tobytes()
    assert not np.array_equal(res.H[1:], H0[1:])  # the free rows did move
    assert res.summary["locked"] == [0] and res.params["locked"] == [0]
    assert res.reconstruction_err <= 1.01 * noisy.noise_floor
    # a boolean mask means the same
    same = run_quiet(nmf_key, noisy.X, 3, H0=H0, locked=np.array([True, False, False]),
                     tol=1e-6, max_iter=3000)
    np.testing.assert_array_equal(same.W, res.W)


def test_solver_itself_keeps_locked_rows(nmf_key, noisy):
    # nmf() also restores locked rows afterwards; check the solver on its own
    if not _lock_capable(nmf_key):
        pytest.skip("solver cannot lock a subset of the spectra")
    spec = spec_of(nmf_key)
    if spec.needs_torch:
        pytest.importorskip("torch")
    W0, H0 = perturbed(noisy.W, 6), perturbed(noisy.H, 7)
    lock = np.array([False, True, False])
    fit = spec.func(noisy.X, W0, H0, solver=spec.algorithm, max_iter=50, tol=0.0, locked=lock,
                    report=None, random_state=0, track_error_every=10, device="cpu")
    assert fit.H[1].tobytes() == H0[1].tobytes()
    assert not np.array_equal(fit.H[[0, 2]], H0[[0, 2]])


def test_all_rows_locked(nmf_key, noisy):
    # every spectrum locked = fixed-H NNLS: W is solved exactly whatever the solver,
    # so the error equals the NNLS optimum for fixed H0 to float64 rounding
    H0 = perturbed(noisy.H, 8)
    res = run_quiet(nmf_key, noisy.X, 3, H0=H0, locked=[0, 1, 2], tol=1e-6, max_iter=2000)
    assert res.H.tobytes() == H0.tobytes()
    W_opt = np.array([scipy_nnls(H0.T, x)[0] for x in noisy.X])
    e_opt = np.linalg.norm(noisy.X - W_opt @ H0)
    assert res.reconstruction_err == pytest.approx(e_opt, rel=1e-9)
    assert NNLS_SOLVERS[(res.summary["solver"], res.summary["backend"])].exact
    assert not res.summary["hit_max_iter"]


def test_locked_needs_h0_and_valid_indices(noisy):
    with pytest.raises(ValueError, match="locked spectra need H0"):
        nmf(noisy.X, 3, locked=[0])
    with pytest.raises(ValueError, match="out of range"):
        nmf(noisy.X, 3, H0=noisy.H, locked=[3])
    with pytest.raises(ValueError, match="one flag per component"):
        nmf(noisy.X, 3, H0=noisy.H, locked=np.array([True, False]))


@pytest.mark.parametrize("locked", [[1.5], [0.9], np.array([0.0, 1.0, 0.0]), "a", [[0, 1]]])
def test_locked_that_is_neither_indices_nor_flags_is_refused(noisy, locked):
    # floats were truncated to indices: [0., 1., 0.] (flags as floats) locked rows 0 and 1
    with pytest.raises(ValueError, match="component indices .integers. or one True/False"):
        nmf(noisy.X, 3, H0=noisy.H, locked=locked)


def test_an_empty_locked_list_locks_nothing(noisy):
    a = nmf(noisy.X, 3, H0=noisy.H, locked=[], max_iter=3000, random_state=0)
    b = nmf(noisy.X, 3, H0=noisy.H, max_iter=3000, random_state=0)
    assert np.array_equal(a.H, b.H) and not a.summary.locked


@pytest.mark.parametrize("anchor", ["x", [1.0, "y", 0.0]])
def test_an_anchor_that_is_not_a_number_is_refused_by_name(noisy, anchor):
    with pytest.raises(ValueError, match="anchor must be one number >= 0"):
        nmf(noisy.X, 3, H0=noisy.H, anchor=anchor)


@pytest.mark.parametrize("every", [0, 2.7, 10.0, None])
def test_track_error_every_must_be_a_positive_integer(noisy, every):
    # 2.7 was truncated to 2 and recorded as 2
    with pytest.raises(ValueError, match="track_error_every must be an integer >= 1, got"):
        nmf(noisy.X, 3, track_error_every=every, random_state=0)


@pytest.mark.parametrize("name", ["solver", "backend"])
def test_a_solver_or_backend_that_is_not_a_name_is_refused(noisy, name):
    with pytest.raises(TypeError, match=f"NNMF {name} must be a name: one of .*got None"):
        nmf(noisy.X, 3, random_state=0, **{name: None})


@pytest.mark.parametrize("which", ["W0", "H0"])
def test_seed_errors(noisy, which):
    good = {"W0": noisy.W + 0.1, "H0": noisy.H}[which]
    shape = good.shape
    cases = []
    neg = good.copy()
    neg[0, 0] = -1.0
    cases.append((neg, ValueError, f"{which} holds 1 negative value"))
    cases.append((np.zeros(shape), ValueError, f"{which} is all zeros"))
    nan = good.copy()
    nan[0, 0] = np.nan
    cases.append((nan, ValueError, f"{which} contains NaN"))
    needed = re.escape(f"but shape {shape} is needed")
    cases.append((good[:, :-1], ValueError, rf"{which} has shape .*, {needed}"))
    cases.append((good.T, ValueError, rf"{which} has shape .*, {needed}"))
    cases.append((good.astype(object), TypeError, "not a real number type"))
    cases.append((good.astype(complex), TypeError, "not a real number type"))
    for seed, error, message in cases:
        with pytest.raises(error, match=message):
            nmf(noisy.X, 3, **{which: seed})


@pytest.mark.parametrize("which", ["W0", "H0"])
def test_float64_seeds_beyond_float32_are_refused_for_float32_data(noisy, which):
    # finite in float64, infinite once converted to the data's float32: it raised
    # LinAlgError, or ran to the cap with an infinite error
    good = {"W0": noisy.W + 0.1, "H0": noisy.H}[which]
    with pytest.raises(ValueError, match=rf"{which} holds values up to [\d.]+e\+39, beyond "
                                         r"the range of the data's float32"):
        nmf(noisy.X.astype(np.float32), 3, **{which: good * 1e39})


@pytest.mark.parametrize("seed_dtype", [np.float32, np.uint8, np.int64])
def test_seed_dtype_converted_to_data_dtype(noisy, seed_dtype):
    # documented: seeds take X's dtype
    H0 = np.round(noisy.H * 100).astype(seed_dtype) + 1
    res = run_quiet(("cd", "sklearn"), noisy.X, 3, H0=H0, max_iter=20)
    assert res.arrays["H0"].dtype == np.float64
    np.testing.assert_array_equal(res.arrays["H0"], H0.astype(np.float64))
    res32 = run_quiet(("cd", "sklearn"), noisy.X.astype(np.float32), 3,
                      H0=H0.astype(np.float64), max_iter=20)
    assert res32.arrays["H0"].dtype == np.float32 and res32.W.dtype == np.float32


# ----------------------------------------------------------------------------- MU lift


def _zero_seeds(problem):
    """Positive seeds near the truth with one exact zero each, where the truth is big."""
    W0 = problem.W + 0.1
    H0 = problem.H.copy()
    p = int(np.argmax(problem.W[:, 0]))
    j = int(np.argmax(problem.H[0]))
    W0[p, 0] = 0.0
    H0[0, j] = 0.0
    return W0, H0, (p, 0), (0, j)


def test_mu_lift_frees_zero_seeds(nmf_key, noisy):
    if spec_of(nmf_key).algorithm != "mu":
        pytest.skip("the lift is for multiplicative updates only")
    W0, H0, wz, hz = _zero_seeds(noisy)
    lifted = run_quiet(nmf_key, noisy.X, 3, W0=W0, H0=H0, max_iter=300)
    stuck = run_quiet(nmf_key, noisy.X, 3, W0=W0, H0=H0, max_iter=300, mu_eps_lift=False)
    # without the lift an exact zero never moves under multiplicative updates ...
    assert stuck.W[wz] == 0.0 and stuck.H[hz] == 0.0
    assert stuck.summary["mu_eps_lift"] == {"applied": False}
    assert stuck.params["mu_eps_lift"] is False
    # ... with it the entries grow back towards the truth (the peak of a spectrum,
    # the strongest pixel of a map)
    assert lifted.H[hz] > 0.5 * noisy.H[hz]
    assert lifted.W[wz] > 0.5 * noisy.W[wz]
    lift = lifted.summary["mu_eps_lift"]
    assert lift["applied"] is True and lift["eps"] == np.finfo(np.float64).eps
    assert lift["n_lifted_W"] == 1 and lift["n_lifted_H"] == 1
    assert lifted.reconstruction_err < stuck.reconstruction_err
    # the stored seeds are the caller's, not the lifted copies
    assert lifted.arrays["W0"][wz] == 0.0 and lifted.arrays["H0"][hz] == 0.0


def test_solver_receives_seeds_unchanged_unless_mu(nmf_key, noisy, monkeypatch):
    spec = spec_of(nmf_key)
    if spec.needs_torch:
        pytest.importorskip("torch")
    received = {}

    def spy(X, W, H, **kw):
        received["W"], received["H"] = W.copy(), H.copy()
        return spec.func(X, W, H, **kw)

    monkeypatch.setitem(NMF_SOLVERS, nmf_key, dataclasses.replace(spec, func=spy))
    W0, H0, wz, hz = _zero_seeds(noisy)
    run_quiet(nmf_key, noisy.X, 3, W0=W0, H0=H0, max_iter=5)
    if spec.algorithm == "mu":
        # the floor is relative: eps times the maximum of the W column / H row
        floor_W = np.finfo(np.float64).eps * W0.max(axis=0, keepdims=True)
        floor_H = np.finfo(np.float64).eps * H0.max(axis=1, keepdims=True)
        assert received["W"][wz] == floor_W[0, wz[1]]
        assert received["H"][hz] == floor_H[hz[0], 0]
        np.testing.assert_array_equal(np.maximum(W0, floor_W), received["W"])
        np.testing.assert_array_equal(np.maximum(H0, floor_H), received["H"])
        # and with the lift off, the seeds as given
        run_quiet(nmf_key, noisy.X, 3, W0=W0, H0=H0, max_iter=5, mu_eps_lift=False)
    np.testing.assert_array_equal(received["W"], W0)
    np.testing.assert_array_equal(received["H"], H0)


def test_caller_arrays_never_modified(nmf_key, noisy):
    W0, H0, _, _ = _zero_seeds(noisy)
    X = noisy.X.copy()
    originals = [a.copy() for a in (X, W0, H0)]
    for lift in (True, False):
        run_quiet(nmf_key, X, 3, W0=W0, H0=H0, max_iter=20, mu_eps_lift=lift)
        for a, b in zip((X, W0, H0), originals, strict=True):
            assert a.tobytes() == b.tobytes()


def test_read_only_inputs(nmf_key, noisy):
    W0, H0, _, _ = _zero_seeds(noisy)
    X = noisy.X.copy()
    for a in (X, W0, H0):
        a.setflags(write=False)
    for lift in (True, False):
        res = run_quiet(nmf_key, X, 3, W0=W0, H0=H0, max_iter=20, mu_eps_lift=lift)
        assert np.isfinite(res.W).all()
        assert res.W.flags.writeable and res.H.flags.writeable
    res = run_quiet(nmf_key, X, 3, random_state=0, max_iter=20)
    assert np.isfinite(res.W).all()


def test_float32_seeds_on_float32_data_not_aliased(nmf_key, noisy):
    # seeds that need no dtype conversion must still not be shared with the result
    X = noisy.X.astype(np.float32)
    H0 = perturbed(noisy.H, 9).astype(np.float32)
    W0 = perturbed(noisy.W, 10).astype(np.float32)
    res = run_quiet(nmf_key, X, 3, W0=W0, H0=H0, max_iter=10)
    for a in (res.W, res.H, res.arrays["W0"], res.arrays["H0"]):
        assert not np.shares_memory(a, W0) and not np.shares_memory(a, H0)


# ----------------------------------------------------------------------------- reproducibility


def test_same_random_state_identical(nmf_key, noisy):
    a = run_quiet(nmf_key, noisy.X, 3, init="random", random_state=7, max_iter=100)
    b = run_quiet(nmf_key, noisy.X, 3, init="random", random_state=7, max_iter=100)
    assert a.W.tobytes() == b.W.tobytes() and a.H.tobytes() == b.H.tobytes()
    # and the seed matters (so the comparison above can fail)
    c = run_quiet(nmf_key, noisy.X, 3, init="random", random_state=8, max_iter=100)
    assert not np.array_equal(a.W, c.W)


def test_random_state_none_is_recorded(nmf_key, noisy):
    a = run_quiet(nmf_key, noisy.X, 3, init="random", max_iter=100)
    seed = a.params["random_state"]
    assert isinstance(seed, int) and seed >= 0
    b = run_quiet(nmf_key, noisy.X, 3, init="random", max_iter=100, random_state=seed)
    assert a.W.tobytes() == b.W.tobytes() and a.H.tobytes() == b.H.tobytes()


@pytest.mark.parametrize("make", [np.random.RandomState, np.random.default_rng])
def test_random_generators_are_recorded(noisy, make):
    res = nmf(noisy.X, 3, init="random", solver="cd", backend="sklearn", tol=1e-3,
              random_state=make(3))
    seed = res.params["random_state"]
    again = nmf(noisy.X, 3, init="random", solver="cd", backend="sklearn", tol=1e-3,
                random_state=seed)
    assert again.W.tobytes() == res.W.tobytes()


def test_rerun_from_params(nmf_key, noisy):
    # every setting needed to repeat a run is in params
    a = run(nmf_key, noisy.X, 3, init="nndsvdar", random_state=3, tol=1e-3)
    p = dict(a.params)
    for name in ("mode", "locked"):
        p.pop(name)
    b = nmf(noisy.X, **p)
    assert b.W.tobytes() == a.W.tobytes()


# ----------------------------------------------------------------------------- negative data


def test_negative_data_needs_opt_in(noisy):
    X = noisy.X - 0.02
    with pytest.raises(ValueError, match="negative value") as err:
        nmf(X, 3)
    assert "negative='clip'" in str(err.value) and "negative='offset'" in str(err.value)


@pytest.mark.parametrize("policy", ["clip", "offset"])
def test_negative_policy_recorded_and_applied(noisy, policy):
    X = noisy.X - 0.02
    n_neg = int((X < 0).sum())
    res = nmf(X, 3, negative=policy, solver="cd", backend="sklearn", random_state=0, tol=1e-3)
    info = res.summary["negative"]
    assert res.params["negative"] == policy
    assert info["policy"] == policy and info["n_negative"] == n_neg
    assert info["min_value"] == pytest.approx(X.min())
    treated = np.maximum(X, 0) if policy == "clip" else X - X.min()
    assert info["offset"] == (0.0 if policy == "clip" else pytest.approx(-X.min()))
    ref = nmf(treated, 3, solver="cd", backend="sklearn", random_state=0, tol=1e-3)
    np.testing.assert_allclose(res.W, ref.W, rtol=1e-12, atol=1e-14)
    assert X.min() < 0  # the caller's data is untouched


# ----------------------------------------------------------------------------- GPU


def test_a_named_gpu_runs_the_torch_solvers_or_is_refused(noisy, monkeypatch):
    # device="cuda" used to run numpy HALS on the CPU without a word when the backend
    # was "auto"; now it picks the torch solvers, and a CPU backend is refused
    from napari_unmix.core import nnls
    from napari_unmix.core.device import backend_for_device

    assert backend_for_device("auto", "cuda") == "torch"
    assert backend_for_device("auto", "cuda:1") == "torch"
    assert backend_for_device("numpy", "cpu") == "numpy"
    assert backend_for_device("auto", "auto") == "auto"
    assert backend_for_device("sklearn", None) == "sklearn"
    for call in (lambda: nmf(noisy.X, 3, backend="numpy", device="cuda"),
                 lambda: nnls(noisy.X, noisy.H, backend="numpy", device="cuda")):
        with pytest.raises(ValueError, match="used by the torch backend only, and "
                                             "backend='numpy' runs on the CPU"):
            call()
    res = run_quiet(("auto", "auto"), noisy.X, 3, random_state=0, device="cpu", max_iter=20)
    assert res.backend == "numpy"   # a CPU device leaves auto as it is
    # where torch sees no GPU, the request for one is refused by name (not ignored)
    pytest.importorskip("torch")
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    for call in (lambda: nmf(noisy.X, 3, device="cuda"),
                 lambda: nnls(noisy.X, noisy.H, device="cuda")):
        with pytest.raises(ValueError, match="torch sees no CUDA GPU"):
            call()


@pytest.mark.cuda
def test_torch_mu_cuda_matches_cpu(noisy):
    # float64 on both; different summation order on the GPU: differences of
    # ~eps64 per step growing over 100 iterations stay far below 1e-9
    cpu = run_quiet(("mu", "torch"), noisy.X, 3, random_state=0, max_iter=100, tol=0.0,
                    device="cpu")
    gpu = run_quiet(("mu", "torch"), noisy.X, 3, random_state=0, max_iter=100, tol=0.0,
                    device="cuda")
    assert gpu.device.startswith("cuda") and gpu.W.dtype == np.float64
    np.testing.assert_allclose(gpu.W, cpu.W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.H, cpu.H, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("s", [-32, -31, -20, 20, 31, 32])
def test_the_default_nmf_of_scaled_data_is_the_same_run_bit_for_bit(s):
    # unscaled HALS at the edges of its range (|s| <= 32 in float32): the same
    # iterations, stop and maps as the data at scale 1; at 2**-31 an absolute eps in
    # the relative-improvement rule once stopped the run at its second sample
    rng = np.random.default_rng(0)
    X = (rng.random((3000, 3)) @ rng.random((3, 40))
         + 0.01 * rng.random((3000, 40))).astype(np.float32)
    X /= np.float32(2.0 ** np.floor(np.log2(X.max())))   # maximum in [1, 2): scale 2**s
    ref = run_quiet(("auto", "auto"), X, 3, random_state=0)
    c = np.float32(2.0**s)
    res = run_quiet(("auto", "auto"), X * c, 3, random_state=0)
    assert res.summary.data_scale == 1.0   # fitted as it is
    assert (res.n_iter, res.summary.stopped_by) == (ref.n_iter, ref.summary.stopped_by)
    np.testing.assert_array_equal(res.W, ref.W)
    np.testing.assert_array_equal(res.H, ref.H * c)
    assert res.summary.relative_error == pytest.approx(ref.summary.relative_error, rel=1e-12)


@pytest.mark.parametrize("factor", [16.0, 1.0 / 16], ids=["x16", "x1/16"])
def test_default_nmf_makes_no_copy_of_the_data(factor):
    # HALS fits X as it is (exact under powers of two).  Measured peaks above X:
    # 0.85 X with no copy (the init's float64 block of 16384 rows and its n x (k + 8)
    # projection), 1.85 X with the scaled copy of X it replaces
    import tracemalloc

    rng = np.random.default_rng(0)
    X = (rng.random((131_072, 3)) @ rng.random((3, 64)) * factor).astype(np.float32)
    run_quiet(("hals", "numpy"), X[:500], 3, max_iter=5)  # imports outside the count
    tracemalloc.start()
    try:
        res = run_quiet(("hals", "numpy"), X, 3, random_state=0, max_iter=5, n_jobs=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.summary.data_scale == 1.0
    assert peak < 1.35 * X.nbytes, f"peak {peak / X.nbytes:.2f} x X"


def test_cd_with_an_anchor_says_why_it_cannot(noisy):
    # solver="cd" (backend auto) said "no solver matches" and listed cd/sklearn
    with pytest.raises(ValueError, match="cd/sklearn cannot anchor the spectra to their seeds"):
        nmf(noisy.X, 3, H0=noisy.H, anchor=1.0, solver="cd")
