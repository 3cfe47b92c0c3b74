"""A z / t series result saved from the dock ("Save" of its maps as a result folder)
opens again in the dock as the series it is.

Opening it raised ``AttributeError: 'SeriesSummary' object has no attribute
'preprocessing'`` (inside the dock's result event), after its map layers were added; its
3-D maps were not placed on the image's planes (napari lined their first axis up with
the spectral axis), and the pixel inspector had no image to read.
"""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari_unmix._napari.sample_data import sample_layer_data  # noqa: E402
from napari_unmix.core.synthetic import make_crs_sample_4d  # noqa: E402
from napari_unmix.io import write_analysis_outputs  # noqa: E402


def test_a_saved_series_opens_as_a_series_on_the_image(qtbot, make_napari_viewer, run_dock,
                                                       tmp_path):
    viewer = make_napari_viewer(strict_qt=True)
    sample = make_crs_sample_4d(n_planes=3, shape=(24, 24), n_channels=16, random_state=0)
    data, kwargs, _ = sample_layer_data(sample, "zs")[0]   # (Z, C, Y, X)
    viewer.add_image(data, **kwargs)
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    dock.series_panel.series.value = "per-plane"
    f = dock.form
    f.n_components.value, f.max_iter.value = 3, 30
    run_dock(dock)
    live = dock.series_result
    write_analysis_outputs(tmp_path / "saved", dock.result, (3, 24, 24))
    for lyr in [lyr for lyr in viewer.layers if lyr.name.startswith("run 1")]:
        viewer.layers.remove(lyr)
    record = dock.setup.open_result(tmp_path / "saved")
    assert record is not None, dock.status.text()
    assert record.series_result is not None and record.series_result.strategy == "per-slice"
    assert "relative error per plane" in dock.summary.text()  # the series summary
    maps = [lyr for lyr in viewer.layers if lyr.name.startswith("saved: ")]
    assert [lyr.data.shape for lyr in maps] == [(3, 1, 24, 24)] * 3  # on the image's planes
    view = dock.inspect_at((2.0, 0.0, 7.0, 9.0))   # plane 2, pixel (7, 9)
    assert view is not None and view.plane == 2
    plane = live.plane_result(2)
    np.testing.assert_allclose(view.fit, plane.W[7 * 24 + 9] @ plane.H, rtol=1e-5)


def test_an_opened_result_over_a_channel_last_image_is_inspected_on_its_axis(
        qtbot, make_napari_viewer, run_dock, tmp_path):
    """The opened run took the spectral axis 0: a click on a (Y, X, C) image raised
    ``ValueError: operands could not be broadcast together with shapes (20,) (16,)``."""
    from napari_unmix.core.synthetic import make_crs_sample

    viewer = make_napari_viewer(strict_qt=True)
    sample = make_crs_sample(shape=(20, 24), n_channels=16)
    cube = np.moveaxis(sample.stack, 0, -1).copy()   # (Y, X, C)
    viewer.add_image(cube, name="cl", metadata={"spectral_axis_index": 2})
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    f = dock.form
    f.mode.value, f.n_components.value, f.max_iter.value = "nmf", 3, 30
    run_dock(dock)
    live = dock.result
    write_analysis_outputs(tmp_path / "saved", live, (20, 24))
    assert dock.setup.open_result(tmp_path / "saved") is not None
    view = dock.inspect_at((7.0, 9.0, 0.0))
    np.testing.assert_allclose(view.raw, cube[7, 9])
    np.testing.assert_allclose(view.fit, live.W[7 * 24 + 9] @ live.H, rtol=1e-5)
