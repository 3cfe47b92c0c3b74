"""Issue 13, problem 2: seeds never silently come from the wrong place.

* Rows made from Labels layer A hold A: when A is deleted they stay on A, are marked
  invalid, and Run is refused naming A (they are never moved to layer B).  A renamed
  layer is followed.  The seed report names the layer the seeds came from.
* Labels of a layer that lie off the image's grid are reported by id, and so are
  negative values (no label ids), which make no component either.
* "New seed layer" makes a 2-D Labels layer on the image's Y-X grid.
"""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari.utils.notifications import NotificationSeverity, notification_manager  # noqa: E402

from napari_unmix.core.synthetic import make_crs_sample  # noqa: E402


def _notes(since, severity=None):
    recs = notification_manager.records[since:]
    return [str(r.message) for r in recs if severity is None or r.severity == severity]


def _labels(sample, shift=0):
    """Three painted squares over the lipid, protein and water regions."""
    lab = np.zeros(sample.stack.shape[1:], dtype=np.uint8)
    maps = sample.W.reshape(*lab.shape, -1)
    for i in range(3):
        y, x = np.unravel_index(int(np.argmax(maps[..., i])), lab.shape)
        y, x = np.clip([y + shift, x + shift], 3, np.array(lab.shape) - 4)
        lab[y - 2:y + 3, x - 2:x + 3] = i + 1
    return lab


@pytest.fixture
def sample():
    return make_crs_sample()  # what crs_viewer shows


def _fast(dock):
    f = dock.form
    f.mode.value = "seeded-nmf"
    f.max_iter.value = 50
    f.solver.value = "hals"
    f.backend.value = "numpy"


def test_rows_keep_their_layer_when_it_is_deleted_and_never_move_to_another(
        qtbot, crs_viewer, crs_dock, sample, run_dock):
    viewer, dock = crs_viewer, crs_dock
    viewer.add_labels(_labels(sample), name="A")
    viewer.add_labels(_labels(sample, shift=1), name="B")
    dock.reset_choices()
    assert dock.components_from_layer("A") == 3
    viewer.layers.remove("A")
    qtbot.wait(50)
    rows = dock.table.settings()
    assert [r.source.layer for r in rows] == ["A", "A", "A"], "the rows moved to another layer"
    assert all(r.warning.isVisibleTo(r) and "'A'" in r.warning.text() for r in dock.table.rows)
    _fast(dock)
    since = len(notification_manager.records)
    assert dock.run() is None
    errors = _notes(since, NotificationSeverity.ERROR)
    assert errors and "'A' was deleted" in errors[-1]
    assert dock.result is None
    # a layer of the same name is another layer: still refused
    viewer.add_labels(_labels(sample), name="A")
    qtbot.wait(50)
    since = len(notification_manager.records)
    assert dock.run() is None
    assert "replaced" in _notes(since, NotificationSeverity.ERROR)[-1]


def test_a_renamed_layer_is_followed_and_the_report_names_the_layer(
        qtbot, crs_viewer, crs_dock, sample, run_dock):
    viewer, dock = crs_viewer, crs_dock
    layer = viewer.add_labels(_labels(sample), name="B")
    dock.reset_choices()
    assert dock.components_from_layer("B") == 3
    layer.name = "painted"
    qtbot.wait(50)
    _fast(dock)
    run_dock(dock)
    assert dock.result is not None and dock.result.n_components == 3
    for row in dock.table.rows:
        assert "layer 'painted'" in row.report.text()
        assert not row.warning.isVisibleTo(row)


def _rows_from(viewer, dock, labels, name, *, rows):
    """Add ``labels`` as a Labels layer, make the rows from it (asserting ``rows`` of
    them) and return the warnings shown meanwhile."""
    viewer.add_labels(labels, name=name)
    dock.reset_choices()
    since = len(notification_manager.records)
    assert dock.components_from_layer(name) == rows
    return _notes(since, NotificationSeverity.WARNING)


def test_labels_off_the_image_are_reported_by_id(qtbot, crs_viewer, crs_dock):
    viewer, dock = crs_viewer, crs_dock
    big = np.zeros((256, 256), dtype=np.uint8)
    big[10:20, 10:20] = 1
    big[150:160, 150:160] = 2  # beyond the 128 x 128 image
    big[200:210, 30:40] = 3
    warnings = _rows_from(viewer, dock, big, "big", rows=1)
    assert any("2, 3" in w and "outside" in w for w in warnings), warnings


def test_negative_label_values_are_reported_not_dropped_silently(qtbot, crs_viewer, crs_dock):
    viewer, dock = crs_viewer, crs_dock
    lab = np.zeros((128, 128), dtype=np.int32)
    lab[10:20, 10:20] = 1
    lab[40:50, 40:50] = -1  # "no label" in some tools; -1 and -5 make no component
    lab[70:80, 70:80] = -5
    warnings = _rows_from(viewer, dock, lab, "signed", rows=1)
    assert any("negative value(s) -5, -1" in w and "'signed'" in w for w in warnings), warnings


def test_a_new_seed_layer_is_2d_on_the_images_grid(qtbot, crs_viewer, crs_dock):
    viewer, dock = crs_viewer, crs_dock
    viewer.layers[0].scale = (1.0, 0.5, 0.5)
    dock.new_layer_button.click()
    layer = viewer.layers[-1]
    assert isinstance(layer, napari.layers.Labels)
    assert layer.data.shape == (128, 128) and layer.ndim == 2
    np.testing.assert_allclose(layer.scale, (0.5, 0.5))
    assert dock.rows_layer.currentText() == layer.name
    assert viewer.layers.selection.active is layer and layer.mode == "paint"
