"""The dock's "Runs" panel: the run history, the run shown, the one compared, what a new
run does with earlier maps, and the optional residual map.

It only shows and edits (the decisions are the session's, :mod:`.session_results`):
:meth:`HistoryPanel.set_runs` shows the history, and its signals say what the user
chose.
"""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox

from .run_history import KEEP_CHOICES

__all__ = ["HistoryPanel"]


class HistoryPanel(QGroupBox):
    """Signals: ``show_requested(int)`` (a run number), ``compare_requested(object)``
    (a run number or None), ``keep_changed(str)`` (a value of ``KEEP_CHOICES``)."""

    show_requested = Signal(int)
    compare_requested = Signal(object)
    keep_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Runs", parent)
        self.runs = QComboBox()
        self.runs.setToolTip("The run whose spectra, summary and maps the dock shows, that "
                             "the pixel inspector reads and that 'Use result as seeds' "
                             "takes. Each run's map layers are named 'run N · component'.")
        self.compare = QComboBox()
        self.compare.setToolTip("Draw another run's spectra (dotted) beside the shown run's, "
                                "to compare e.g. a seeded and a random NNMF. With 'keep "
                                "earlier maps', napari's grid mode (View > Grid) shows both "
                                "runs' maps side by side.")
        self.keep = QComboBox()
        for text, value in KEEP_CHOICES.items():
            self.keep.addItem(text, value)
        self.keep.setToolTip("What a new run does with the maps of earlier runs of the same "
                             "image: replace them (default; layers you renamed are always "
                             "kept), or keep them all to compare runs.")
        self.residual = QCheckBox("residual map")
        self.residual.setToolTip("After each NNMF / NNLS run, add a layer 'run N · residual': "
                                 "per pixel, the part of its spectrum the fit leaves "
                                 "unexplained, ||x - w H|| / ||x|| (0: fully explained). "
                                 "Bright spots show a missing component. Off by default.")
        self.inspector = QCheckBox("pixel inspector (click, or hover with Shift)")
        self.inspector.setChecked(True)
        self.inspector.setToolTip("Click a pixel of the canvas (or hover with Shift held) to "
                                  "see in the spectra dock its spectrum, the fit w·H, each "
                                  "component's part and the residual, for the shown run, on "
                                  "the plane the viewer shows. Clicks that paint or draw are "
                                  "the layer's. Default on.")
        lay = QFormLayout(self)
        lay.addRow("shown", self.runs)
        lay.addRow("compare with", self.compare)
        lay.addRow("new runs", self.keep)
        lay.addRow("", self.residual)
        lay.addRow("", self.inspector)
        self._filling = False
        self.runs.currentIndexChanged.connect(self._on_runs)
        self.compare.currentIndexChanged.connect(self._on_compare)
        self.keep.currentIndexChanged.connect(
            lambda *_: self.keep_changed.emit(str(self.keep.currentData())))
        self.set_runs([], None, None)

    def set_runs(self, records, current, compared) -> None:
        """Show the history (``records``: RunRecord list), the run shown and the one
        compared (records or None), without emitting signals."""
        self._filling = True
        try:
            self.runs.clear()
            self.compare.clear()
            self.compare.addItem("none", None)
            for r in records:
                self.runs.addItem(r.label, r.number)
                self.compare.addItem(r.label, r.number)
            if current is not None:
                self.runs.setCurrentIndex(self.runs.findData(current.number))
            i = self.compare.findData(compared.number) if compared is not None else 0
            self.compare.setCurrentIndex(max(i, 0))
        finally:
            self._filling = False
        self.setVisible(True)
        self.runs.setEnabled(bool(records))
        self.compare.setEnabled(len(records) > 1)

    def _on_runs(self, *_):
        if not self._filling and self.runs.currentData() is not None:
            self.show_requested.emit(int(self.runs.currentData()))

    def _on_compare(self, *_):
        if not self._filling:
            self.compare_requested.emit(self.compare.currentData())
