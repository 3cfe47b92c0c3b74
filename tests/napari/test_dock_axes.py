"""Issue 13, problem 3: channel-last stacks are shown on their spatial plane, with
axis labels from the data, and their maps lie on the image's grid.

A ``(Y, X, C)`` cube like the emulsion Raman ``.npz`` (``cube`` + ``wavenumber_cm1``)
opened through the plugin's reader used to show the X-by-wavenumber plane, its maps
as stripes, and sliders labelled ``-3``.
"""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari_unmix._napari.layers import result_layers  # noqa: E402


def _emulsion_like(tmp_path):
    rng = np.random.default_rng(0)
    nu = np.linspace(1010, 1766, 40)
    bands = np.stack([np.exp(-0.5 * ((nu - c) / 25) ** 2) for c in (1100, 1450, 1650)])
    w = rng.random((30, 36, 3))
    cube = w @ bands + 0.01 * rng.random((30, 36, 40))
    path = tmp_path / "emulsion_like.npz"
    np.savez(path, cube=cube, wavenumber_cm1=nu)
    return path


def test_axis_labels_and_the_plane_order_without_a_viewer():
    from napari_unmix._napari.axes import axis_labels, plane_order

    assert axis_labels(3, 0, unit="cm^-1") == ("ν̃", "Y", "X")
    assert axis_labels(3, 2, unit="nm") == ("Y", "X", "λ")
    assert axis_labels(4, 1) == ("Z", "C", "Y", "X")
    assert axis_labels(5, 2, axes="TQCYX", unit="nm") == ("T", "Z", "λ", "Y", "X")
    assert axis_labels(4, 0, axes="QQYX") == ("C", "Z", "Y", "X")
    assert plane_order((0, 1, 2), 3, 3, (0, 1)) == (2, 0, 1)
    assert plane_order((0, 1, 2, 3), 4, 3, (0, 1)) == (0, 3, 1, 2)


def test_a_channel_last_cube_shows_its_spatial_plane_and_maps(qtbot, make_napari_viewer,
                                                               tmp_path, run_dock):
    viewer = make_napari_viewer(strict_qt=True)
    (layer,) = viewer.open(_emulsion_like(tmp_path), plugin="napari-unmix")
    assert layer.metadata["spectral_axis_index"] == 2
    assert tuple(layer.axis_labels) == ("Y", "X", "ν̃")
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    assert dock.form.image.value == layer.name
    # the viewer shows Y against X, the slider runs along the wavenumbers
    assert tuple(viewer.dims.displayed) == (0, 1)
    assert tuple(viewer.dims.axis_labels) == ("Y", "X", "ν̃")
    f = dock.form
    f.mode.value = "nmf"
    f.n_components.value = 3
    f.max_iter.value = 50
    run_dock(dock)
    maps = result_layers(viewer, source_image=layer.name)
    assert len(maps) == 3
    for m in maps:
        assert m.data.shape == (30, 36, 1)
        assert tuple(m.axis_labels) == tuple(layer.axis_labels)
        # the map is shown on the plane the slider is on: its one channel spans them all
        for step in (0, 20, 39):
            viewer.dims.set_current_step(2, step)
            assert int(np.round(m.world_to_data(viewer.dims.point)[2])) == 0
        np.testing.assert_allclose(m.data[..., 0].ravel(), dock.result.W[:, maps.index(m)])


def test_sliders_of_the_sample_and_a_z_series_are_labelled(crs_viewer, make_napari_viewer):
    assert tuple(crs_viewer.dims.axis_labels) == ("ν̃", "Y", "X")
    viewer = make_napari_viewer(strict_qt=True)
    viewer.add_image(np.random.default_rng(1).random((3, 8, 16, 16)), name="zcyx")
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    dock.form.spectral_axis.value = 1
    assert tuple(viewer.dims.axis_labels) == ("Z", "C", "Y", "X")
    assert tuple(viewer.dims.displayed) == (2, 3)
