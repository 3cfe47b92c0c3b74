""""New seed layer" lies exactly over the image's Y-X grid, whatever its transform
and axis order (``_napari.seed_layer``): a dab painted under the cursor seeds the
image pixel under the cursor."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

Y, X, C = 24, 30, 6


@pytest.fixture
def viewer(make_napari_viewer, monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")
    return make_napari_viewer(strict_qt=True)


def _dock(viewer, image):
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    dock.form.image.value = image.name
    return dock


def _paint_under(image, layer, pixels, channel=2):
    """Paint label 1 where the seed layer has the world position of each image pixel
    ``(y, x)`` (the cursor over that pixel, on ``channel``)."""
    s = int(image.metadata.get("spectral_axis_index", 0))
    for y, x in pixels:
        index = [y, x]
        index.insert(s, channel)
        world = image.data_to_world(np.asarray(index, dtype=float))
        coords = np.asarray(layer.world_to_data(world), dtype=float)
        layer.data[tuple(int(np.floor(c + 0.5)) for c in coords)] = 1
    layer.refresh()


CASES = {
    "channel-last, calibrated, translated": (
        (Y, X, C), {"scale": (0.2, 0.2, 1.0), "translate": (3.0, -4.0, 0.0),
                    "metadata": {"spectral_axis_index": 2}}),
    "channel-first, rotated": ((C, Y, X), {"scale": (1.0, 0.2, 0.2), "rotate": 30}),
    "channel-first, half-pixel translate": ((C, Y, X), {"scale": (1.0, 0.5, 0.5),
                                                         "translate": (0.0, 0.25, 0.25)}),
    "(Y, C, X)": ((Y, C, X), {"scale": (0.3, 1.0, 0.3), "metadata": {"spectral_axis_index": 1}}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_dabs_on_the_new_seed_layer_seed_the_pixels_under_them(viewer, case):
    shape, kwargs = CASES[case]
    image = viewer.add_image(np.random.default_rng(0).random(shape).astype(np.float32),
                             name="stack", **kwargs)
    dock = _dock(viewer, image)
    layer = dock.new_seed_layer()
    assert layer is not None
    pixels = [(2, 3), (10, 17), (23, 29), (0, 0)]
    _paint_under(image, layer, pixels)
    session = dock.session
    labels = session.seed_context(session.grid()).labels(layer.name)
    want = np.zeros((Y, X), dtype=bool)
    want[tuple(np.array(pixels).T)] = True
    np.testing.assert_array_equal(labels == 1, want)


def test_channel_last_seed_layer_shows_on_every_channel(viewer):
    image = viewer.add_image(np.zeros((Y, X, C), np.float32), name="stack",
                             scale=(0.2, 0.2, 1.0), metadata={"spectral_axis_index": 2})
    layer = _dock(viewer, image).new_seed_layer()
    assert layer.data.shape == (Y, X, 1)
    for c in range(C):  # the channel coordinate of every channel falls on its one index
        coords = layer.world_to_data(image.data_to_world(np.array([5.0, 7.0, c])))
        assert int(np.floor(coords[2] + 0.5)) == 0


def test_region_seeds_of_a_setup_come_back_on_a_channel_last_image(viewer, tmp_path):
    from napari_unmix.core.components import ComponentSpec
    from napari_unmix.core.config import AnalysisConfig
    from napari_unmix.core.sources import RoiMask

    image = viewer.add_image(np.random.default_rng(1).random((Y, X, C)).astype(np.float32),
                             name="stack", scale=(0.2, 0.2, 1.0), translate=(3.0, 1.0, 0.0),
                             metadata={"spectral_axis_index": 2})
    mask = np.zeros((Y, X), dtype=bool)
    mask[4:9, 11:20] = True
    cfg = AnalysisConfig(mode="seeded-nmf", n_components=1,
                         components=[ComponentSpec("cell", h_source=RoiMask(mask))])
    dock = _dock(viewer, image)
    notes = dock.setup.load_setup(cfg.save(tmp_path / "setup.json"))
    assert notes == [], notes
    (row,) = dock.session.rows
    labels = dock.session.seed_context(dock.session.grid()).labels(row.source.layer)
    np.testing.assert_array_equal(labels == row.source.label_id, mask)


def _wait(qtbot, job):
    assert job is not None, "the action was refused"
    qtbot.waitUntil(lambda: job.done, timeout=120_000)


def test_suggested_seeds_are_the_suggestions_regions_on_a_channel_last_image(qtbot, viewer):
    from napari_unmix.core.synthetic import make_crs_sample

    stack = np.moveaxis(make_crs_sample().stack[:, :64, :64], 0, -1)  # (Y, X, C)
    image = viewer.add_image(np.ascontiguousarray(stack), name="stack", scale=(0.5, 0.5, 1.0),
                             translate=(2.0, 3.0, 0.0), metadata={"spectral_axis_index": 2})
    dock = _dock(viewer, image)
    _wait(qtbot, dock.diagnostics.suggest())
    qtbot.waitUntil(lambda: not dock.running, timeout=120_000)
    want = dock.diagnostics.suggestion.seeds.labels
    session = dock.session
    got = session.seed_context(session.grid()).labels("suggested seeds")
    np.testing.assert_array_equal(got, want)
