"""Issue 13, problem 8 (colours) and "PCA shown as PCA".

* Components made from a Labels layer take the colours the labels are painted in,
  in the rows and in the maps.
* Every PCA score map has its own diverging colormap whose positive end is the
  colour of its loading curve; the loadings' y-axis says "loading", the scree axis
  counts whole components, and the legend sits outside the axes.
* Seed previews are drawn in their own panel, apart from the last result's curves.
"""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from matplotlib.colors import to_hex  # noqa: E402

from napari_unmix._napari.layers import result_layers  # noqa: E402
from napari_unmix.core.colors import hex_to_rgb  # noqa: E402


def _top(layer):
    return np.asarray(layer.colormap.map(np.array([1.0]))[0][:3])


def _bottom(layer):
    return np.asarray(layer.colormap.map(np.array([0.0]))[0][:3])


def _labels(shape):
    lab = np.zeros(shape, dtype=np.uint8)
    lab[10:20, 10:20] = 1
    lab[60:70, 60:70] = 2
    lab[100:110, 20:30] = 3
    return lab


def test_components_take_the_colours_the_labels_are_painted_in(qtbot, crs_viewer, crs_dock,
                                                               run_dock):
    viewer, dock = crs_viewer, crs_dock
    layer = viewer.add_labels(_labels((128, 128)), name="painted")
    dock.reset_choices()
    assert dock.components_from_layer("painted") == 3
    painted = [to_hex(np.asarray(layer.get_color(i))[:3]).upper() for i in (1, 2, 3)]
    assert [r.color for r in dock.table.settings()] == painted
    f = dock.form
    f.max_iter.value = 30
    f.solver.value = "hals"
    run_dock(dock)
    for lyr, color in zip(result_layers(viewer), painted, strict=True):
        np.testing.assert_allclose(_top(lyr), hex_to_rgb(color), atol=1e-6)


def test_pca_maps_match_their_loading_curves(qtbot, crs_viewer, crs_dock, run_dock):
    viewer, dock = crs_viewer, crs_dock
    viewer.window._qt_window.show()  # the plot draws when shown
    f = dock.form
    f.mode.value = "pca"
    f.n_components.value = 4
    run_dock(dock)
    fig = dock.spectra_plot.figure
    # the spectra dock opens with the result and draws on its show event, which a
    # slow machine delivers a little after the job is done
    qtbot.waitUntil(lambda: len(fig.axes) == 2, timeout=5000)
    maps = result_layers(viewer)
    curves = dock.spectra_plot.content.curves
    assert len(maps) == len(curves) == 4
    tops = [tuple(np.round(_top(m), 4)) for m in maps]
    assert len(set(tops)) == 4, "every PCA map has the same colormap"
    for m, curve in zip(maps, curves, strict=True):
        np.testing.assert_allclose(_top(m), hex_to_rgb(curve.color), atol=1e-6)
        assert not np.allclose(_bottom(m), _top(m))  # diverging
        assert m.contrast_limits[0] == -m.contrast_limits[1]
    loadings, scree = fig.axes[0], fig.axes[1]
    assert loadings.get_ylabel() == "loading"
    ticks = [t for t in scree.get_xticks() if scree.get_xlim()[0] <= t <= scree.get_xlim()[1]]
    assert all(float(t).is_integer() for t in ticks), ticks
    fig.canvas.draw()
    legend = loadings.get_legend().get_window_extent()
    assert legend.x0 >= loadings.get_window_extent().x1 - 1, "the legend covers the axes"


def test_seed_previews_are_drawn_apart_from_the_last_result(qtbot, crs_viewer, crs_dock,
                                                           run_dock):
    dock = crs_dock
    crs_viewer.window._qt_window.show()  # the plot draws when shown
    dock.form.mode.value = "nmf"
    dock.form.max_iter.value = 30
    dock.form.n_components.value = 2
    run_dock(dock)  # random NNMF: C1, C2 in the first palette colours
    row = dock.table.add_row()
    row.kind.setCurrentIndex(row.kind.findData("gaussian"))
    row.editor.fields["center"].setValue(2900.0)
    assert dock.preview_seeds(notify=False)
    fig = dock.spectra_plot.figure
    # drawn on the spectra dock's show event, which may come after the call returns
    qtbot.waitUntil(lambda: "Seed spectra (preview)" in [ax.get_title() for ax in fig.axes],
                    timeout=5000)
    titled = {ax.get_title(): ax for ax in fig.axes}
    preview = titled["Seed spectra (preview)"]
    result = next(ax for t, ax in titled.items() if t != "Seed spectra (preview)")
    assert [ln.get_label() for ln in preview.get_lines()] == ["C1 (seed)"]
    assert "C1 (seed)" not in [ln.get_label() for ln in result.get_lines()]
    assert {ln.get_label() for ln in result.get_lines()} >= {"C1", "C2"}
