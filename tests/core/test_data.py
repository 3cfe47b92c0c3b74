"""Stack <-> matrix conversion: axes, dtypes, masks and awkward memory layouts."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.core import finite_mask, matrix_to_maps, stack_to_matrix


def encoded_stack(spatial_shape, n_channels, spectral_axis):
    """A stack whose values say where they are: ``pixel * n_channels + channel``.

    ``pixel`` is the C-order index over the spatial axes.  The value is computed
    from element coordinates (not by reshaping), so the expected matrix is known
    independently of the code under test: ``arange(n_pixels * n_channels)``
    reshaped to ``(n_pixels, n_channels)``.
    """
    ndim = len(spatial_shape) + 1
    axis = spectral_axis % ndim
    shape = list(spatial_shape)
    shape.insert(axis, n_channels)
    coords = np.indices(shape)
    channel = coords[axis]
    spatial = [coords[i] for i in range(ndim) if i != axis]
    pixel = np.ravel_multi_index(spatial, spatial_shape)
    return (pixel * n_channels + channel).astype(np.float64)


SHAPES = [(7,), (4, 5), (2, 3, 4)]


@pytest.mark.parametrize("spatial_shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("where", ["first", "last", "middle", "negative"])
def test_spectral_axis_anywhere(spatial_shape, where):
    n_channels = 6
    ndim = len(spatial_shape) + 1
    axis = {"first": 0, "last": ndim - 1, "middle": ndim // 2, "negative": -1}[where]
    stack = encoded_stack(spatial_shape, n_channels, axis)
    X, shape = stack_to_matrix(stack, spectral_axis=axis)
    n_pixels = int(np.prod(spatial_shape))
    assert shape == spatial_shape
    np.testing.assert_array_equal(X, np.arange(n_pixels * n_channels).reshape(n_pixels, -1))
    assert X.flags.c_contiguous


@pytest.mark.parametrize("spatial_shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("axis", [0, -1])
def test_maps_round_trip(spatial_shape, axis):
    stack = encoded_stack(spatial_shape, 5, axis)
    X, shape = stack_to_matrix(stack, spectral_axis=axis)
    maps = matrix_to_maps(X, shape)
    # every column of X becomes one image: the channel images of the stack
    assert maps.shape == (5, *spatial_shape)
    np.testing.assert_array_equal(maps, np.moveaxis(stack, axis, 0))


def test_matrix_to_maps_one_column_vector():
    maps = matrix_to_maps(np.arange(6.0), (2, 3))
    np.testing.assert_array_equal(maps, np.arange(6.0).reshape(1, 2, 3))


def test_matrix_to_maps_wrong_rows():
    with pytest.raises(ValueError, match="5 rows.*6 pixels"):
        matrix_to_maps(np.zeros((5, 2)), (2, 3))


def test_matrix_to_maps_rejects_3d():
    with pytest.raises(ValueError, match="2-D"):
        matrix_to_maps(np.zeros((2, 3, 4)), (2, 3))


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.uint8, np.float32), (np.uint16, np.float32), (np.int16, np.float32),
     (np.float16, np.float32), (np.bool_, np.float32),
     (np.int32, np.float64), (np.uint32, np.float64), (np.int64, np.float64),
     (np.float32, np.float32), (np.float64, np.float64)],
    ids=lambda d: np.dtype(d).name,
)
def test_dtype_rule(dtype, expected):
    stack = np.ones((3, 2, 2), dtype=dtype)
    X, _ = stack_to_matrix(stack)
    assert X.dtype == expected


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.uint32])
def test_integer_extremes_are_exact(dtype):
    # the float type chosen for each integer type holds all its values exactly:
    # e.g. uint16 65535 -> 65535.0 in float32 (24-bit mantissa), never wrapped
    info = np.iinfo(dtype)
    stack = np.array([[[info.min, info.max]], [[info.max, 0]]], dtype=dtype)  # (C=2, 1, 2)
    X, _ = stack_to_matrix(stack)
    np.testing.assert_array_equal(X, np.array([[info.min, info.max], [info.max, 0]],
                                              dtype=np.float64))
    assert X.max() == float(info.max)


def test_uint16_sum_does_not_overflow():
    stack = np.full((4, 3, 3), 65535, dtype=np.uint16)
    X, _ = stack_to_matrix(stack)
    assert X[0, 0] == 65535.0
    # arithmetic on X is float arithmetic: no uint16 wrap-around
    assert X.sum(axis=1)[0] == 4 * 65535.0


def test_forced_dtype():
    X, _ = stack_to_matrix(np.ones((3, 4), dtype=np.uint8), dtype=np.float64)
    assert X.dtype == np.float64
    with pytest.raises(TypeError, match="floating-point"):
        stack_to_matrix(np.ones((3, 4)), dtype=np.int32)


def test_float64_kept_without_copy_when_possible():
    stack = np.random.default_rng(0).random((5, 6))  # (Y, C): spectral axis last
    X, _ = stack_to_matrix(stack, spectral_axis=-1)
    assert X.dtype == np.float64
    assert np.shares_memory(X, stack)  # no needless copy of large data
    np.testing.assert_array_equal(X, stack)


def test_input_never_modified():
    stack = np.random.default_rng(1).random((4, 3, 5))
    before = stack.copy()
    X, _ = stack_to_matrix(stack, spectral_axis=1, mask=np.ones((4, 5), bool))
    np.testing.assert_array_equal(stack, before)
    # with a mask (or a moved axis) X is a copy: writing into it leaves the stack alone
    X[...] = -1.0
    np.testing.assert_array_equal(stack, before)


@pytest.mark.parametrize("bad", [np.array(["a", "b"] * 4).reshape(2, 4),
                                 np.ones((2, 4), dtype=complex),
                                 np.ones((2, 4), dtype=object)],
                         ids=["str", "complex", "object"])
def test_non_real_stack_rejected(bad):
    with pytest.raises(TypeError, match="not a real number type"):
        stack_to_matrix(bad)


# ----------------------------------------------------------------------------- masks


@pytest.fixture
def stack_and_mask():
    rng = np.random.default_rng(3)
    stack = rng.random((6, 4, 5))  # (C, Y, X)
    mask = rng.random((4, 5)) < 0.6
    mask[0, 0] = True
    mask[-1, -1] = False
    return stack, mask


def test_mask_keeps_selected_pixels_in_c_order(stack_and_mask):
    stack, mask = stack_and_mask
    X_full, shape = stack_to_matrix(stack)
    X, shape_m = stack_to_matrix(stack, mask=mask)
    assert shape_m == shape == (4, 5)
    # a masked matrix is the cropped full matrix: same rows, same order
    np.testing.assert_array_equal(X, X_full[mask.ravel()])
    assert X.shape == (int(mask.sum()), 6)


def test_mask_round_trip_nan_outside(stack_and_mask):
    stack, mask = stack_and_mask
    X, shape = stack_to_matrix(stack, mask=mask)
    maps = matrix_to_maps(X, shape, mask=mask)
    assert maps.shape == stack.shape
    np.testing.assert_array_equal(maps[:, mask], stack[:, mask])
    assert np.isnan(maps[:, ~mask]).all()


def test_mask_fill_value(stack_and_mask):
    stack, mask = stack_and_mask
    X, shape = stack_to_matrix(stack, mask=mask)
    maps = matrix_to_maps(X, shape, mask=mask, fill_value=0.0)
    assert (maps[:, ~mask] == 0).all()


def test_masked_integer_maps_become_float():
    # NaN cannot live in an integer array: the maps are promoted to float
    W = np.arange(3, dtype=np.int16)[:, None]
    mask = np.array([[True, False], [True, True]])
    maps = matrix_to_maps(W, (2, 2), mask=mask)
    assert maps.dtype.kind == "f"
    assert np.isnan(maps[0, 0, 1])
    np.testing.assert_array_equal(maps[0][mask], [0, 1, 2])


def test_everything_masked_is_an_error():
    with pytest.raises(ValueError, match="no pixel"):
        stack_to_matrix(np.ones((3, 2, 2)), mask=np.zeros((2, 2), bool))


@pytest.mark.parametrize("mask_shape", [(2, 3), (3, 2), (2, 2, 1), (4,)])
def test_wrong_mask_shape(mask_shape):
    with pytest.raises(ValueError, match=r"mask has shape .* spatial shape is \(2, 2\)"):
        stack_to_matrix(np.ones((3, 2, 2)), mask=np.ones(mask_shape, bool))


def test_non_boolean_mask():
    with pytest.raises(TypeError, match="boolean"):
        stack_to_matrix(np.ones((3, 2, 2)), mask=np.ones((2, 2), dtype=np.uint8))


def test_maps_mask_pixel_count_mismatch():
    mask = np.array([[True, False], [True, True]])
    with pytest.raises(ValueError, match="mask selects 3 pixels"):
        matrix_to_maps(np.zeros((4, 1)), (2, 2), mask=mask)


def test_finite_mask_excludes_bad_pixels():
    stack = np.ones((3, 2, 2))
    stack[1, 0, 1] = np.nan
    stack[2, 1, 0] = np.inf
    mask = finite_mask(stack, 0)
    np.testing.assert_array_equal(mask, [[True, False], [False, True]])
    X, _ = stack_to_matrix(stack, mask=mask)
    assert np.isfinite(X).all() and X.shape == (2, 3)


# ----------------------------------------------------------------------------- bad stacks


@pytest.mark.parametrize("stack", [np.arange(5.0), np.float64(3.0)], ids=["1d", "0d"])
def test_single_spectrum_rejected(stack):
    with pytest.raises(ValueError, match="spatial axis"):
        stack_to_matrix(stack)


@pytest.mark.parametrize("shape", [(0, 4, 4), (3, 0, 4), (3, 4, 0)])
def test_empty_stack_rejected(shape):
    with pytest.raises(ValueError, match="empty"):
        stack_to_matrix(np.zeros(shape))


@pytest.mark.parametrize("axis", [3, -4])
def test_axis_out_of_range(axis):
    with pytest.raises(ValueError, match=f"spectral_axis={axis} is out of range"):
        stack_to_matrix(np.zeros((2, 3, 4)), spectral_axis=axis)


# ----------------------------------------------------------------------------- memory layouts


def test_read_only_input(low_rank):
    stack = low_rank.X.T.reshape(-1, 8, 12).copy()  # (C, Y, X)
    stack.setflags(write=False)
    X, _ = stack_to_matrix(stack, spectral_axis=0)
    np.testing.assert_array_equal(X, low_rank.X)


@pytest.mark.parametrize("axis", [0, -1])
def test_fortran_ordered_input(axis):
    stack = np.asfortranarray(encoded_stack((4, 5), 3, axis))
    X, _ = stack_to_matrix(stack, spectral_axis=axis)
    assert X.flags.c_contiguous
    np.testing.assert_array_equal(X, np.arange(60.0).reshape(20, 3))


def test_memory_mapped_input(tmp_path):
    data = encoded_stack((4, 5), 3, -1).astype(np.uint16)
    path = tmp_path / "stack.dat"
    mm = np.memmap(path, dtype=np.uint16, mode="w+", shape=data.shape)
    mm[:] = data
    mm.flush()
    del mm
    ro = np.memmap(path, dtype=np.uint16, mode="r", shape=data.shape)
    X, _ = stack_to_matrix(ro, spectral_axis=-1)
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X, np.arange(60.0).reshape(20, 3))


def test_memory_mapped_float_input_runs_through_modes(tmp_path, low_rank):
    # a read-only float32 memmap can come back as a view of the file: every mode
    # must still accept it (no in-place writes, no library refusing read-only data)
    from napari_unmix.core import nmf, nnls, pca

    path = tmp_path / "stack.dat"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=low_rank.X.shape)
    mm[:] = low_rank.X
    mm.flush()
    del mm
    ro = np.memmap(path, dtype=np.float32, mode="r", shape=low_rank.X.shape)
    X, _ = stack_to_matrix(ro, spectral_axis=-1)
    assert pca(X, 2).W.shape == (X.shape[0], 2)
    assert nnls(X, low_rank.H, backend="scipy").W.shape == (X.shape[0], 3)
    res = nmf(X, 3, solver="cd", backend="sklearn", random_state=0)
    assert res.W.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(ro), low_rank.X.astype(np.float32))


def test_masked_result_equals_cropped_result(stack_and_mask):
    # per-pixel modes: fitting only the masked pixels gives, at those pixels, what
    # fitting every pixel gives; the others come back as NaN in the maps
    from napari_unmix.core import nnls

    stack, mask = stack_and_mask
    H = np.random.default_rng(4).random((2, stack.shape[0]))
    X_full, shape = stack_to_matrix(stack)
    X_masked, _ = stack_to_matrix(stack, mask=mask)
    full = nnls(X_full, H, backend="scipy").maps(shape)
    masked = nnls(X_masked, H, backend="scipy").maps(shape, mask=mask)
    np.testing.assert_array_equal(masked[:, mask], full[:, mask])
    assert np.isnan(masked[:, ~mask]).all()


@pytest.mark.parametrize("axis", [1.0, None, "0", True])
def test_a_spectral_axis_that_is_not_an_integer_is_refused_by_name(axis):
    # 1.0 raised "'float' object is not iterable", None and '0' a comparison TypeError
    with pytest.raises(TypeError, match=r"spectral_axis must be the index \(an integer\)"):
        stack_to_matrix(np.ones((8, 10, 12)), spectral_axis=axis)


@pytest.mark.parametrize("shape", [300, (-10, -12), (10, 12.0), "10x12"])
def test_a_spatial_shape_that_is_no_image_size_is_refused_by_name(shape):
    # 300 raised "'int' object is not iterable", (-10, -12) numpy's reshape message
    with pytest.raises(ValueError, match="spatial_shape must be the image's size"):
        matrix_to_maps(np.ones((120, 2)), shape)


def test_a_spatial_shape_of_numpy_integers_is_fine():
    assert matrix_to_maps(np.ones((120, 2)), np.array([10, 12])).shape == (2, 10, 12)
