"""Shared solver pieces (``core/solvers/_common.py``): the result types, the sampled
stopping rule on hand-made error sequences, chunking, ``residual_norm`` against
``numpy.linalg.norm``, and the one-BLAS-thread guard."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.core.solvers._common import (
    CHUNK_BYTES,
    NMFFit,
    NNLSFit,
    SampledErrorStopping,
    chunk_slices,
    one_blas_thread,
    residual_norm,
    rows_per_chunk,
)

EPS = float(np.finfo(np.float64).eps)

# ------------------------------------------------------------------- result types


def test_result_types_defaults_are_not_shared():
    a = NMFFit(W=np.zeros((2, 1)), H=np.zeros((1, 3)), n_iter=0, converged=True)
    b = NMFFit(W=np.zeros((2, 1)), H=np.zeros((1, 3)), n_iter=0, converged=True)
    a.history.append((0, 1.0))
    assert b.history == []
    fit = NNLSFit(W=np.zeros((2, 1)), n_iter=0, converged=True)
    assert fit.capped is None


# ----------------------------------------------------------- SampledErrorStopping


def run_rule(errors, tol, every=1, eps=EPS):
    """Feed ``errors`` (one per sample) to the rule; the sample index it stops at."""
    rule = SampledErrorStopping(tol, every, eps)
    for i, e in enumerate(errors):
        if rule.update(i * every, e):
            return i, rule
    return None, rule


SEQUENCE = [16.0, 8.0, 6.0, 5.25, 5.0]     # gains over the previous sample:
                                           # 0.5, 0.25, 0.125 (exact), 0.0476...


@pytest.mark.parametrize(("errors", "tol", "stop"), [
    (SEQUENCE, 0.2, 3),                               # the first gain <= tol stops
    (SEQUENCE, 0.1, 4),
    (SEQUENCE, 0.01, None),
    (SEQUENCE, 0.125, 3),                             # equal to tol: stops (<=)
    (SEQUENCE, np.nextafter(0.125, 0.0), 4),          # just below: goes on
    ([5.0, 5.0, 4.0], 0.0, 1),                        # no progress stops at tol = 0
    ([5.0, 4.0, 4.5, 1.0], 0.0, 2),                   # an increase stops at tol >= 0
    ([5.0, 4.0, 4.5, 1.0], -1.0, None),               # ... not at a tol below its gain
    ([3.0], 0.5, None),                               # the first sample never stops
])
def test_rule_on_hand_made_sequences(errors, tol, stop):
    at, rule = run_rule(errors, tol)
    assert at == stop
    n = len(errors) if stop is None else stop + 1
    assert rule.history == [(i, float(e)) for i, e in enumerate(errors[:n])]


def test_rule_compares_with_the_previous_sample():
    # 10 -> 5 -> 4.9: 2 % over the previous sample, 51 % over the first one
    assert run_rule([10.0, 5.0, 4.9], 0.05, every=10)[0] == 2
    # 10 -> 5 -> 4.6: 8 % over the previous sample; scikit-learn's rule (the gain
    # divided by the *initial* error, 4 %) would stop here
    at, rule = run_rule([10.0, 5.0, 4.6], 0.05, every=10)
    assert at is None
    assert [i for i, _ in rule.history] == [0, 10, 20]


def test_rule_guards_a_zero_error_with_eps():
    # previous error 0: (0 - 0) / max(0, eps) = 0 <= tol, no division by zero
    assert run_rule([0.0, 0.0], 1e-8, eps=1e-7)[0] == 1
    # previous error below eps: the gain is measured against eps instead
    assert run_rule([1e-9, 0.0], 0.5, eps=1e-7)[0] == 1
    assert run_rule([1e-9, 0.0], 0.5, eps=1e-10)[0] is None


def test_is_sample_and_bad_interval():
    rule = SampledErrorStopping(1e-4, 5, EPS)
    assert [i for i in range(21) if rule.is_sample(i)] == [0, 5, 10, 15, 20]
    for bad in (0, -3):
        with pytest.raises(ValueError, match="track_error_every must be >= 1"):
            SampledErrorStopping(1e-4, bad, EPS)


def test_record_reports_every_sample():
    calls = []
    rule = SampledErrorStopping(0.1, 2, EPS, report=lambda *a: calls.append(a), max_iter=9)
    results = [rule.record(i, e) for i, e in [(0, 10.0), (2, 5.0), (4, 4.9)]]
    assert results == [False, False, True]
    assert calls == [(0, 9, 10.0), (2, 9, 5.0), (4, 9, 4.9)]
    assert rule.history == [(0, 10.0), (2, 5.0), (4, 4.9)]


def test_record_without_report_is_update():
    rule = SampledErrorStopping(0.1, 1, EPS)
    assert rule.record(0, np.float32(2.0)) is False
    assert rule.record(1, 1.95) is True
    assert all(type(i) is int and type(e) is float for i, e in rule.history)


# ------------------------------------------------------------------------ chunking


@pytest.mark.parametrize(("n_cols", "itemsize", "budget", "rows"), [
    (10, 8, 800, 10),
    (10, 8, 799, 9),
    (10, 4, 800, 20),
    (10_000, 8, 800, 1),          # one row over the budget: still one row
    (0, 8, 800, 800),             # no columns: the budget in bytes, never a division by 0
])
def test_rows_per_chunk(n_cols, itemsize, budget, rows):
    assert rows_per_chunk(n_cols, itemsize, budget=budget) == rows


def test_rows_per_chunk_default_budget():
    assert rows_per_chunk(32, 8) == CHUNK_BYTES // 256


@pytest.mark.parametrize(("n", "size"), [(10, 3), (10, 10), (10, 25), (1, 1), (7, 1)])
def test_chunk_slices_cover_range_in_order(n, size):
    slices = chunk_slices(n, size)
    covered = np.concatenate([np.arange(n)[sl] for sl in slices])
    np.testing.assert_array_equal(covered, np.arange(n))
    assert all(sl.stop - sl.start == size for sl in slices[:-1])
    assert 0 < slices[-1].stop - slices[-1].start <= size


def test_chunk_slices_edge_cases():
    assert chunk_slices(0, 5) == []
    assert chunk_slices(3, 0) == [slice(0, 1), slice(1, 2), slice(2, 3)]   # size >= 1
    assert chunk_slices(5, 2.7) == [slice(0, 2), slice(2, 4), slice(4, 5)]


# ------------------------------------------------------------------- residual_norm


def problem(n=257, m=19, k=4, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.random((n, k)).astype(dtype)
    H = rng.random((k, m)).astype(dtype)
    X = (W @ H + 0.1 * rng.standard_normal((n, m))).astype(dtype)
    return X, W, H


@pytest.mark.parametrize("chunk_rows", [None, 1, 7, 256, 257, 10_000])
def test_residual_norm_matches_numpy(chunk_rows):
    X, W, H = problem()
    expected = np.linalg.norm(X - W @ H)
    copies = [a.copy() for a in (X, W, H)]
    assert residual_norm(X, W, H, chunk_rows=chunk_rows) == pytest.approx(expected, rel=1e-13)
    for a, b in zip((X, W, H), copies, strict=True):
        np.testing.assert_array_equal(a, b)


def test_residual_norm_default_chunks_on_a_large_matrix():
    # 1100 float64 channels: the 8 MB budget holds 953 rows, so 2000 rows are 3 chunks
    X, W, H = problem(n=2000, m=1100, k=3, seed=1)
    assert rows_per_chunk(1100, 8, budget=8 * 2**20) < 1000
    assert residual_norm(X, W, H) == pytest.approx(np.linalg.norm(X - W @ H), rel=1e-12)


def test_residual_norm_float32_sums_in_float64():
    X, W, H = problem(n=4000, m=64, dtype=np.float32, seed=2)
    R = X.astype(np.float64) - (W @ H).astype(np.float64)   # the float32 product's residual
    value = residual_norm(X, W, H, chunk_rows=500)
    assert isinstance(value, float)
    assert value == pytest.approx(np.linalg.norm(R), rel=1e-6)


def test_residual_norm_of_an_exact_fit_and_of_no_pixels():
    X, W, H = problem()
    assert residual_norm(W @ H, W, H) == 0.0
    assert residual_norm(X[:0], W[:0], H) == 0.0


@pytest.mark.requires_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_residual_norm_on_torch_tensors(dtype):
    import torch

    X, W, H = problem(dtype=dtype)
    Xt, Wt, Ht = (torch.from_numpy(a.copy()) for a in (X, W, H))
    value = residual_norm(Xt, Wt, Ht, xp="torch", chunk_rows=50)
    expected = np.linalg.norm(X.astype(np.float64) - (W @ H).astype(np.float64))
    assert value == pytest.approx(expected, rel=1e-12 if dtype == np.float64 else 1e-6)
    assert residual_norm(Xt, Wt, Ht, xp="torch") == pytest.approx(value, rel=1e-6)
    np.testing.assert_array_equal(Xt.numpy(), X)              # X is not the scratch space


# ------------------------------------------------------------------- BLAS threads


def test_one_blas_thread_limits_blas_inside_only():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info()
                if p["user_api"] == "blas"]

    if not blas_threads():
        pytest.skip("no BLAS library loaded that threadpoolctl can see")
    before = blas_threads()
    with one_blas_thread():
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before
