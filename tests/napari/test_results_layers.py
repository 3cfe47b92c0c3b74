"""Results as napari layers (``_napari.layers``): colours, contrast, placement, replacing.

A ``ViewerModel`` (no Qt) is enough: the module only adds and removes layers.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

napari = pytest.importorskip("napari")

from napari.components import ViewerModel  # noqa: E402

from napari_unmix._napari.layers import (  # noqa: E402
    META_KEY,
    RESULT_KEY,
    contrast_limits,
    result_layers,
    show_result,
)
from napari_unmix.core import UnmixResult  # noqa: E402
from napari_unmix.core.colors import default_colors, hex_to_rgb  # noqa: E402

SPATIAL = (12, 16)
COLORS = ["#E69F00", "#56B4E9", "#009E73"]


@pytest.fixture(autouse=True)
def _main_thread_only(monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")


def _result(mode="nmf", spatial=SPATIAL, k=3, seed=0):
    rng = np.random.default_rng(seed)
    n = int(np.prod(spatial))
    W = rng.random((n, k)) if mode != "pca" else rng.standard_normal((n, k))
    return UnmixResult(W=W, H=rng.random((k, 5)), mode=mode, backend="numpy", device="cpu",
                       n_iter=1, reconstruction_err=0.0,
                       component_names=["lipid", "protein", "water"][:k])


def test_one_coloured_additive_layer_per_component():
    viewer = ViewerModel()
    res = _result()
    layers = show_result(viewer, res, spatial_shape=SPATIAL, colors=COLORS, source_image="img")
    assert [lyr.name for lyr in viewer.layers] == ["lipid", "protein", "water"]
    for i, layer in enumerate(layers):
        np.testing.assert_array_equal(layer.data, res.W[:, i].reshape(SPATIAL))
        assert layer.blending == "additive"
        cmap = layer.colormap
        np.testing.assert_allclose(cmap.map(np.array([0.0]))[0], [0, 0, 0, 1], atol=1e-6)
        np.testing.assert_allclose(cmap.map(np.array([1.0]))[0][:3], hex_to_rgb(COLORS[i]),
                                   atol=1e-6)
        lo, hi = layer.contrast_limits
        assert lo == 0.0
        assert hi == pytest.approx(np.percentile(res.W[:, i], 99.5))
        meta = layer.metadata
        assert meta[RESULT_KEY] is res and meta["component_index"] == i
        assert meta["component_name"] == res.component_names[i]
        assert meta["spatial_shape"] == SPATIAL and meta["color"] == COLORS[i]
        assert meta[META_KEY]["source_image"] == "img"


def test_pca_scores_are_signed_and_shown_one_at_a_time():
    viewer = ViewerModel()
    res = _result("pca")
    layers = show_result(viewer, res, spatial_shape=SPATIAL, source_image="img")
    assert [lyr.visible for lyr in layers] == [True, False, False]
    for i, layer in enumerate(layers):
        lo, hi = layer.contrast_limits
        assert lo == pytest.approx(-hi)
        assert hi == pytest.approx(np.percentile(np.abs(res.W[:, i]), 99.5))
        # positive scores in the component's colour (its loading curve's), zero black,
        # negative in the opposite hue (issue 13)
        neg, zero, pos = layer.colormap.map(np.array([0.0, 0.5, 1.0]))
        np.testing.assert_allclose(zero[:3], 0, atol=1e-6)
        np.testing.assert_allclose(pos[:3], hex_to_rgb(default_colors(3)[i]), atol=1e-6)
        assert np.abs(neg[:3] - pos[:3]).max() > 0.3


def test_rerun_replaces_the_maps_of_the_same_image_only():
    viewer = ViewerModel()
    viewer.add_image(np.zeros((4, *SPATIAL)), name="img")
    viewer.add_image(np.zeros((4, *SPATIAL)), name="other")
    show_result(viewer, _result(), spatial_shape=SPATIAL, source_image="img")
    show_result(viewer, _result(k=2), spatial_shape=SPATIAL, source_image="other")
    assert len(viewer.layers) == 2 + 3 + 2
    new = show_result(viewer, _result(seed=1, k=2), spatial_shape=SPATIAL, source_image="img")
    assert len(viewer.layers) == 2 + 2 + 2
    assert [lyr.name for lyr in result_layers(viewer, source_image="img")] == \
        [lyr.name for lyr in new]
    assert len(result_layers(viewer, source_image="other")) == 2
    assert {"img", "other"} <= {lyr.name for lyr in viewer.layers}  # user layers untouched


def test_reruns_release_the_replaced_layers_and_results():
    viewer = ViewerModel()
    olds = []
    for seed in range(5):
        res = _result(seed=seed, k=2)
        olds.append(weakref.ref(res))
        show_result(viewer, res, spatial_shape=SPATIAL, source_image="img")
        del res
        assert len(viewer.layers) == 2
    gc.collect()
    assert [r() is None for r in olds] == [True] * 4 + [False]  # only the shown one lives
    # a reused layer shows the new maps with fresh contrast limits, its slider spanning the data
    layer = viewer.layers[0]
    res = layer.metadata[RESULT_KEY]
    np.testing.assert_array_equal(layer.data, res.W[:, 0].reshape(SPATIAL))
    assert layer.contrast_limits[1] == pytest.approx(np.percentile(res.W[:, 0], 99.5))
    assert layer.contrast_limits_range[1] == pytest.approx(res.W[:, 0].max())


def test_maps_lie_over_a_scaled_3d_image():
    viewer = ViewerModel()
    img = viewer.add_image(np.zeros((5, *SPATIAL)), scale=(1, 0.5, 0.25), translate=(0, 3, 7))
    (layer, *_) = show_result(viewer, _result(), spatial_shape=SPATIAL, image_layer=img,
                              spectral_axis_index=0, source_image="img")
    assert layer.data.shape == SPATIAL
    for yx in [(0, 0), (11, 15), (4, 9)]:
        assert np.allclose(layer.data_to_world(yx), img.data_to_world((2, *yx))[1:])


def test_maps_of_a_4d_series_line_up_with_its_planes_and_show_on_every_channel():
    viewer = ViewerModel()
    Z, C = 3, 6
    img = viewer.add_image(np.zeros((Z, C, *SPATIAL)), scale=(2, 1, 0.5, 0.5),
                           translate=(1, 0, 0, 0))
    spatial = (Z, *SPATIAL)
    (layer, *_) = show_result(viewer, _result(spatial=spatial), spatial_shape=spatial,
                              image_layer=img, spectral_axis_index=1, source_image="img")
    assert layer.data.shape == (Z, 1, *SPATIAL)
    # every image pixel, on every channel, falls in the map pixel of its (z, y, x)
    for z, c, y, x in [(0, 0, 0, 0), (2, 5, 11, 15), (1, 3, 4, 9)]:
        world = img.data_to_world((z, c, y, x))
        got = np.asarray(layer.world_to_data(world))
        np.testing.assert_allclose(np.round(got), [z, 0, y, x])
    assert len(viewer.layers) == 4  # the image and three maps


@pytest.mark.parametrize("values, signed, expected", [
    (np.zeros(10), False, (0.0, 1.0)),
    (np.full(10, np.nan), False, (0.0, 1.0)),
    (np.r_[np.zeros(999), 4.0], False, (0.0, 4.0)),  # percentile 0: the maximum
    (np.zeros(10), True, (-1.0, 1.0)),
])
def test_contrast_limits_of_degenerate_maps(values, signed, expected):
    assert contrast_limits(values, signed=signed) == pytest.approx(expected)


def test_contrast_limits_ignore_nan_and_a_few_bright_pixels():
    v = np.r_[np.linspace(0, 1, 1000), 1e6, np.nan]
    lo, hi = contrast_limits(v)
    assert lo == 0 and hi < 2


def test_background_components_start_hidden():
    res = _result()
    res.params["config"] = {"components": [{"name": "lipid", "background": False},
                                           {"name": "protein", "background": False},
                                           {"name": "water", "background": True}]}
    layers = show_result(ViewerModel(), res, spatial_shape=SPATIAL, source_image="img")
    assert [lyr.visible for lyr in layers] == [True, True, False]


def test_maps_come_one_layer_per_step_and_a_layer_deleted_between_steps_is_made_again():
    from napari_unmix._napari.layers import show_result_steps

    viewer = ViewerModel()
    first = show_result(viewer, _result(), spatial_shape=SPATIAL, source_image="img")
    steps = show_result_steps(viewer, _result(seed=1), spatial_shape=SPATIAL,
                              source_image="img", names=["a", "b", "c"])
    next(steps)  # one layer per step: the first map only
    assert [lyr.name for lyr in viewer.layers] == ["a", "protein", "water"]
    viewer.layers.remove(first[1])  # the user deletes a map between two steps
    with pytest.raises(StopIteration) as end:
        while True:
            next(steps)
    out = end.value.value
    assert [lyr.name for lyr in out] == ["a", "b", "c"]
    assert all(lyr in viewer.layers for lyr in out)
    assert out[0] is first[0] and out[2] is first[2] and out[1] is not first[1]
    np.testing.assert_array_equal(out[1].data, _result(seed=1).W[:, 1].reshape(SPATIAL))
