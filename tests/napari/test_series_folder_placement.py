"""A per-plane z / t series result folder opened through napari's File > Open lies on
the (Z, C, Y, X) image it was computed from, as the dock's own maps do.

The reader made 3-D (Z, Y, X) maps of it: napari lines a layer's axes up with the
image's last ones, so the maps' Z axis lay on the image's channel axis (the channel
slider moved through the planes, the Z slider did nothing), and the image's
translate and axis labels were lost.  The maps now keep a length-1 axis where the
stack had its spectral axis, with the dock's scale, translate and axis labels.
"""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari_unmix._napari.axes import axis_labels  # noqa: E402
from napari_unmix._napari.layers import placement  # noqa: E402
from napari_unmix._napari.sample_data import sample_layer_data  # noqa: E402
from napari_unmix.core.synthetic import make_crs_sample_4d  # noqa: E402
from napari_unmix.io import write_analysis_outputs  # noqa: E402


def _maps(layers):
    return [lyr for lyr in layers if lyr.metadata.get("component_index") is not None]


def _shown(viewer, layer, z):
    """The plane ``layer`` shows with the viewer's Z slider (axis 0) on plane ``z``."""
    viewer.dims.set_current_step(0, z)
    return np.asarray(layer._data_view)


def test_a_dock_series_saved_and_opened_lies_on_the_image_as_the_dock_maps(
        qtbot, make_napari_viewer, run_dock, tmp_path):
    viewer = make_napari_viewer(strict_qt=True)
    sample = make_crs_sample_4d(n_planes=3, shape=(16, 18), n_channels=12, random_state=0)
    data, kwargs, _ = sample_layer_data(sample, "zs")[0]   # (Z, C, Y, X)
    image = viewer.add_image(data, **kwargs, scale=(2.0, 1.0, 0.5, 0.5),
                             translate=(10.0, 0.0, 3.0, 4.0),
                             units=("um", "pixel", "um", "um"))
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    dock.series_panel.series.value = "per-plane"
    dock.form.n_components.value, dock.form.max_iter.value = 3, 20
    run_dock(dock)
    sr = dock.series_result
    ours = _maps(viewer.layers)
    assert [lyr.data.shape for lyr in ours] == [(3, 1, 16, 18)] * 3
    napari.save_layers(str(tmp_path / "saved"), ours, plugin="napari-unmix")
    opened = _maps(viewer.open(str(tmp_path / "saved"), plugin="napari-unmix"))
    assert len(opened) == 3
    for mine, theirs in zip(ours, opened, strict=True):
        assert theirs.data.shape == mine.data.shape
        np.testing.assert_allclose(theirs.scale, mine.scale)
        np.testing.assert_allclose(theirs.translate, mine.translate)
        assert tuple(theirs.axis_labels) == tuple(image.axis_labels)
        assert tuple(theirs.units) == tuple(mine.units)
    for z in range(3):   # one Z slider moves image, the dock's maps and the opened maps
        for i, lyr in enumerate(opened):
            np.testing.assert_allclose(_shown(viewer, lyr, z), sr.maps[i, z], rtol=1e-5)
            np.testing.assert_allclose(_shown(viewer, ours[i], z), sr.maps[i, z], rtol=1e-5)
        c = image.world_to_data(viewer.dims.point)[1]
        np.testing.assert_array_equal(_shown(viewer, image, z), data[z, round(c)])


def test_a_library_series_folder_opens_on_the_image_planes(make_napari_viewer, tmp_path,
                                                           small_series):
    """unmix_series + write_analysis_outputs, no dock: the folder knows from the series'
    params where the stack's spectral axis was."""
    sr = small_series("per-slice")   # a (3, 12, 8, 10) stack, spectral axis 1
    sample = make_crs_sample_4d(n_planes=3, shape=(8, 10), n_channels=12, random_state=0)
    write_analysis_outputs(tmp_path / "res", sr.as_result(), (3, 8, 10),
                           pixel_size=((2.0, 0.5, 0.5), ("um", "um", "um")))
    viewer = make_napari_viewer(strict_qt=True)
    # the stack as the series saw it: no spectral values (channel numbers, axis "C")
    image = viewer.add_image(sample.stack, axis_labels=axis_labels(4, 1),
                             scale=(2.0, 1.0, 0.5, 0.5), units=("um", "pixel", "um", "um"))
    opened = _maps(viewer.open(str(tmp_path / "res"), plugin="napari-unmix"))
    want, keep_axis = placement(image, 1)   # where the dock puts maps of this image
    assert keep_axis
    for i, lyr in enumerate(opened):
        assert lyr.data.shape == (3, 1, 8, 10)
        np.testing.assert_allclose(lyr.scale, want["scale"])          # (2, 12, 0.5, 0.5)
        np.testing.assert_allclose(lyr.translate, want["translate"])  # (0, 5.5, 0, 0)
        assert tuple(lyr.axis_labels) == tuple(image.axis_labels)
        for z in range(3):
            np.testing.assert_allclose(_shown(viewer, lyr, z), sr.maps[i, z], rtol=1e-5)


def test_maps_of_a_channel_last_stack_open_on_their_plane_and_say_how_to_place_them(
        tmp_path, caplog):
    """A (Y, X, C) stack's maps get no length-1 axis (napari would show X by it)."""
    import logging

    from napari_unmix._napari.reader import read_layers
    from napari_unmix.core.result import UnmixResult
    from napari_unmix.io import StackLayout

    rng = np.random.default_rng(0)
    res = UnmixResult(W=rng.random((20, 2)), H=rng.random((2, 6)), mode="nmf",
                      backend="numpy", device="cpu", n_iter=1, reconstruction_err=0.1)
    write_analysis_outputs(tmp_path / "cl", res, (4, 5),
                           stack_layout=StackLayout(spectral_axis=2, origin=(1.0, 2.0)))
    with caplog.at_level(logging.INFO, logger="napari_unmix._napari.reader"):
        layers = read_layers(str(tmp_path / "cl"))
    assert [d.shape for d, _, _ in layers] == [(4, 5)] * 2
    assert layers[0][1]["translate"] == (1.0, 2.0)
    assert layers[0][1]["axis_labels"] == ("Y", "X")
    assert "among its last two" in caplog.text and "Open result" in caplog.text
