"""Issue 13, latency: a finished run's maps reach the viewer one layer per pass of
Qt's event loop.

napari builds a new layer's visual and controls in about 0.1 s on a slow machine, so
three maps added in one go held the GUI thread for over 300 ms.  Now the dock adds
one map per pass (input and redraws are served between them), keeps Run disabled
until the last one, and a failure while the maps come is shown as a failure.
"""

from __future__ import annotations

import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari.utils.notifications import NotificationSeverity, notification_manager  # noqa: E402
from qtpy.QtCore import QTimer  # noqa: E402

from napari_unmix._napari.layers import result_layers  # noqa: E402


def test_each_map_layer_comes_in_its_own_pass_and_run_waits_for_the_last(
        qtbot, crs_viewer, crs_dock, run_dock, quick_nmf):
    viewer, dock = crs_viewer, crs_dock
    quick_nmf(dock)
    marks = []

    def inserted(event):
        marks.append(("layer", event.value.name, dock.run_button.isEnabled(), dock.running))
        QTimer.singleShot(0, lambda: marks.append(("pass",)))

    viewer.layers.events.inserted.connect(inserted)
    run_dock(dock)
    layers = [m for m in marks if m[0] == "layer"]
    assert [m[1] for m in layers] == ["run 1 · C1", "run 1 · C2", "run 1 · C3"]
    # a pass of the event loop between two layers (the timer posted with one fired
    # before the next was made), and Run stays disabled until the last
    firsts = [marks.index(m) for m in layers]
    assert all(marks[i + 1] == ("pass",) for i in firsts[:-1])
    assert all(not enabled and running for _, _, enabled, running in layers)
    assert dock.run_button.isEnabled() and not dock.running
    assert dock.status.text().startswith("Done: run 1")
    assert dock.result is not None and dock.result.n_components == 3


def test_a_failure_while_the_maps_come_is_shown_and_the_dock_is_ready(
        qtbot, crs_viewer, crs_dock, run_dock, quick_nmf, monkeypatch):
    viewer, dock = crs_viewer, crs_dock
    quick_nmf(dock, k=2)
    real = dock.session.publish_steps

    def failing(request, value):
        steps = real(request, value)
        next(steps)  # the first map is in
        yield
        raise OSError("the image layer went away")

    monkeypatch.setattr(dock.session, "publish_steps", failing)
    since = len(notification_manager.records)
    run_dock(dock)
    assert dock.status.text().startswith("Failed to show the result")
    assert "went away" in dock.status.text()
    errors = [str(r.message) for r in notification_manager.records[since:]
              if r.severity == NotificationSeverity.ERROR]
    assert any("went away" in e for e in errors)
    assert dock.run_button.isEnabled() and dock.progress.format() == "idle"
    assert dock.result is None  # the half-shown run is not the dock's result
    # the next run works
    monkeypatch.setattr(dock.session, "publish_steps", real)
    run_dock(dock)
    assert dock.status.text().startswith("Done")
    assert len(result_layers(viewer)) == 2
