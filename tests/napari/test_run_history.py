"""Issue 13, problem 5: runs are kept apart, named by run, and can be compared.

Every run used to delete every earlier map layer of the image, even layers the user
had renamed to keep them.  Now each run's layers are named ``run N · component``; a
new run replaces the earlier maps by default, but never a renamed layer; "keep
earlier maps" keeps them all; any run left can be shown, and compared with the one
shown (both sets of spectra in the spectra dock).
"""

from __future__ import annotations

import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari_unmix._napari.layers import RESULT_KEY, result_layers  # noqa: E402


def _names(viewer):
    return [lyr.name for lyr in result_layers(viewer)]


def test_runs_are_named_replaced_but_renamed_layers_stay(qtbot, crs_viewer, crs_dock,
                                                         run_dock, quick_nmf):
    viewer, dock = crs_viewer, crs_dock
    quick_nmf(dock)
    run_dock(dock)
    assert _names(viewer) == ["run 1 · C1", "run 1 · C2", "run 1 · C3"]
    viewer.layers["run 1 · C2"].name = "keep this"
    quick_nmf(dock, seed=1)
    run_dock(dock)
    names = _names(viewer)
    assert "keep this" in names, "a layer the user renamed was deleted"
    assert [n for n in names if n != "keep this"] == ["run 2 · C1", "run 2 · C2",
                                                      "run 2 · C3"]
    assert "run 2" in dock.status.text()


def test_kept_runs_can_be_shown_and_compared(qtbot, crs_viewer, crs_dock, run_dock, quick_nmf):
    viewer, dock = crs_viewer, crs_dock
    idx = dock.history.keep.findData("keep")
    dock.history.keep.setCurrentIndex(idx)
    quick_nmf(dock, k=2)
    run_dock(dock)
    first = dock.result
    quick_nmf(dock, k=3, seed=3)
    run_dock(dock)
    names = _names(viewer)
    assert names == ["run 1 · C1", "run 1 · C2", "run 2 · C1", "run 2 · C2", "run 2 · C3"]
    runs = dock.history.runs
    assert [runs.itemData(i) for i in range(runs.count())] == [1, 2]
    # show run 1 again: it is the dock's result (spectra, seeds, summary)
    runs.setCurrentIndex(runs.findData(1))
    assert dock.result is first
    assert [c.label for c in dock.spectra_plot.content.curves] == ["C1", "C2"]
    assert dock.summary.text().startswith("run 1")
    # compare with run 2: its spectra are drawn beside, dotted
    cmp = dock.history.compare
    cmp.setCurrentIndex(cmp.findData(2))
    content = dock.spectra_plot.content
    assert [c.label for c in content.compare] == ["C1 (run 2)", "C2 (run 2)", "C3 (run 2)"]
    # deleting every layer of run 1 forgets it, and run 2 is shown
    for name in ("run 1 · C1", "run 1 · C2"):
        viewer.layers.remove(name)
    assert [runs.itemData(i) for i in range(runs.count())] == [2]
    assert dock.result.n_components == 3


def test_a_renamed_image_keeps_its_runs(qtbot, crs_viewer, crs_dock, run_dock, quick_nmf):
    # runs hold their image by identity: renaming it keeps "replace" and the inspector
    dock = crs_dock
    dock.history.residual.setChecked(True)
    quick_nmf(dock, 3)
    run_dock(dock)
    image = crs_viewer.layers[0]
    image.name = "renamed stack"
    dock.reset_choices()
    assert dock.form.image.value == "renamed stack"
    view = dock.inspect_at((0.0, 10.0, 12.0))
    assert view is not None and view.index == (10, 12)
    run_dock(dock)  # replaces run 1's maps
    assert [lyr.name for lyr in crs_viewer.layers] == [
        "renamed stack", "run 2 · C1", "run 2 · C2", "run 2 · C3", "run 2 · residual"]
    view = dock.inspect_at((0.0, 10.0, 12.0))
    assert view is not None and dock.session.current.number == 2
    assert dock.session.result_image == "renamed stack"


def test_two_docks_on_one_viewer_keep_their_own_maps(qtbot, crs_viewer, crs_dock, run_dock,
                                                     quick_nmf):
    """A second dock's run used to take over the first dock's map layers of the same
    image (their data became its maps while the first dock's run still named them):
    each dock now replaces only the maps it made."""
    from napari_unmix._napari.widget import UnmixWidget

    viewer, first = crs_viewer, crs_dock
    second = UnmixWidget(viewer)
    viewer.window.add_dock_widget(second, name="second unmixing dock")
    quick_nmf(first, k=2)
    run_dock(first)
    quick_nmf(second, k=3)
    run_dock(second)

    def owned(dock):
        uids = set(dock.session.current.layer_uids)
        return [lyr for lyr in result_layers(viewer) if str(lyr.unique_id) in uids]

    assert len(result_layers(viewer)) == 5
    for dock, k in ((first, 2), (second, 3)):
        layers = owned(dock)
        assert len(layers) == k
        assert all(lyr.metadata[RESULT_KEY] is dock.result for lyr in layers)
    quick_nmf(first, k=2, seed=1)
    run_dock(first)  # a rerun replaces the first dock's own maps only
    assert len(result_layers(viewer)) == 5 and len(owned(second)) == 3


def test_a_run_is_compared_on_its_own_spectral_axis(qtbot, crs_viewer, crs_dock, run_dock,
                                                     quick_nmf):
    """Comparing runs of two images drew the other run's spectra at the shown run's
    channel positions: a 2800-3100 cm^-1 run on a 400-700 nm axis.  Now a run on another
    axis in the same unit is drawn at its own positions; one in another unit is not
    drawn, and the title says why."""
    import numpy as np

    viewer, dock = crs_viewer, crs_dock
    image = viewer.layers[0]
    n = image.data.shape[0]
    for name, (lo, hi) in (("nm wide", (400.0, 700.0)), ("nm narrow", (500.0, 600.0))):
        viewer.add_image(np.asarray(image.data), name=name,
                         metadata={"spectral_axis_index": 0, "spectral_unit": "nm",
                                   "spectral_values": np.linspace(lo, hi, n)})
    dock.history.keep.setCurrentIndex(dock.history.keep.findData("keep"))
    for name in (image.name, "nm wide", "nm narrow"):  # runs 1 (cm^-1), 2 and 3 (nm)
        dock.form.image.value = name
        quick_nmf(dock, k=2)
        run_dock(dock)
    compare = dock.history.compare
    compare.setCurrentIndex(compare.findData(2))
    content = dock.spectra_plot.content
    assert [c.label for c in content.compare] == ["C1 (run 2)", "C2 (run 2)"]
    for curve in content.compare:
        np.testing.assert_allclose(curve.x, np.linspace(400.0, 700.0, n))
    compare.setCurrentIndex(compare.findData(1))
    content = dock.spectra_plot.content
    assert content.compare == []
    assert "run 1 not drawn: its spectral axis is in cm^-1, this one in nm" in content.title
