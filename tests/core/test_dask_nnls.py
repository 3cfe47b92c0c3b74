"""Fixed-H NNLS of dask input (core.chunked.nnls): the in-memory tiles, bit for bit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

da = pytest.importorskip("dask.array")

import napari_unmix.core as uc  # noqa: E402
from napari_unmix.core.chunked import is_dask_array, store_maps  # noqa: E402
from napari_unmix.core.chunked.blocks import pixel_matrix  # noqa: E402
from napari_unmix.core.chunked.nnls import nnls_blocks  # noqa: E402


def scene(seed=0, shape=(40, 48), m=16, k=4, noise=0.01):
    """A (C, Y, X) stack of k smooth non-negative spectra and its spectra."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, m)
    H = np.stack([np.exp(-0.5 * ((x - c) / 0.12) ** 2) for c in np.linspace(0.1, 0.9, k)])
    W = rng.gamma(1.0, 1.0, size=(shape[0] * shape[1], k))
    X = W @ H + noise * rng.standard_normal((W.shape[0], m))
    stack = np.abs(X).T.reshape(m, *shape).astype(np.float32)
    return stack, H.astype(np.float32)


@pytest.fixture
def data():
    stack, H = scene()
    lazy = da.from_array(stack, chunks=(8, 16, 24))   # the spectral axis split too
    return stack, lazy, H


def test_pixel_matrix_is_stack_to_matrix(data):
    stack, lazy, _ = data
    X, shape = uc.stack_to_matrix(stack, 0)
    Xd, shape_d = pixel_matrix(lazy, 0)
    assert shape_d == shape and is_dask_array(Xd)
    assert len(Xd.chunks[1]) == 1 and Xd.numblocks[0] > 1
    assert np.array_equal(Xd.compute(), X)
    Xu, _ = pixel_matrix(da.from_array(stack.astype(np.uint16), chunks=(16, 20, 48)), 0)
    assert Xu.dtype == np.float32


def test_tiles_bit_identical_and_summary(data):
    stack, lazy, H = data
    X, _ = uc.stack_to_matrix(stack, 0)
    ref = uc.nnls(X, H)
    Xd, _ = pixel_matrix(lazy, 0)
    res = uc.nnls(Xd, H)
    assert res.is_lazy and is_dask_array(res.W)
    assert np.array_equal(np.asarray(res.W), ref.W)
    # the squared error is summed over other groups of pixels (tiles, not the in-memory
    # blocks) from ||x||^2 - 2 w.b + w G w: equal to ~eps ||X||^2 / ||X - WH||^2
    assert res.reconstruction_err == pytest.approx(ref.reconstruction_err, rel=1e-9)
    assert res.summary.relative_error == pytest.approx(ref.summary.relative_error, rel=1e-9)
    assert res.summary.n_chunks == Xd.numblocks[0]
    assert res.summary.n_error_pixels == X.shape[0]
    assert res.summary.hit_max_iter is False and res.summary.n_capped_pixels == 0
    done = res.compute()
    assert not done.is_lazy and np.array_equal(done.W, ref.W)


def test_poisson_loss_matches(data):
    stack, lazy, H = data
    counts = np.round(stack * 50).astype(np.float32)
    X, _ = uc.stack_to_matrix(counts, 0)
    Xd, _ = pixel_matrix(da.from_array(counts, chunks=(16, 10, 48)), 0)
    with pytest.warns(ConvergenceWarning):   # a pixel at the cap: reported alike
        ref = uc.nnls(X, H, loss="poisson", max_iter=200)
    with pytest.warns(ConvergenceWarning):
        res = uc.nnls(Xd, H, loss="poisson", max_iter=200)
    assert res.summary.capped_pixels == ref.summary.capped_pixels
    assert res.summary.n_capped_pixels == ref.summary.n_capped_pixels > 0
    assert np.array_equal(np.asarray(res.W), ref.W)
    assert np.array_equal(np.asarray(res.arrays["deviance"]), ref.arrays["deviance"])
    assert res.summary.deviance == pytest.approx(ref.summary.deviance, rel=1e-9)


def test_negative_policies_per_block(data):
    stack, _, H = data
    neg = stack - np.float32(0.05)
    X, _ = uc.stack_to_matrix(neg, 0)
    Xd, _ = pixel_matrix(da.from_array(neg, chunks=(16, 10, 48)), 0)
    with pytest.raises(ValueError) as ref_err:
        uc.nnls(X, H)
    with pytest.raises(ValueError) as err:
        uc.nnls(Xd, H)
    assert str(err.value) == str(ref_err.value)
    for policy in ("clip", "offset"):
        ref = uc.nnls(X, H, negative=policy)
        res = uc.nnls(Xd, H, negative=policy)
        assert np.array_equal(np.asarray(res.W), ref.W), policy
        assert res.summary.negative.to_dict() == ref.summary.negative.to_dict()


def test_nan_refused_with_the_in_memory_message(data):
    stack, _, H = data
    bad = stack.copy()
    bad[3, 30, 40] = np.nan
    bad[5, 1, 2] = np.inf
    X, _ = uc.stack_to_matrix(bad, 0)
    Xd, _ = pixel_matrix(da.from_array(bad, chunks=(16, 10, 48)), 0)
    with pytest.raises(ValueError) as ref_err:
        uc.nnls(X, H)
    with pytest.raises(ValueError) as err:
        uc.nnls(Xd, H)
    assert str(err.value) == str(ref_err.value)


def test_progress_per_block_and_cancel(data):
    _, lazy, H = data
    Xd, _ = pixel_matrix(lazy, 0)
    seen = []
    uc.nnls(Xd, H, callback=lambda info: seen.append((info.iteration, info.max_iter)))
    nb = Xd.numblocks[0]
    assert [s[0] for s in seen] == list(range(1, nb + 1)) and {s[1] for s in seen} == {nb}
    with pytest.raises(uc.Cancelled):
        uc.nnls(Xd, H, callback=lambda info: info.iteration < 2)


def test_store_maps(data, tmp_path):
    stack, lazy, H = data
    X, shape = uc.stack_to_matrix(stack, 0)
    ref = uc.nnls(X, H).maps(shape)
    res = uc.nnls(pixel_matrix(lazy, 0)[0], H)
    maps = res.maps(shape)
    assert is_dask_array(maps) and np.array_equal(maps.compute(), ref)
    target = np.zeros(ref.shape, dtype=ref.dtype)
    store_maps(res, target, shape)
    assert np.array_equal(target, ref)
    zarr = pytest.importorskip("zarr")
    z = zarr.create_array(store=str(tmp_path / "maps.zarr"), shape=ref.shape,
                          chunks=(1, 20, 48), dtype=ref.dtype)
    store_maps(res, z, shape)
    assert np.array_equal(z[:], ref)


def test_graph_stays_small(data, tmp_path):
    zarr = pytest.importorskip("zarr")
    stack, _, H = data
    z = zarr.create_array(store=str(tmp_path / "stack.zarr"), shape=stack.shape,
                          chunks=(16, 10, 48), dtype=stack.dtype)
    z[:] = stack
    Xd, _ = pixel_matrix(da.from_zarr(str(tmp_path / "stack.zarr")), 0)
    outputs, _ = nnls_blocks(Xd, H, options={"max_iter": 1000})
    size = len(pickle.dumps(dict(outputs[0].__dask_graph__())))
    assert size < 50_000   # the stack's 4 chunks of 30 kB each are read by path
    cloudpickle = pytest.importorskip("cloudpickle")
    assert len(cloudpickle.dumps(outputs[0].__dask_graph__())) < 50_000
