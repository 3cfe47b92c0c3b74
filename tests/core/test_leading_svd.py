"""The leading singular triplets of NNDSVD starts against LAPACK's full SVD."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.core.init import GRAM_SVD_MAX_CHANNELS, initialize_factors, leading_svd


def _wide_range(n=20000, m=80, k=6, seed=0):
    """Float32 data whose components span five decades, plus noise below them all."""
    rng = np.random.default_rng(seed)
    scales = 10.0 ** -np.arange(k)
    X = rng.random((n, k)) @ (rng.random((k, m)) * scales[:, None])
    return (X + 1e-7 * rng.standard_normal((n, m))).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_triplets_are_lapacks_down_to_small_singular_values(dtype):
    X = _wide_range().astype(dtype)
    U0, S0, Vt0 = np.linalg.svd(X.astype(np.float64), full_matrices=False)
    U, S, Vt = leading_svd(X, 6)
    assert U.shape == (X.shape[0], 6) and Vt.shape == (6, X.shape[1])
    # the smallest is 1e-5 of the largest: float64 Gram, not float32, keeps it
    np.testing.assert_allclose(S, S0[:6], rtol=1e-8)
    np.testing.assert_allclose(np.abs(np.sum(Vt * Vt0[:6], axis=1)), 1.0, atol=1e-8)
    np.testing.assert_allclose(np.abs(np.sum(U * U0[:, :6], axis=0)), 1.0, atol=1e-8)
    np.testing.assert_allclose(U.T @ U, np.eye(6), atol=1e-10)


def test_rank_deficient_data_give_zero_singular_values_and_finite_vectors():
    rng = np.random.default_rng(1)
    X = (rng.random((500, 2)) @ rng.random((2, 30))).astype(np.float32)
    U, S, Vt = leading_svd(X, 4)
    assert np.isfinite(U).all() and np.isfinite(Vt).all()
    assert S[2] < 1e-5 * S[0] and S[3] < 1e-5 * S[0]
    W, H = initialize_factors(X, 4, init="nndsvda")
    assert np.isfinite(W).all() and np.isfinite(H).all() and (W >= 0).all()


def test_wide_or_many_channel_matrices_use_the_randomized_svd():
    rng = np.random.default_rng(2)
    for shape in [(40, 60), (600, GRAM_SVD_MAX_CHANNELS + 1)]:
        X = (rng.random((shape[0], 3)) @ rng.random((3, shape[1]))
             + 1e-3 * rng.random(shape)).astype(np.float32)
        _, S, _ = leading_svd(X, 3, random_state=0)
        np.testing.assert_allclose(S, np.linalg.svd(X.astype(np.float64),
                                                    compute_uv=False)[:3], rtol=1e-3)


@pytest.mark.parametrize("init", ["nndsvda", "nndsvd", "nndsvdar", "random"])
@pytest.mark.parametrize("shape", [(3000, 40), (60, 80)], ids=["gram", "randomized"])
@pytest.mark.parametrize("s", [-19, 5, 12])
def test_data_scale_gives_the_start_of_the_scaled_data_bit_for_bit(init, shape, s):
    # what lets core.nmf start HALS on the data as it is, with no copy X / 2**s
    rng = np.random.default_rng(3)
    c = 2.0**s
    X = ((rng.random((shape[0], 3)) @ rng.random((3, shape[1])) + 0.01) * c).astype(np.float32)
    W_ref, H_ref = initialize_factors(X / np.float32(c), 3, init=init, random_state=7)
    W, H = initialize_factors(X, 3, init=init, random_state=7, data_scale=c)
    assert W.dtype == H.dtype == np.float32
    np.testing.assert_array_equal(W, W_ref)
    np.testing.assert_array_equal(H, H_ref * np.float32(c))


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_the_blocks_on_a_pool_give_the_same_start_bit_for_bit(n_jobs):
    # core.nmf shares the SVD's blocks of rows over its workers: the same start as
    # the blocks one after another, for every number of workers
    from napari_unmix.core.parallel import Workers

    X = _wide_range(n=40_000, m=32)   # three blocks of rows
    ref = initialize_factors(X, 4, init="nndsvda", random_state=0)
    with Workers(n_jobs) as pool:
        got = initialize_factors(X, 4, init="nndsvda", random_state=0, workers=pool)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_noise_level_does_not_depend_on_the_workers():
    from napari_unmix.core.solvers.stopping import noise_level

    X = _wide_range(n=40_000, m=32)
    levels = {n_jobs: noise_level(X, 3, n_jobs=n_jobs) for n_jobs in (1, 2)}
    assert levels[1] == levels[2] > 0
    # the rank-3 residual of the sample, from LAPACK's SVD of the same rows
    sample = X[::3].astype(np.float64)
    s = np.linalg.svd(sample, compute_uv=False)
    expected = np.sqrt(np.sum(s[3:] ** 2) * X.shape[0] / sample.shape[0])
    assert levels[1] == pytest.approx(expected, rel=1e-6)
