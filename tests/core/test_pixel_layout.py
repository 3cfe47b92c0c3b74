"""Pixel rows read tile by tile: the layout's conversions against a brute-force
permutation, and the dask matrix against stack_to_matrix."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.core.pixel_layout import PixelLayout

CASES = [((40, 48), ((12, 12, 12, 4), (16, 16, 16))),
         ((5, 6, 7), ((2, 3), (4, 2), (3, 3, 1))),
         ((9, 10), ((9,), (5, 5)))]


def brute_force_rows(shape, chunks):
    """The C-order index of the pixel on every row: each block's pixels, block by block."""
    index = np.arange(int(np.prod(shape))).reshape(shape)
    bounds = [np.cumsum((0, *c)) for c in chunks]
    out = []
    for idx in np.ndindex(*(len(c) for c in chunks)):
        sl = tuple(slice(b[i], b[i + 1]) for b, i in zip(bounds, idx, strict=True))
        out.append(index[sl].reshape(-1))
    return np.concatenate(out)


@pytest.mark.parametrize(("shape", "chunks"), CASES)
def test_conversions_match_the_block_order(shape, chunks):
    layout = PixelLayout(shape, chunks)
    assert not layout.is_c_order
    order = brute_force_rows(shape, chunks)
    image = np.random.default_rng(0).random(shape)
    assert np.array_equal(layout.to_rows(image), image.reshape(-1)[order])
    assert np.array_equal(layout.to_rows(image.reshape(-1)), image.reshape(-1)[order])
    stacked = np.stack([image, 2 * image], axis=-1)     # trailing axes travel along
    assert np.array_equal(layout.to_rows(stacked), stacked.reshape(-1, 2)[order])
    assert np.array_equal(layout.c_indices(np.arange(order.size)), order)
    inverse = np.argsort(order)
    assert np.array_equal(layout.rows_of(np.arange(order.size)), inverse)
    picked = np.array([0, order.size - 1, order.size // 3])
    assert np.array_equal(layout.c_indices(layout.rows_of(picked)), picked)


def test_a_split_first_axis_alone_is_c_order():
    layout = PixelLayout((40, 48), ((10, 10, 20), (48,)))
    assert layout.is_c_order
    image = np.arange(40 * 48).reshape(40, 48)
    assert np.array_equal(layout.to_rows(image), image.reshape(-1))
    assert np.array_equal(layout.rows_of([5, 7]), [5, 7])


def test_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match="do not tile"):
        PixelLayout((40, 48), ((20, 10), (48,)))
    with pytest.raises(ValueError, match="not an image"):
        PixelLayout((4, 6), ((2, 2), (3, 3))).to_rows(np.zeros((6, 4)))


def test_block_matrix_has_one_tile_per_block_and_maps_come_back_in_c_order():
    da = pytest.importorskip("dask.array")
    import napari_unmix.core as uc
    from napari_unmix.core.chunked.blocks import block_pixel_matrix
    from napari_unmix.core.chunked.store import rows_to_c_order, rows_to_maps

    rng = np.random.default_rng(1)
    stack = rng.random((16, 40, 48)).astype(np.uint16)
    lazy = da.from_array(stack, chunks=(5, 12, 16))          # the spectral axis split too
    X, layout = block_pixel_matrix(lazy, 0)
    assert X.dtype == np.float32 and X.chunks[1] == (16,)
    assert X.chunks[0] == tuple(a * b for a in (12, 12, 12, 4) for b in (16, 16, 16))
    ref, shape = uc.stack_to_matrix(stack, 0)
    order = brute_force_rows(shape, layout.chunks)
    assert np.array_equal(np.asarray(X), ref[order])
    W = X[:, :3] * 2                                          # any per-pixel rows
    assert np.array_equal(np.asarray(rows_to_c_order(W, layout)), ref[:, :3] * 2)
    assert np.array_equal(np.asarray(rows_to_c_order(W[:, 0], layout)), ref[:, 0] * 2)
    maps = rows_to_maps(W, layout)
    assert maps.chunks[1:] == layout.chunks                   # one task per tile
    assert np.array_equal(np.asarray(maps), 2 * stack[:3].astype(np.float32))
    X_c, layout_c = block_pixel_matrix(da.from_array(stack, chunks=(16, 8, 48)), 0)
    assert layout_c.is_c_order and np.array_equal(np.asarray(X_c), ref)
