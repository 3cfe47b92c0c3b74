"""PCA of channel-standardised spectra, against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from napari_unmix.core import Cancelled, pca

# float64 reference comparisons: both sides solve the same symmetric eigenproblem
# (covariance here, SVD in scikit-learn) of a 32x32 matrix in float64; their results
# differ by rounding amplified by the eigengap, far below this bound
ATOL64 = 1e-9


@pytest.fixture
def spectra_data(noisy):
    # the noisy rank-3 problem plus channel offsets/scales that standardisation
    # must remove: bright channels must not dominate
    gains = np.linspace(1.0, 50.0, noisy.n_channels)
    return noisy.X * gains + 3.0


def _align_signs(A, B):
    """Flip rows of ``A`` to match the sign of the rows of ``B`` (PCA axes are ±)."""
    s = np.sign(np.sum(A * B, axis=1))
    return A * s[:, None], s


def _sklearn_reference(X, k):
    Z = StandardScaler().fit_transform(X)
    ref = PCA(n_components=k, svd_solver="full").fit(Z)
    full = PCA(svd_solver="full").fit(Z)
    return Z, ref, full


@pytest.mark.parametrize("k", [1, 3, 6])
def test_matches_sklearn_on_standardised_data(spectra_data, k):
    X = spectra_data
    Z, ref, full = _sklearn_reference(X, k)
    res = pca(X, k)
    H, signs = _align_signs(res.H, ref.components_)
    np.testing.assert_allclose(H, ref.components_, atol=ATOL64)
    np.testing.assert_allclose(res.W * signs, ref.transform(Z), atol=ATOL64 * np.abs(Z).max())
    np.testing.assert_allclose(res.explained_variance_ratio, full.explained_variance_ratio_,
                               atol=1e-12)
    np.testing.assert_allclose(res.summary["explained_variance_ratio"],
                               ref.explained_variance_ratio_, atol=1e-12)
    assert res.mode == "pca" and res.W.shape == (X.shape[0], k) and res.H.shape == (k, 32)


def test_unstandardised_matches_plain_pca(spectra_data):
    X = spectra_data
    ref = PCA(n_components=3, svd_solver="full").fit(X)
    res = pca(X, 3, standardize=False)
    H, signs = _align_signs(res.H, ref.components_)
    np.testing.assert_allclose(H, ref.components_, atol=ATOL64)
    np.testing.assert_allclose(res.W * signs, ref.transform(X), atol=ATOL64 * np.abs(X).max())


def test_standardisation_uses_population_std(spectra_data):
    res = pca(spectra_data, 2)
    np.testing.assert_allclose(res.arrays["mean"], spectra_data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(res.arrays["scale"], spectra_data.std(axis=0, ddof=0),
                               rtol=1e-12)


def test_loadings_orthonormal_and_sign_convention(spectra_data):
    res = pca(spectra_data, 5)
    np.testing.assert_allclose(res.H @ res.H.T, np.eye(5), atol=1e-12)
    # documented sign: the largest absolute entry of every loading is positive
    idx = np.abs(res.H).argmax(axis=1)
    assert (res.H[np.arange(5), idx] > 0).all()


def test_scree_covers_all_channels_and_sums_to_one(spectra_data):
    res = pca(spectra_data, 2)
    evr = res.explained_variance_ratio
    assert evr.shape == (spectra_data.shape[1],)
    assert abs(evr.sum() - 1.0) < 1e-12
    assert (evr >= 0).all() and (np.diff(evr) <= 1e-15).all()
    assert res.summary["cumulative_explained_variance"] == pytest.approx(evr[:2].sum())


def test_rank3_data_has_three_dominant_components(noisy):
    # noise is 1 % of the mean: the fourth component explains only noise
    evr = pca(noisy.X, 3).explained_variance_ratio
    assert evr[:3].sum() > 0.99
    assert evr[3] < 1e-3


def test_constant_channel_gives_no_nan(spectra_data):
    X = spectra_data.copy()
    X[:, 4] = 7.25
    X[:, 9] = 0.0
    with pytest.warns(UserWarning, match=r"2 of \d+ channel\(s\) are constant "
                      r"\(channel\(s\) 4, 9\)"):
        res = pca(X, 3)
    assert np.isfinite(res.W).all() and np.isfinite(res.H).all()
    assert np.isfinite(res.explained_variance_ratio).all()
    assert res.summary["constant_channels"] == [4, 9]
    # a constant channel carries no variance: zero loading, scale 1
    np.testing.assert_allclose(res.H[:, [4, 9]], 0.0, atol=1e-12)
    np.testing.assert_array_equal(res.arrays["scale"][[4, 9]], 1.0)
    # the other channels give the same PCA as without the constant ones
    keep = np.setdiff1d(np.arange(X.shape[1]), [4, 9])
    sub = pca(X[:, keep], 3)
    H, _ = _align_signs(res.H[:, keep], sub.H)
    np.testing.assert_allclose(H, sub.H, atol=ATOL64)


def _reconstruction(res, X):
    # X_hat = (T P) * scale + mean, written out independently of pca()
    return (res.W @ res.H) * res.arrays["scale"] + res.arrays["mean"]


@pytest.mark.parametrize("standardize", [True, False])
def test_reconstruction_err_definition(spectra_data, standardize):
    X = spectra_data
    res = pca(X, 3, standardize=standardize)
    err = np.linalg.norm(X - _reconstruction(res, X))
    assert res.reconstruction_err == pytest.approx(err, rel=1e-10)
    assert res.summary["relative_error"] == pytest.approx(err / np.linalg.norm(X), rel=1e-10)


def test_full_rank_reconstructs_exactly(spectra_data):
    X = spectra_data
    res = pca(X, X.shape[1])
    # all components: the reconstruction is exact up to float64 rounding on the
    # data's scale (eigendecomposition error ~ n_channels * eps)
    assert res.reconstruction_err <= 1e-10 * np.linalg.norm(X)


def test_error_decreases_with_more_components(spectra_data):
    errs = [pca(spectra_data, k).reconstruction_err for k in (1, 2, 3, 4)]
    assert all(a > b for a, b in zip(errs, errs[1:], strict=False))


def test_chunking_does_not_change_the_result(spectra_data):
    a = pca(spectra_data, 3)
    b = pca(spectra_data, 3, chunk_size=7)
    # float64 sums in a different order: agreement to rounding
    np.testing.assert_allclose(a.H, b.H, atol=1e-12)
    np.testing.assert_allclose(a.W, b.W, atol=1e-10)


def test_float32_in_float32_out(spectra_data):
    X32 = spectra_data.astype(np.float32)
    res32 = pca(X32, 3)
    res64 = pca(X32.astype(np.float64), 3)
    assert res32.W.dtype == np.float32 and res32.H.dtype == np.float32
    # statistics are accumulated in float64; only the stored scores/loadings are
    # rounded to float32 (relative error ~ eps32)
    tol = 50 * np.finfo(np.float32).eps
    np.testing.assert_allclose(res32.H, res64.H, atol=tol)
    np.testing.assert_allclose(res32.W, res64.W, atol=tol * np.abs(res64.W).max())


@pytest.mark.parametrize("k", [0, 33, 2.5])
def test_n_components_bounds(spectra_data, k):
    with pytest.raises((ValueError, TypeError), match="n_components"):
        pca(spectra_data, k)


def test_n_components_limited_by_pixels():
    X = np.random.default_rng(0).random((4, 10))
    assert pca(X, 4).n_components == 4
    with pytest.raises(ValueError, match="at most 4"):
        pca(X, 5)


def test_callback_and_cancel(spectra_data):
    infos = []
    pca(spectra_data, 2, chunk_size=10, callback=infos.append)
    assert infos and infos[-1].fraction == 1.0 and all(i.stage == "pca" for i in infos)
    assert infos[-1].error is not None
    with pytest.raises(Cancelled):
        pca(spectra_data, 2, chunk_size=10, callback=lambda info: False)


def test_input_not_modified(spectra_data):
    before = spectra_data.copy()
    spectra_data.setflags(write=False)
    pca(spectra_data, 3)
    np.testing.assert_array_equal(spectra_data, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("factor", [1e-30, 1e-16, 1e16, 1e30])
def test_pca_does_not_care_about_the_scale(spectra_data, dtype, factor):
    """Loadings, standardised scores and the relative error of data x 1e-30 .. x 1e30
    equal those of the data itself; no channel counts as constant because it is small."""
    X = spectra_data.astype(dtype)
    ref = pca(X, 3)
    res = pca((X.astype(np.float64) * factor).astype(dtype), 3)
    tol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(np.abs(res.H), np.abs(ref.H), atol=tol)
    np.testing.assert_allclose(np.abs(res.W), np.abs(ref.W), rtol=tol,
                               atol=tol * np.abs(ref.W).max())
    assert res.summary.constant_channels == [] == ref.summary.constant_channels
    assert res.summary.relative_error == pytest.approx(ref.summary.relative_error, rel=tol)
    assert np.isfinite(res.reconstruction_err)
    unstd = pca((X.astype(np.float64) * factor).astype(dtype), 3, standardize=False)
    ref_unstd = pca(X, 3, standardize=False)
    np.testing.assert_allclose(np.abs(unstd.W) / factor, np.abs(ref_unstd.W), rtol=tol,
                               atol=tol * np.abs(ref_unstd.W).max())


@pytest.mark.parametrize("standardize", [True, False])
def test_pca_makes_no_copy_of_the_data(standardize):
    # the scaled data, the deviations and the norms are formed block by block: the
    # peak above X is the scores and a few 2 MB blocks (measured 0.27 X here; it was
    # 3.0 X with a copy for |X|, one for X / scale and numpy's float64 std temporary)
    import tracemalloc

    rng = np.random.default_rng(0)
    X = (rng.random((131_072, 3)) @ rng.random((3, 64)) * 16
         + 0.1 * rng.random((131_072, 64))).astype(np.float32)
    pca(X[:500], 3)  # imports outside the count
    tracemalloc.start()
    try:
        res = pca(X, 3, standardize=standardize, n_jobs=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.summary.relative_error < 0.05
    assert peak < 0.5 * X.nbytes, f"peak {peak / X.nbytes:.2f} x X"


@pytest.mark.parametrize("chunk_size", [0, -1, 2.5])
def test_a_chunk_size_that_is_not_a_positive_integer_is_refused(spectra_data, chunk_size):
    # 0 and -1 were accepted and recorded in the params, 2.5 truncated
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1 or None"):
        pca(spectra_data, 2, chunk_size=chunk_size)
