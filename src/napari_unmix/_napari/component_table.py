"""The dock's component table: one small row widget per component.

A row edits a :class:`~.seed_inputs.RowSettings` (name, colour, spectrum source,
background / use-subtracted / lock flags) and shows the seed report of the last
run.  The source's parameters sit on a page that changes with the source kind:

* Shapes ROI: the layer, and the shape (1, 2 ... or "all": their union);
* label: the Labels layer and the label id;
* spectrum file: the path and the column (0-based index or header name);
* Gaussian resonance: centre, FWHM (spectral-axis units) and amplitude (counts);
* flat (non-resonant): the level of a constant spectrum (counts), and whether the
  row, when locked, takes the offsets of the other fitted spectra;
* previous result: which of the last result's components.

Layer menus hold names; the dock refreshes them when layers change.  Nothing here
reads layers or runs anything: :func:`~.seed_inputs.build_components` does that.
"""

from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.colors import DEFAULT_COLORS
from .seed_inputs import SOURCE_KINDS, RowSettings, SourceChoice

__all__ = ["ComponentRow", "ComponentTable"]


def _set_items(combo: QComboBox, items, keep=None) -> None:
    """Replace a combo's items, keeping the current text when it is still offered."""
    keep = combo.currentText() if keep is None else keep
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(list(items))
    idx = combo.findText(keep) if keep else -1
    combo.setCurrentIndex(idx if idx >= 0 else (0 if combo.count() else -1))
    combo.blockSignals(False)


def _spin(lo, hi, value, decimals=3):
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setValue(value)
    return box


class ComponentRow(QFrame):
    """Editor of one component."""

    changed = Signal()
    remove_requested = Signal(object)

    def __init__(self, settings: RowSettings, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._color = settings.color
        self._build()
        self.set_settings(settings)
        self._connect()

    # -- layout --------------------------------------------------------------------
    def _build(self):
        self.name = QLineEdit()
        self.name.setPlaceholderText("component name")
        self.color_button = QPushButton()
        self.color_button.setFixedWidth(28)
        self.color_button.setToolTip("Component colour (click to change)")
        self.kind = QComboBox()
        for key, text in SOURCE_KINDS.items():
            self.kind.addItem(text, key)
        self.kind.setToolTip("Where the component's spectrum seed (H0) comes from")
        self.remove_button = QToolButton()
        self.remove_button.setText("✕")
        self.remove_button.setToolTip("Remove this component")
        top = QHBoxLayout()
        top.addWidget(self.color_button)
        top.addWidget(self.name, 2)
        top.addWidget(self.kind, 2)
        top.addWidget(self.remove_button)

        self.pages = QStackedWidget()
        self._pages: dict[str, int] = {}
        # none
        self._add_page("none", QWidget())
        # shapes
        self.shapes_layer, self.shape_index = QComboBox(), QSpinBox()
        self.shape_index.setRange(0, 100_000)
        self.shape_index.setSpecialValueText("all shapes")
        self.shape_index.setToolTip("Shape number in the layer (1 = first); 'all shapes' takes "
                                    "their union")
        self._add_page("shapes", self._form(("layer", self.shapes_layer),
                                            ("shape", self.shape_index)))
        # labels
        self.labels_layer, self.label_id = QComboBox(), QSpinBox()
        self.label_id.setRange(1, 2**31 - 1)
        self._add_page("labels", self._form(("layer", self.labels_layer),
                                            ("label", self.label_id)))
        # file
        self.path = QLineEdit()
        self.path.setPlaceholderText("spectra file (.csv, .txt)")
        self.browse = QToolButton()
        self.browse.setText("…")
        file_row = QWidget()
        fl = QHBoxLayout(file_row)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addWidget(self.path)
        fl.addWidget(self.browse)
        self.column = QLineEdit("0")
        self.column.setToolTip("Spectrum column: 0-based index (axis column not counted) or "
                               "header name")
        self._add_page("file", self._form(("file", file_row), ("column", self.column)))
        # gaussian
        self.center = _spin(-1e9, 1e9, 0.0, 2)
        self.width = _spin(1e-6, 1e9, 10.0, 3)
        self.amplitude = _spin(0.0, 1e12, 1.0, 4)
        self._add_page("gaussian", self._form(("centre", self.center), ("FWHM", self.width),
                                              ("amplitude", self.amplitude)))
        # flat
        self.level = _spin(1e-12, 1e12, 1.0, 4)
        self.level.setToolTip("Value of the constant spectrum on every channel (data units); "
                              "lock the row to keep an offset out of the other spectra")
        self.absorb_offsets = QCheckBox("take the other spectra's offsets")
        self.absorb_offsets.setChecked(True)
        self.absorb_offsets.setToolTip(
            "When this row is locked: after seeded NNMF, lower every other fitted spectrum "
            "to zero minimum and add what it lost to this row's map (the fit itself does "
            "not change)")
        self._add_page("flat", self._form(("level", self.level), ("", self.absorb_offsets)))
        # previous
        self.previous = QComboBox()
        self._add_page("previous", self._form(("component", self.previous)))

        self.background = QCheckBox("background")
        self.background.setToolTip("A background component: seeds from the raw data")
        self.use_subtracted = QCheckBox("subtracted data")
        self.use_subtracted.setToolTip("Estimate seeds from the processed (background-"
                                       "subtracted, smoothed) data instead of the raw data")
        self.locked = QCheckBox("lock")
        self.locked.setToolTip("Keep this spectrum fixed during seeded NNMF")
        flags = QHBoxLayout()
        for w in (self.background, self.use_subtracted, self.locked):
            flags.addWidget(w)
        flags.addStretch(1)
        self.report = QLabel()
        self.report.setWordWrap(True)
        self.report.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.report.setVisible(False)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(2)
        lay.addLayout(top)
        lay.addWidget(self.pages)
        lay.addLayout(flags)
        lay.addWidget(self.report)

    def _add_page(self, key, widget):
        self._pages[key] = self.pages.addWidget(widget)

    @staticmethod
    def _form(*pairs):
        w = QWidget()
        form = QFormLayout(w)
        form.setContentsMargins(0, 0, 0, 0)
        for label, field in pairs:
            form.addRow(label, field)
        return w

    # -- wiring --------------------------------------------------------------------
    def _connect(self):
        self.kind.currentIndexChanged.connect(self._on_kind)
        self.color_button.clicked.connect(self._pick_color)
        self.browse.clicked.connect(self._browse)
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self))
        for w in (self.name, self.path, self.column):
            w.editingFinished.connect(self.changed)
        for w in (self.shapes_layer, self.labels_layer, self.previous):
            w.currentIndexChanged.connect(self.changed)
        for w in (self.shape_index, self.label_id, self.center, self.width, self.amplitude,
                  self.level):
            w.valueChanged.connect(self.changed)
        for w in (self.background, self.use_subtracted, self.locked, self.absorb_offsets):
            w.toggled.connect(self.changed)

    def _on_kind(self, *_):
        self.pages.setCurrentIndex(self._pages[self.kind.currentData()])
        self.changed.emit()

    def _pick_color(self):
        chosen = QColorDialog.getColor(QColor(self._color), self, "Component colour")
        if chosen.isValid():
            self.set_color(chosen.name())
            self.changed.emit()

    def _browse(self):
        path, _ = QFileDialog.getOpenFileName(self, "Spectrum file", self.path.text(),
                                              "Spectra (*.csv *.txt *.tsv *.dat);;All files (*)")
        if path:
            self.path.setText(path)
            self.changed.emit()

    # -- state ---------------------------------------------------------------------
    def set_color(self, color: str) -> None:
        self._color = QColor(color).name().upper()
        self.color_button.setStyleSheet(f"background-color: {self._color};")

    def set_layer_choices(self, shapes, labels) -> None:
        _set_items(self.shapes_layer, shapes)
        _set_items(self.labels_layer, labels)

    def set_previous_components(self, names) -> None:
        _set_items(self.previous, names)

    def settings(self) -> RowSettings:
        kind = self.kind.currentData()
        idx = self.shape_index.value()
        src = SourceChoice(
            kind=kind,
            layer=(self.shapes_layer.currentText() if kind == "shapes" else
                   self.labels_layer.currentText() if kind == "labels" else "") or None,
            shape_index=None if idx == 0 else idx - 1,
            label_id=self.label_id.value(), path=self.path.text().strip(),
            column=self.column.text().strip() or "0", center=self.center.value(),
            width=self.width.value(), amplitude=self.amplitude.value(),
            level=self.level.value(), absorb_offsets=self.absorb_offsets.isChecked(),
            component=self.previous.currentText() or None)
        return RowSettings(name=self.name.text().strip(), color=self._color, source=src,
                           background=self.background.isChecked(),
                           use_subtracted=self.use_subtracted.isChecked(),
                           locked=self.locked.isChecked())

    def set_settings(self, s: RowSettings) -> None:
        widgets = (self.name, self.kind, self.shapes_layer, self.shape_index, self.labels_layer,
                   self.label_id, self.path, self.column, self.center, self.width,
                   self.amplitude, self.level, self.absorb_offsets, self.previous,
                   self.background, self.use_subtracted, self.locked)
        for w in widgets:
            w.blockSignals(True)
        src = s.source
        self.name.setText(s.name)
        self.set_color(s.color)
        self.kind.setCurrentIndex(self.kind.findData(src.kind))
        self.pages.setCurrentIndex(self._pages[src.kind])
        if src.layer:
            combo = self.labels_layer if src.kind == "labels" else self.shapes_layer
            if combo.findText(src.layer) < 0:
                combo.addItem(src.layer)
            combo.setCurrentIndex(combo.findText(src.layer))
        self.shape_index.setValue(0 if src.shape_index is None else src.shape_index + 1)
        self.label_id.setValue(int(src.label_id))
        self.path.setText(src.path)
        self.column.setText(str(src.column))
        self.center.setValue(float(src.center))
        self.width.setValue(float(src.width))
        self.amplitude.setValue(float(src.amplitude))
        self.level.setValue(float(src.level))
        self.absorb_offsets.setChecked(bool(src.absorb_offsets))
        if src.component:
            if self.previous.findText(src.component) < 0:
                self.previous.addItem(src.component)
            self.previous.setCurrentIndex(self.previous.findText(src.component))
        self.background.setChecked(s.background)
        self.use_subtracted.setChecked(s.use_subtracted)
        self.locked.setChecked(s.locked)
        for w in widgets:
            w.blockSignals(False)

    def set_report(self, text: str = "", tooltip: str = "") -> None:
        self.report.setText(text)
        self.report.setToolTip(tooltip)
        self.report.setVisible(bool(text))


class ComponentTable(QWidget):
    """The list of component rows, in a scroll area.

    Signals
    -------
    changed
        Any row was added, removed or edited.
    """

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[ComponentRow] = []
        self._shapes: list[str] = []
        self._labels: list[str] = []
        self._previous: list[str] = []
        self._box = QWidget()
        self._list = QVBoxLayout(self._box)
        self._list.setContentsMargins(0, 0, 0, 0)
        self._list.setSpacing(3)
        self._list.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._box)
        scroll.setMinimumHeight(210)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(scroll)

    def _next_name(self) -> str:
        taken = {r.name.text() for r in self.rows}
        i = len(self.rows) + 1
        while f"C{i}" in taken:
            i += 1
        return f"C{i}"

    def add_row(self, settings: RowSettings | None = None) -> ComponentRow:
        """Append a row (a default one: next name and palette colour, no source)."""
        if settings is None:
            settings = RowSettings(name=self._next_name(),
                                   color=DEFAULT_COLORS[len(self.rows) % len(DEFAULT_COLORS)])
        row = ComponentRow(settings)
        row.set_layer_choices(self._shapes, self._labels)
        row.set_previous_components(self._previous)
        row.set_settings(settings)  # again, now that the menus are filled
        row.changed.connect(self.changed)
        row.remove_requested.connect(self.remove_row)
        self._list.insertWidget(len(self.rows), row)
        self.rows.append(row)
        self.changed.emit()
        return row

    def remove_row(self, row: ComponentRow) -> None:
        if row in self.rows:
            self.rows.remove(row)
            self._list.removeWidget(row)
            row.setParent(None)
            row.deleteLater()
            self.changed.emit()

    def clear(self) -> None:
        for row in list(self.rows):
            self.rows.remove(row)
            self._list.removeWidget(row)
            row.setParent(None)
            row.deleteLater()
        self.changed.emit()

    def set_rows(self, rows) -> None:
        """Replace all rows."""
        self.blockSignals(True)
        try:
            self.clear()
            for s in rows:
                self.add_row(s)
        finally:
            self.blockSignals(False)
        self.changed.emit()

    def settings(self) -> list[RowSettings]:
        return [r.settings() for r in self.rows]

    def set_layer_choices(self, shapes, labels) -> None:
        self._shapes, self._labels = list(shapes), list(labels)
        for r in self.rows:
            r.set_layer_choices(self._shapes, self._labels)

    def set_previous_components(self, names) -> None:
        self._previous = list(names)
        for r in self.rows:
            r.set_previous_components(self._previous)

    def set_reports(self, reports: dict) -> None:
        """Show ``{name: (text, tooltip)}`` under the rows; rows not listed are cleared."""
        for r in self.rows:
            text, tip = reports.get(r.name.text().strip(), ("", ""))
            r.set_report(text, tip)
