"""Issue 13: "Export figure…": the shown run's composite with a legend and a scale bar.

The composite is made from the run's visible map layers as the canvas shows them (each
through its colormap between its contrast limits, added), the legend names every
component in its colour, and the scale bar is in the image's physical units (from the
layers' scale and units), as PNG at the chosen resolution or SVG.
"""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari_unmix._napari.figure_export import (  # noqa: E402
    canvas_composite,
    export_figure,
    run_map_layers,
)
from napari_unmix.io.figures import composite_figure  # noqa: E402


def test_export_refuses_without_a_run(crs_dock, tmp_path):
    with pytest.raises(ValueError, match="run an analysis first"):
        export_figure(crs_dock, tmp_path / "f.png")
    assert crs_dock.export_button.toolTip() and crs_dock.export_dpi.value() == 300


def test_the_exported_figure_has_the_legend_the_scale_bar_and_the_resolution(
        qtbot, crs_viewer, crs_dock, run_dock, tmp_path, quick_nmf):
    viewer, dock = crs_viewer, crs_dock
    image = viewer.layers[0]
    image.scale = (1.0, 0.5, 0.5)  # 128 px x 0.5 um = 64 um wide
    image.units = ("pixel", "micrometer", "micrometer")
    quick_nmf(dock)
    run_dock(dock)
    layers = run_map_layers(viewer, dock.session.current)
    assert [lyr.name for lyr in layers] == ["run 1 · C1", "run 1 · C2", "run 1 · C3"]
    assert all(str(u) == "micrometer" for u in layers[0].units[-2:])

    rgb, legend = canvas_composite(layers, viewer.dims.point)
    assert rgb.shape == (128, 128, 3) and 0 <= rgb.min() and rgb.max() <= 1
    assert [e.name for e in legend] == ["C1", "C2", "C3"]
    assert [e.color for e in legend] == [lyr.metadata["color"] for lyr in layers]
    # one component alone is drawn in its own colour, as its layer shows it
    lone, _ = canvas_composite(layers[:1], viewer.dims.point)
    brightest = np.unravel_index(np.argmax(lone.sum(-1)), lone.shape[:2])
    np.testing.assert_allclose(lone[brightest], layers[0].colormap.map([1.0])[0, :3], atol=0.01)

    fig = composite_figure(rgb, legend, pixel_size=0.5, unit="micrometer")
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["C1", "C2", "C3"]
    bar = next(t for t in fig.axes[0].texts if t.get_gid() == "scale-text")
    assert bar.get_text() == "10 µm"  # a fifth of 64 um, rounded down to 1-2-5

    png = export_figure(dock, tmp_path / "run1.png", dpi=120)
    img = matplotlib.image.imread(png)
    assert img.shape[1] == 720  # 6 in x 120 dpi
    svg = export_figure(dock, tmp_path / "run1.svg")
    assert svg.suffix == ".svg" and "<svg" in svg.read_text()
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        export_figure(dock, tmp_path / "run1.tif")


def test_hidden_maps_are_left_out_of_the_figure(qtbot, crs_viewer, crs_dock, run_dock, quick_nmf):
    viewer, dock = crs_viewer, crs_dock
    quick_nmf(dock, k=2)
    run_dock(dock)
    viewer.layers["run 1 · C2"].visible = False
    layers = run_map_layers(viewer, dock.session.current)
    assert [lyr.name for lyr in layers] == ["run 1 · C1"]


def test_the_button_draws_the_figure_off_the_gui_thread(qtbot, crs_dock, run_dock, tmp_path,
                                                        monkeypatch, quick_nmf):
    """The drawing runs in a worker; the status line says when it is written, and a
    bad suffix comes back as a refusal, not a traceback."""
    import threading

    from qtpy.QtWidgets import QFileDialog

    import napari_unmix._napari.figure_export as fe

    dock = crs_dock
    quick_nmf(dock, k=2)
    run_dock(dock)
    threads = []
    original = fe.write_composite_figure

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(fe, "write_composite_figure", recording)
    for name, expect in (("button.png", "Exported the figure to"), ("button.tif", "Refused:")):
        target = str(tmp_path / name)
        monkeypatch.setattr(QFileDialog, "getSaveFileName",
                            staticmethod(lambda *a, t=target: (t, "")))
        dock.export_button.click()
        assert not dock.export_button.isEnabled()
        qtbot.waitUntil(lambda: dock.export_button.isEnabled(), timeout=30_000)
        assert dock.status.text().startswith(expect), dock.status.text()
    assert (tmp_path / "button.png").exists() and not (tmp_path / "button.tif").exists()
    assert threads and all(t is not threading.main_thread() for t in threads)


def test_a_channel_last_stack_exports_its_whole_plane_with_a_physical_scale_bar(
        qtbot, crs_viewer, crs_dock, run_dock, tmp_path, monkeypatch, quick_nmf):
    """A (Y, X, C) stack's maps keep a length-1 spectral axis last, (Y, X, 1): the figure
    is still their Y-X plane (it was one row, (X, 1)) with the bar in µm (it had none)."""
    import napari_unmix._napari.figure_export as fe

    viewer, dock = crs_viewer, crs_dock
    cyx = np.asarray(viewer.layers[0].data)[:, :40, :56]
    viewer.add_image(np.moveaxis(cyx, 0, -1), name="yxc", scale=(0.5, 0.25, 1.0),
                     units=("micrometer", "micrometer", "pixel"))
    dock.form.image.value = "yxc"
    dock.form.spectral_axis.value = 2
    quick_nmf(dock)
    run_dock(dock)
    layers = run_map_layers(viewer, dock.session.current)
    assert layers[0].data.shape == (40, 56, 1)
    rgb, _ = canvas_composite(layers, viewer.dims.point)
    assert rgb.shape == (40, 56, 3)
    drawn = {}

    def recording(path, rgb, legend, **kwargs):
        drawn.update(kwargs, shape=rgb.shape)
        return path

    monkeypatch.setattr(fe, "write_composite_figure", recording)
    export_figure(dock, tmp_path / "yxc.png")
    assert drawn["shape"] == (40, 56, 3)
    assert drawn["pixel_size"] == 0.25 and drawn["unit"] == "micrometer"
    # its pixels are twice as tall as wide (0.5 um x 0.25 um): drawn so, not square
    assert drawn["pixel_aspect"] == pytest.approx(2.0)
