"""The dock's component table: one small row widget per component.

A row edits a :class:`~.seed_inputs.RowSettings` (name, colour, spectrum source,
background / use-subtracted / lock flags, its own trust in its seed) and shows the
seed report of the last run (with how far the fit moved its spectrum).  Its source
menu holds the core's source kinds (:func:`~.seed_inputs.source_kinds`); the
source's parameters sit on a page of :mod:`.source_editors`.

Layer menus hold names (the dock refreshes them).  Nothing here reads layers or runs
anything: :func:`~.seed_inputs.build_components` does that.
"""

from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.colors import default_colors
from ..core.sources import SOURCES, PreviousResult, Spectrum
from .seed_inputs import RowSettings, SourceChoice
from .source_editors import SourceEditor, editor_fields, menu_kinds

__all__ = ["TRUST_DEFAULT_TEXT", "ComponentRow", "ComponentTable"]

#: What the per-row trust box shows when the row takes the analysis' trust.
TRUST_DEFAULT_TEXT = "trust: default"

class ComponentRow(QFrame):
    """Editor of one component: ``kind`` is the source menu (item data: the kind),
    ``editors`` the page of every kind; ``changed`` when the user edits the row,
    ``remove_requested(row)`` when its remove button is clicked."""

    changed = Signal()
    remove_requested = Signal(object)

    def __init__(self, settings: RowSettings, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._color = settings.color
        self._build()
        self.set_settings(settings)
        self._connect()

    def _build(self):
        self.name = QLineEdit()
        self.name.setPlaceholderText("component name")
        self.name.setToolTip("The component's name: its map layer is 'run N · name'.")
        self.color_button = QPushButton()
        self.color_button.setFixedWidth(28)
        self.color_button.setToolTip("Component colour (click to change)")
        self.kind = QComboBox()
        self.kind.setToolTip("Where the component's spectrum seed (H0) comes from: a region "
                             "you drew or painted, a spectrum file, a model, the last result; "
                             "none (default): the spectrum fallback estimates it.")
        self.pages = QStackedWidget()
        self.editors: dict[str, SourceEditor] = {}
        for key, text in menu_kinds().items():
            doc = (SOURCES[key].__doc__ or "").strip() if key in SOURCES else ""
            self.kind.addItem(text, key)  # its tooltip: the first line of the source's doc
            self.kind.setItemData(self.kind.count() - 1, doc.split("\n")[0],
                                  Qt.ItemDataRole.ToolTipRole)
            self.editors[key] = SourceEditor(editor_fields(key))
            self.pages.addWidget(self.editors[key])
        self._embedded = None   # a spectrum from a loaded setup, without its file
        self._run = None        # previous result: the run the row holds (see SourceChoice)
        self._offered_run = None  # the run whose components the menu offers
        self._file_hint = self.editors[Spectrum.kind].fields["path"].placeholderText()
        self.remove_button = QToolButton()
        self.remove_button.setText("✕")
        self.remove_button.setToolTip("Remove this component")
        top = QHBoxLayout()
        for w, stretch in ((self.color_button, 0), (self.name, 2), (self.kind, 2),
                           (self.remove_button, 0)):
            top.addWidget(w, stretch)

        self.background = QCheckBox("background")
        self.background.setToolTip("A background component: seeds from the raw data")
        self.use_subtracted = QCheckBox("subtracted data")
        self.use_subtracted.setToolTip("Estimate seeds from the processed (background-"
                                       "subtracted, smoothed) data instead of the raw data")
        self.locked = QCheckBox("lock")
        self.locked.setToolTip("Keep this spectrum fixed during seeded NNMF")
        self.trust = QDoubleSpinBox()
        self.trust.setRange(-0.1, 1000.0)
        self.trust.setSingleStep(0.1)
        self.trust.setDecimals(2)
        self.trust.setSpecialValueText(TRUST_DEFAULT_TEXT)  # shown at the minimum
        self.trust.setValue(-0.1)
        self.trust.setToolTip(
            "Seeded NNMF: how strongly this spectrum is pulled towards its seed. 0: the "
            "data alone decide; 1: the seed weighs as much as the data; more keeps it "
            "closer. 'default' takes the trust of the settings.")
        flags = QHBoxLayout()
        for w in (self.background, self.use_subtracted, self.locked, self.trust):
            flags.addWidget(w)
        flags.addStretch(1)
        self.report = QLabel()
        self.report.setWordWrap(True)
        self.report.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.report.setVisible(False)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #e8a33d;")
        self.warning.setVisible(False)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(2)
        lay.addLayout(top)
        lay.addWidget(self.pages)
        lay.addLayout(flags)
        lay.addWidget(self.report)
        lay.addWidget(self.warning)

    def _connect(self):
        self.kind.currentIndexChanged.connect(self._on_kind)
        self.color_button.clicked.connect(self._pick_color)
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self))
        self.name.editingFinished.connect(self.changed)
        for editor in self.editors.values():
            editor.changed.connect(self.changed)
        for w in (self.background, self.use_subtracted, self.locked):
            w.toggled.connect(self.changed)
        self.trust.valueChanged.connect(lambda *_: self.changed.emit())
        self.locked.toggled.connect(lambda on: self.trust.setEnabled(not on))

    def _on_kind(self, *_):
        self.pages.setCurrentWidget(self.editor)
        if self.kind.currentData() == PreviousResult.kind and self._run is None:
            self._run = self._offered_run   # the row holds the run it was made from
        self.changed.emit()

    def _pick_color(self):
        chosen = QColorDialog.getColor(QColor(self._color), self, "Component colour")
        if chosen.isValid():
            self.set_color(chosen.name())
            self.changed.emit()

    @property
    def editor(self) -> SourceEditor:
        """The page of the current source kind."""
        return self.editors[self.kind.currentData()]

    def set_color(self, color: str) -> None:
        """Show ``color`` (any Qt colour name) on the colour button."""
        self._color = QColor(color).name().upper()
        self.color_button.setStyleSheet(f"background-color: {self._color};")

    def set_layer_choices(self, shapes, labels) -> None:
        """Offer these Shapes and Labels layers in the layer menus."""
        for editor in self.editors.values():
            editor.set_menu("shapes-layer", shapes)
            editor.set_menu("labels-layer", labels)

    def set_previous_components(self, names, run=None) -> None:
        """Offer these components of run ``run`` (the one shown).  A row holding
        another run keeps offering that run's components."""
        self._offered_run = run
        if self._run is not None and run is not None and self._run != run:
            return
        for editor in self.editors.values():
            editor.set_menu("component", names)

    def settings(self) -> RowSettings:
        """The row's settings; the source holds the values of the current kind's page."""
        src = SourceChoice(kind=self.kind.currentData())
        self.editor.read(src)
        if src.kind == Spectrum.kind and not src.path:
            src.embedded = self._embedded   # a setup's spectrum, until a file is chosen
        if src.kind == PreviousResult.kind:
            src.run = self._run
        return RowSettings(name=self.name.text().strip(), color=self._color, source=src,
                           background=self.background.isChecked(),
                           use_subtracted=self.use_subtracted.isChecked(),
                           locked=self.locked.isChecked(), anchor=self.trust_value())

    def _show_embedded(self, spectrum) -> None:
        """Hold a spectrum embedded in a setup; its file box says so while empty."""
        self._embedded = spectrum
        line = self.editors[Spectrum.kind].fields["path"]
        if spectrum is None:
            line.setPlaceholderText(self._file_hint)
            return
        what = f"'{spectrum.label}'" if spectrum.label else "a spectrum"
        line.setPlaceholderText(f"{what} from the setup (choose a file to replace it)")

    def trust_value(self) -> float | None:
        """The row's own trust in its seed, or None (the analysis' trust)."""
        v = float(self.trust.value())
        return None if v <= self.trust.minimum() else v

    def set_settings(self, s: RowSettings) -> None:
        """Show ``s`` (without emitting ``changed``): its source on the page of its kind
        (the other pages keep their values); ValueError for a kind not offered."""
        index = self.kind.findData(s.source.kind)
        if index < 0:
            raise ValueError(f"The component table offers no source kind {s.source.kind!r}.")
        self.blockSignals(True)
        try:
            self.name.setText(s.name)
            self.set_color(s.color)
            self.kind.setCurrentIndex(index)
            self.pages.setCurrentWidget(self.editor)
            self.editor.write(s.source)
            self._show_embedded(s.source.embedded if s.source.kind == Spectrum.kind
                                else None)
            self._run = s.source.run if s.source.kind == PreviousResult.kind else None
            self.background.setChecked(s.background)
            self.use_subtracted.setChecked(s.use_subtracted)
            self.locked.setChecked(s.locked)
            self.trust.setValue(self.trust.minimum() if s.anchor is None else s.anchor)
            self.trust.setEnabled(not s.locked)
        finally:
            self.blockSignals(False)

    def set_warning(self, text: str = "") -> None:
        """Say what is wrong with the row now (e.g. its layer was deleted); hidden
        when empty."""
        self.warning.setText(f"⚠ {text}" if text else "")
        self.warning.setVisible(bool(text))

    def set_report(self, text: str = "", tooltip: str = "") -> None:
        """Show the seed report of the last run under the row (hidden when empty)."""
        self.report.setText(text)
        self.report.setToolTip(tooltip)
        self.report.setVisible(bool(text))


class ComponentTable(QWidget):
    """The list of component rows; ``changed`` when any row was added, removed or
    edited.

    The table grows with its rows (the dock around it scrolls): a scroll area inside
    the dock's scroll area would show one and a half rows."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[ComponentRow] = []
        self._shapes, self._labels, self._previous = [], [], []
        self._previous_run = None
        self._list = QVBoxLayout(self)
        self._list.setContentsMargins(0, 0, 0, 0)
        self._list.setSpacing(3)
        self._empty = QLabel("No components yet: press Add, or make one per label or "
                             "shape with 'Components from layer'.")
        self._empty.setWordWrap(True)
        self._list.addWidget(self._empty)

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
                                   color=default_colors(len(self.rows) + 1)[-1])
        row = ComponentRow(settings)
        row.set_layer_choices(self._shapes, self._labels)
        row.set_previous_components(self._previous, self._previous_run)
        row.set_settings(settings)  # again, now that the menus are filled
        row.changed.connect(self.changed)
        row.remove_requested.connect(self.remove_row)
        self._list.insertWidget(len(self.rows), row)
        self.rows.append(row)
        self._empty.setVisible(False)
        self.changed.emit()
        return row

    def _drop(self, row: ComponentRow) -> None:
        self.rows.remove(row)
        self._list.removeWidget(row)
        row.setParent(None)
        row.deleteLater()
        self._empty.setVisible(not self.rows)

    def remove_row(self, row: ComponentRow) -> None:
        """Remove ``row`` (nothing when it is not a row of the table)."""
        if row in self.rows:
            self._drop(row)
            self.changed.emit()

    def clear(self) -> None:
        """Remove every row."""
        for row in list(self.rows):
            self._drop(row)
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
        """The settings of every row, in order."""
        return [r.settings() for r in self.rows]

    def set_layer_choices(self, shapes, labels) -> None:
        """Offer these Shapes and Labels layers in every row (and new ones): names,
        or ``(name, uid)`` pairs so that the rows hold their layer by identity."""
        self._shapes, self._labels = list(shapes), list(labels)
        for r in self.rows:
            r.set_layer_choices(self._shapes, self._labels)

    def set_previous_components(self, names, run=None) -> None:
        """Offer these components of run ``run`` (the one shown) in every row (and new
        ones); rows that hold another run keep theirs."""
        self._previous, self._previous_run = list(names), run
        for r in self.rows:
            r.set_previous_components(self._previous, run)

    def set_warnings(self, warnings: dict) -> None:
        """Show ``{row index: text}`` on the rows; rows not listed are cleared."""
        for i, r in enumerate(self.rows):
            r.set_warning(warnings.get(i, ""))

    def set_reports(self, reports: dict) -> None:
        """Show ``{name: (text, tooltip)}`` under the rows; rows not listed are cleared."""
        for r in self.rows:
            text, tip = reports.get(r.name.text().strip(), ("", ""))
            r.set_report(text, tip)
