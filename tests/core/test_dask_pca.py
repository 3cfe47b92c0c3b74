"""PCA of dask input (core.chunked.pca): core.pca's result to rounding, in one pass."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import napari_unmix.core as uc  # noqa: E402
from napari_unmix.core.chunked.blocks import pixel_matrix  # noqa: E402


def _stack(seed=1, scale=1.0):
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 1.0, size=(40 * 48, 3)) @ rng.random((3, 16))
    X = base + 0.05 * rng.standard_normal(base.shape) + 3.0
    return (scale * X).T.reshape(16, 40, 48).astype(np.float32)


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("scale", [1.0, 1e-20])
def test_pca_matches_in_memory(standardize, scale):
    stack = _stack(scale=scale)
    X, _ = uc.stack_to_matrix(stack, 0)
    ref = uc.pca(X, 3, standardize=standardize)
    Xd, _ = pixel_matrix(da.from_array(stack, chunks=(16, 7, 48)), 0)
    res = uc.pca(Xd, 3, standardize=standardize)
    assert res.is_lazy
    np.testing.assert_allclose(res.H, ref.H, rtol=1e-6, atol=1e-6)
    W = np.asarray(res.W)
    np.testing.assert_allclose(W, ref.W, rtol=1e-5, atol=1e-6 * np.abs(ref.W).max())
    np.testing.assert_allclose(res.explained_variance_ratio, ref.explained_variance_ratio,
                               rtol=1e-6, atol=1e-12)
    for name in ("mean", "scale", "explained_variance"):
        np.testing.assert_allclose(res.arrays[name], ref.arrays[name], rtol=1e-6)
    assert res.reconstruction_err == pytest.approx(ref.reconstruction_err, rel=1e-6)
    assert res.summary.relative_error == pytest.approx(ref.summary.relative_error, rel=1e-6)


def test_constant_channel_and_nan():
    stack = _stack()
    stack[4] = 2.5
    X, _ = uc.stack_to_matrix(stack, 0)
    with pytest.warns(UserWarning, match="constant"):
        ref = uc.pca(X, 2)
    Xd, _ = pixel_matrix(da.from_array(stack, chunks=(16, 10, 48)), 0)
    with pytest.warns(UserWarning, match="constant"):
        res = uc.pca(Xd, 2)
    assert res.summary.constant_channels == ref.summary.constant_channels == [4]
    stack[0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="1 NaN and 0 infinite"):
        uc.pca(pixel_matrix(da.from_array(stack, chunks=(16, 10, 48)), 0)[0], 2)


def test_progress_and_cancel():
    Xd, _ = pixel_matrix(da.from_array(_stack(), chunks=(16, 10, 48)), 0)
    seen = []
    uc.pca(Xd, 2, callback=lambda info: seen.append(info.iteration))
    assert seen == [1, 2, 3, 4, 5]
    with pytest.raises(uc.Cancelled):
        uc.pca(Xd, 2, callback=lambda info: info.iteration < 2)
