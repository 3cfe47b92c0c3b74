"""Shapes / Labels layers as ROIs on the spatial grid of a spectral image (``_napari.rois``).

These tests build napari layers without a viewer (no Qt): the mapping between
layers is pure geometry, checked against masks drawn directly in the image's grid.
"""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")

from napari.layers import Image, Labels, Shapes  # noqa: E402

from napari_unmix._napari.rois import (  # noqa: E402
    ImageGrid,
    RoiError,
    label_ids,
    labels_image,
    shape_masks,
    shapes_roi,
)
from napari_unmix.core import stack_to_matrix  # noqa: E402

C, Y, X = 6, 20, 30
RECT = np.array([[2, 3], [2, 8], [6, 8], [6, 3]], dtype=float)  # rows 2..6, cols 3..8


@pytest.fixture(autouse=True)
def _main_thread_only(monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")


@pytest.fixture
def stack():
    return np.random.default_rng(0).random((C, Y, X)).astype(np.float32)


@pytest.fixture
def grid(stack):
    return ImageGrid(Image(stack, name="stack"), 0)


def _box(r0, r1, c0, c1, shape=(Y, X)):
    m = np.zeros(shape, dtype=bool)
    m[r0:r1 + 1, c0:c1 + 1] = True
    return m


# -- shapes --------------------------------------------------------------------------------
def test_rectangle_covers_its_pixels(grid):
    (mask,) = shape_masks(Shapes([RECT], shape_type="rectangle"), grid)
    assert mask.shape == (Y, X)
    np.testing.assert_array_equal(mask, _box(2, 6, 3, 8))


@pytest.mark.parametrize("kind", ["polygon", "ellipse"])
def test_polygon_and_ellipse_match_napari_rasterisation(grid, kind):
    data = (np.array([[2, 3], [4, 12], [12, 10], [9, 2]], float) if kind == "polygon"
            else np.array([[3, 4], [3, 16], [13, 16], [13, 4]], float))
    layer = Shapes([data], shape_type=kind)
    (mask,) = shape_masks(layer, grid)
    np.testing.assert_array_equal(mask, layer.to_masks(mask_shape=(Y, X))[0])
    assert 20 < mask.sum() < 140  # an area, not a line or the whole image


def test_shapes_with_another_scale_and_origin_land_on_the_same_pixels(stack):
    # the image has 0.5 um pixels and an origin at (10, 20) um; the ROI is drawn in um
    img = Image(stack, scale=(1, 0.5, 0.5), translate=(0, 10, 20))
    grid = ImageGrid(img, 0)
    world = RECT * 0.5 + np.array([10.0, 20.0])
    (mask,) = shape_masks(Shapes([world], shape_type="rectangle"), grid)
    np.testing.assert_array_equal(mask, _box(2, 6, 3, 8))
    # a Shapes layer with its own scale gives the same pixels too
    same = Shapes([world / 2.0], shape_type="rectangle", scale=(2, 2))
    np.testing.assert_array_equal(shape_masks(same, grid)[0], mask)


def test_a_rectangle_drawn_in_um_with_edges_on_pixel_centres_keeps_its_edge_pixels(stack):
    """Pixels of 0.2 um from (5, 7) um, a rectangle from (5.4, 7.6) to (6.2, 8.6) um: rows
    2..6 and columns 3..8, as drawn in pixel units.  napari keeps the vertices in float32,
    which put them about 5e-7 px inside those pixel centres, and the edge rows and
    columns were lost (18 pixels of 30); a 1 x 1 pixel box was "covers no pixel"."""
    img = Image(stack, scale=(1, 0.2, 0.2), translate=(0, 5, 7))
    grid = ImageGrid(img, 0)
    world = RECT * 0.2 + np.array([5.0, 7.0])
    (mask,) = shape_masks(Shapes([world], shape_type="rectangle"), grid)
    np.testing.assert_array_equal(mask, _box(2, 6, 3, 8))
    one = np.array([[2, 3], [2, 4], [3, 4], [3, 3]], float) * 0.2 + np.array([5.0, 7.0])
    (small,) = shape_masks(Shapes([one], shape_type="rectangle"), grid)
    np.testing.assert_array_equal(small, _box(2, 3, 3, 4))


def test_the_channel_a_shape_was_drawn_on_does_not_matter(grid):
    on_c4 = np.column_stack([np.full(4, 4.0), RECT])  # a 3-D Shapes layer, drawn on channel 4
    (mask,) = shape_masks(Shapes([on_c4], shape_type="rectangle"), grid)
    np.testing.assert_array_equal(mask, _box(2, 6, 3, 8))


def test_4d_shape_on_a_plane_selects_that_plane_only():
    img = Image(np.zeros((5, C, Y, X), np.float32))
    grid = ImageGrid(img, 1)
    on_z3 = np.column_stack([np.full(4, 3.0), np.full(4, 2.0), RECT])  # (z, c, y, x)
    (mask,) = shape_masks(Shapes([on_z3], shape_type="polygon"), grid)
    assert mask.shape == (5, Y, X)
    np.testing.assert_array_equal(mask.sum(axis=(1, 2)), [0, 0, 0, 30, 0])
    np.testing.assert_array_equal(mask[3], _box(2, 6, 3, 8))


def test_2d_shape_over_a_4d_image_applies_to_every_plane():
    grid = ImageGrid(Image(np.zeros((5, C, Y, X), np.float32)), 1)
    (mask,) = shape_masks(Shapes([RECT], shape_type="rectangle"), grid)
    for z in range(5):
        np.testing.assert_array_equal(mask[z], _box(2, 6, 3, 8))


def test_each_shape_or_the_union(grid):
    layer = Shapes([RECT, RECT + 10], shape_type="rectangle")
    a, b = shape_masks(layer, grid)
    np.testing.assert_array_equal(b, _box(12, 16, 13, 18))
    np.testing.assert_array_equal(shape_masks(layer, grid, index=1)[0], b)
    np.testing.assert_array_equal(shapes_roi(layer, grid), a | b)
    np.testing.assert_array_equal(shapes_roi(layer, grid, index=0), a)


def test_shape_partly_outside_is_cut_to_the_image(grid):
    (mask,) = shape_masks(Shapes([RECT + [15, 0]], shape_type="rectangle"), grid)
    np.testing.assert_array_equal(mask, _box(17, 19, 3, 8))


@pytest.mark.parametrize("layer, words", [
    (Shapes(), "holds no shapes"),
    (Shapes([RECT + 100], shape_type="rectangle"), "outside"),
    (Shapes([np.array([[1.0, 1.0], [5.0, 5.0]])], shape_type="line"), "encloses no area"),
    (Shapes([np.array([[1.0, 1.0], [5.0, 5.0], [9.0, 2.0]])], shape_type="path"),
     "encloses no area"),
    # drawn while (C, X) were displayed: no extent along Y
    (Shapes([np.array([[0.0, 4, 2], [5, 4, 2], [5, 4, 9], [0, 4, 9]])],
            shape_type="rectangle"), "no area in the Y-X plane"),
])
def test_unusable_shapes_are_refused_clearly(grid, layer, words):
    with pytest.raises(RoiError, match=words):
        shape_masks(layer, grid)


@pytest.mark.parametrize("kind", ["rectangle", "ellipse"])
def test_a_tiny_shape_on_the_image_says_it_covers_no_pixel(grid, kind):
    tiny = np.array([[5.2, 5.2], [5.2, 5.6], [5.6, 5.6], [5.6, 5.2]])  # no pixel centre
    with pytest.raises(RoiError, match="covers no pixel") as info:
        shape_masks(Shapes([tiny], shape_type=kind), grid)
    assert "outside" not in str(info.value) and "draw it larger" in str(info.value)


def test_shape_index_out_of_range(grid):
    with pytest.raises(RoiError, match="shape 3 does not exist"):
        shape_masks(Shapes([RECT], shape_type="rectangle"), grid, index=2)


@pytest.mark.parametrize("z, words", [(9.0, "plane 9"), ("tilted", "single plane")])
def test_shapes_off_the_image_planes_are_refused(z, words):
    grid = ImageGrid(Image(np.zeros((5, C, Y, X), np.float32)), 1)
    zs = np.array([1.0, 1.0, 2.0, 2.0]) if z == "tilted" else np.full(4, z)
    verts = np.column_stack([zs, np.zeros(4), RECT])
    with pytest.raises(RoiError, match=words):
        shape_masks(Shapes([verts], shape_type="polygon"), grid)


# -- labels --------------------------------------------------------------------------------
@pytest.fixture
def label_array():
    lab = np.zeros((Y, X), dtype=np.int32)
    lab[2:6, 4:10] = 2
    lab[10:14, 10:20] = 5
    return lab


def test_labels_on_the_same_grid_are_taken_as_they_are(grid, label_array):
    out = labels_image(Labels(label_array), grid)
    np.testing.assert_array_equal(out, label_array)
    assert label_ids(out) == [2, 5]


def test_coarser_labels_are_resampled_by_nearest_neighbour(grid):
    coarse = np.zeros((Y // 2, X // 2), dtype=np.int32)
    coarse[1:3, 2:5] = 3
    out = labels_image(Labels(coarse, scale=(2, 2), translate=(0.5, 0.5)), grid)
    # a coarse pixel j covers fine pixels 2j and 2j+1 (centres 2j + 0.5 -/+ 0.5)
    expected = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(out, expected)


def test_translated_labels_move_with_their_offset(grid, label_array):
    out = labels_image(Labels(label_array, translate=(3, -2)), grid)
    expected = np.zeros_like(label_array)
    expected[3:, :-2] = label_array[:-3, 2:]
    np.testing.assert_array_equal(out, expected)


def test_labels_painted_on_one_channel_apply_to_all(grid, label_array):
    full = np.zeros((C, Y, X), dtype=np.int32)  # a Labels layer with the viewer's dimensions
    full[1][label_array == 2] = 2
    full[4][label_array == 5] = 5
    np.testing.assert_array_equal(labels_image(Labels(full), grid), label_array)
    full[3, 2, 4] = 7  # another label on a pixel that already has label 2
    with pytest.raises(RoiError, match="different labels painted on the same pixel"):
        labels_image(Labels(full), grid)


def test_2d_labels_over_a_4d_image_apply_to_every_plane(label_array):
    grid = ImageGrid(Image(np.zeros((3, C, Y, X), np.float32)), 1)
    out = labels_image(Labels(label_array), grid)
    assert out.shape == (3, Y, X)
    for z in range(3):
        np.testing.assert_array_equal(out[z], label_array)


def test_a_zyx_segmentation_over_a_zcyx_image_is_refused_not_merged(label_array):
    # napari lays a (Z, Y, X) layer over the image's (C, Y, X): its planes were
    # collapsed as if painted on channels, every plane's labels put on every plane
    grid = ImageGrid(Image(np.zeros((3, C, Y, X), np.float32), name="series"), 1)
    seg = np.zeros((3, Y, X), dtype=np.int32)
    seg[0][label_array == 2] = 2
    seg[2][label_array == 5] = 5
    with pytest.raises(RoiError, match=r"'seg'.*axis 0 \(3 long\).*spectral axis.*"
                                       r"length-1 axis"):
        labels_image(Labels(seg, name="seg"), grid)
    # with a length-1 axis for the channels it is one label image per plane
    out = labels_image(Labels(seg[:, None], name="seg"), grid)
    np.testing.assert_array_equal(out, seg)


@pytest.mark.parametrize("make, words", [
    (lambda lab: Labels(np.zeros_like(lab)), "is empty"),
    (lambda lab: Labels(lab, translate=(100, 0)), "None of the labels"),
    (lambda lab: Labels(lab, rotate=30), "rotated or sheared"),
    (lambda lab: Labels(np.stack([lab, lab])[None].repeat(2, axis=0)), "more axes"),
])
def test_unusable_labels_are_refused_clearly(grid, label_array, make, words):
    with pytest.raises(RoiError, match=words):
        labels_image(make(label_array), grid)


# -- spectra and the grid ------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1])
def test_rois_fit_the_core_roi_mean(axis):
    """A region on the grid is a mask of the stack's spatial shape, whatever the position
    of the spectral axis: the core's ROI mean (the previews' and the run's) takes it."""
    from napari_unmix.core.data import roi_mean_spectrum

    data = np.random.default_rng(2).random((4, C, Y, X) if axis else (C, Y, X))
    data = data.astype(np.float32)
    grid = ImageGrid(Image(data, name="stack"), axis)
    mask = shapes_roi(Shapes([RECT], shape_type="rectangle"), grid)
    assert mask.shape == grid.spatial_shape
    mean = roi_mean_spectrum(data, mask, spectral_axis=grid.spectral_axis_index)
    X_, _ = stack_to_matrix(data, axis)
    np.testing.assert_allclose(mean, X_[mask.ravel()].mean(axis=0), rtol=1e-6)


def test_grid_of_a_4d_stack():
    grid = ImageGrid(Image(np.zeros((5, C, Y, X), np.float32)), 1)
    assert grid.spatial_shape == (5, Y, X)
    assert grid.n_channels == C
    assert grid.plane_dims == (0,) and grid.yx_dims == (2, 3)


@pytest.mark.parametrize("data, axis, words", [
    (np.zeros((Y, X)), 0, "needs a spectral axis"),
    (np.zeros((C, Y, X)), 3, "out of range"),
])
def test_grid_refuses_what_is_not_a_stack(data, axis, words):
    with pytest.raises(RoiError, match=words):
        ImageGrid(Image(data), axis)
