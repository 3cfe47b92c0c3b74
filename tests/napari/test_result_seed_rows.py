"""Rows made with "Use result as seeds" hold their run, and its maps only seed its image.

Two defects of the attack on main (stop 30):

* the rows took their spectra from whatever run was shown: after run 1's layers were
  deleted, rows made from run 1 silently took run 2's spectra (now the dock keeps the
  runs its rows hold, also once they leave the history);
* a run's maps were reused as the starting maps of another image whenever the pixel
  counts matched (a 48 x 48 result on a 24 x 96 image: maps folded into stripes; or
  another image of the same shape, whose pixels hold other things).
"""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari.utils.notifications import notification_manager  # noqa: E402

from napari_unmix._napari.layers import result_layers  # noqa: E402


def _keep_runs(dock):
    dock.history.keep.setCurrentIndex(dock.history.keep.findData("keep"))


def _seeded(dock, max_iter=5):
    f = dock.form
    f.mode.value = "seeded-nmf"
    f.max_iter.value = max_iter
    f.solver.value = "hals"
    f.backend.value = "numpy"


def test_rows_hold_their_run_also_when_it_is_deleted(qtbot, crs_viewer, crs_dock,
                                                          run_dock, quick_nmf):
    viewer, dock = crs_viewer, crs_dock
    _keep_runs(dock)
    quick_nmf(dock, seed=0)
    run_dock(dock)
    first = dock.result
    assert dock.use_result_as_seeds()
    quick_nmf(dock, seed=5)
    dock.form.init.value = "random"  # another fit than run 1's
    run_dock(dock)  # run 2 is shown now
    second = dock.result
    assert not np.allclose(first.H, second.H, rtol=1e-2)
    assert [r.settings().source.run for r in dock.table.rows] == [1, 1, 1]

    # the rows still seed from run 1, although run 2 is shown
    _seeded(dock)
    run_dock(dock)
    np.testing.assert_allclose(dock.result.arrays["H0"], first.H, rtol=1e-5)

    # run 1's layers go away, and so does run 1 from the history: the rows still hold
    # its seeds (they used to take run 2's, the run shown), and say nothing is wrong
    for lyr in [lyr for lyr in result_layers(viewer) if lyr.name.startswith("run 1 ·")]:
        viewer.layers.remove(lyr)
    assert dock.session.history.find(1) is None
    assert [r.warning.text() for r in dock.table.rows] == ["", "", ""]
    run_dock(dock)
    np.testing.assert_allclose(dock.result.arrays["H0"], first.H, rtol=1e-5)
    assert all("W0: fixed-w" in r.report.text() for r in dock.table.rows)  # its own image

    # and once more after that run replaced the earlier seeded maps
    run_dock(dock)
    np.testing.assert_allclose(dock.result.arrays["H0"], first.H, rtol=1e-5)


@pytest.mark.parametrize("other", ["same pixel count", "same shape"])
def test_a_run_s_maps_do_not_seed_another_image(qtbot, crs_viewer, crs_dock, run_dock,
                                                quick_nmf, other):
    viewer, dock = crs_viewer, crs_dock
    quick_nmf(dock)
    run_dock(dock)
    first = dock.result
    image = viewer.layers[0]
    data = np.asarray(image.data)
    c, y, x = data.shape
    # another image with as many pixels: folded to another grid, or a shuffled copy
    data2 = (data.reshape(c, y // 2, 2 * x) if other == "same pixel count"
             else np.ascontiguousarray(data[:, ::-1, :]))
    viewer.add_image(data2, name="other", metadata=dict(image.metadata))
    assert dock.use_result_as_seeds()
    dock.form.image.value = "other"
    _seeded(dock)
    since = len(notification_manager.records)
    run_dock(dock)
    assert dock.result is not first and "Done" in dock.status.text()
    reports = [r.report.text() for r in dock.table.rows]
    assert all("H0: previous-result" in t and "fixed-w" not in t for t in reports), reports
    notes = [str(r.message) for r in notification_manager.records[since:]]
    said = [n for n in notes if "only the spectrum" in n]
    assert len(said) == 3 and all("run 1" in n for n in said), notes

    # on its own image the run's maps are still the starting maps
    dock.show_run(1)
    assert dock.use_result_as_seeds()
    dock.form.image.value = image.name
    run_dock(dock)
    assert all("W0: fixed-w" in r.report.text() for r in dock.table.rows)
