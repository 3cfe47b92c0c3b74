"""Issue 13, problem 1: the layout.  Run, Cancel and the progress bar stay in reach.

Checked through the widgets' geometry in a real window: after a seed preview opens
the spectra dock, the Run button lies inside the unmixing dock's visible area (not
clipped by a scroll area, not squeezed out) and is enabled, at 1400 x 900 and at
1920 x 1080; the component table shows every row (no scroll area inside the dock's
scroll area).
"""

from __future__ import annotations

import pytest

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from qtpy.QtCore import QPoint, QRect  # noqa: E402
from qtpy.QtWidgets import QDockWidget, QScrollArea  # noqa: E402


def _dock_of(widget) -> QDockWidget:
    w = widget
    while w is not None and not isinstance(w, QDockWidget):
        w = w.parent()
    assert w is not None, "the widget is not in a dock"
    return w


def _fully_visible(widget) -> bool:
    """The widget is shown whole: its visible region is its whole rectangle, and that
    rectangle lies inside its dock's rectangle."""
    if not widget.isVisible():
        return False
    region = widget.visibleRegion().boundingRect()
    if region.size() != widget.size():
        return False
    dock = _dock_of(widget)
    rect = QRect(widget.mapTo(dock, QPoint(0, 0)), widget.size())
    return dock.rect().contains(rect)


def _gaussian_preview(qtbot, dock):
    """Add, choose "Gaussian resonance", give it a centre on the sample's axis and
    wait for the automatic preview (it opens the spectra dock)."""
    row = dock.table.add_row()
    row.kind.setCurrentIndex(row.kind.findData("gaussian"))
    row.editor.fields["center"].setValue(2900.0)
    qtbot.waitUntil(lambda: dock.spectra_plot is not None
                    and bool(dock.spectra_plot.content.previews), timeout=5000)
    qtbot.wait(300)


@pytest.mark.parametrize("size", [(1400, 900), (1920, 1080)])
def test_run_stays_visible_and_enabled_after_a_seed_preview(qtbot, crs_viewer, crs_dock, size):
    window = crs_viewer.window._qt_window
    window.resize(*size)
    window.show()
    qtbot.wait(300)
    dock = crs_dock
    for w in (dock.run_button, dock.cancel_button, dock.progress):
        assert _fully_visible(w), f"{w!r} is not visible at {size} before a preview"
    _gaussian_preview(qtbot, dock)
    for w in (dock.run_button, dock.cancel_button, dock.progress):
        assert _fully_visible(w), f"{w!r} is not visible at {size} after the preview"
    assert dock.run_button.isEnabled()
    # the spectra dock opened at a sensible height and did not squeeze the dock
    mine, plot = _dock_of(dock), _dock_of(dock.spectra_plot)
    assert plot.isVisible()
    assert mine.height() >= 0.5 * (mine.height() + plot.height())
    assert plot.height() >= 200
    assert dock.form.image.native.isVisible() and dock.form.mode.native.isVisible()


def test_the_component_table_grows_with_its_rows(qtbot, crs_viewer, crs_dock):
    window = crs_viewer.window._qt_window
    window.resize(1400, 900)
    window.show()
    table = crs_dock.table
    assert not table.findChildren(QScrollArea), "a scroll area inside the dock's scroll area"
    for _ in range(3):
        table.add_row()
    qtbot.wait(300)
    for row in table.rows:
        top = row.mapTo(table, QPoint(0, 0)).y()
        assert top >= 0 and top + row.height() <= table.height(), "a row is cut off"


def test_rows_ask_the_window_for_a_new_layout_only_when_they_need_more_width(
        qtbot, crs_viewer, crs_dock):
    # every geometry change of the dock's scroll area makes napari's main window lay
    # out its docks and canvas again (~0.1 s): rows of the same width (the content
    # scrolls) must not cause one; a wider content must, or it would be clipped
    from qtpy.QtWidgets import QLabel

    from napari_unmix._napari.dock_layout import VerticalScroll

    window = crs_viewer.window._qt_window
    window.resize(1400, 900)
    window.show()
    (scroll,) = crs_dock.findChildren(VerticalScroll)
    crs_dock.table.add_row()
    qtbot.wait(100)
    asked = []
    scroll.updateGeometry = lambda: asked.append(True)  # what the filter calls
    for _ in range(3):
        crs_dock.table.add_row()
    qtbot.wait(100)
    assert asked == [], "rows of the same width relaid out napari's window"
    wide = QLabel("x" * 400)  # content that needs more width than the dock has
    crs_dock.table.parentWidget().layout().addWidget(wide)
    qtbot.waitUntil(lambda: bool(asked), timeout=2000)
    del scroll.updateGeometry
    scroll.updateGeometry()
    qtbot.wait(100)
    assert scroll.minimumSizeHint().width() > wide.sizeHint().width()
