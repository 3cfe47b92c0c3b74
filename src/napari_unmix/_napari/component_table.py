"""The dock's component table: one small row widget per component.

A row edits a :class:`~.seed_inputs.RowSettings` (name, colour, spectrum source,
background / use-subtracted / lock flags) and shows the seed report of the last
run.  Its source menu holds the core's source kinds
(:func:`~.seed_inputs.source_kinds`); the source's parameters sit on a page, a
:class:`SourceEditor` built from the kind's :class:`EditorField` list in
:data:`EDITORS` (Shapes ROI: layer and shape, or "all"; label: Labels layer and
id; spectrum file: path and column; Gaussian: centre, FWHM, amplitude; flat:
level, taking the others' offsets; previous result: a component).  A registered
source without an entry gets a generic page, one widget per plain field of its
dataclass (:func:`~.seed_inputs.plain_fields`), kept in ``SourceChoice.params``.

Layer menus hold names (the dock refreshes them).  Nothing here reads layers or runs
anything: :func:`~.seed_inputs.build_components` does that.
"""

from __future__ import annotations

from dataclasses import dataclass

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
from ..core.sources import SOURCES, Flat, Gaussian, PreviousResult, RoiLabel, RoiMask, Spectrum
from .seed_inputs import NONE_KIND, RowSettings, SourceChoice, plain_fields, source_kinds

__all__ = ["EDITORS", "MENU_TYPES", "ComponentRow", "ComponentTable", "EditorField",
           "SourceEditor", "editor_fields", "menu_kinds", "register_editor"]

#: Field types that are a spectra file, or menus of Shapes / Labels layers, last components.
MENU_TYPES = ("path", "shapes-layer", "labels-layer", "component")


@dataclass(frozen=True)
class EditorField:
    """One widget of the page of a source kind.

    ``name`` is the :class:`SourceChoice` attribute it edits (with ``param``: the
    key in ``SourceChoice.params``), ``label`` its label.  ``type``: ``float`` /
    ``int`` (a spin box of range ``low`` .. ``high``, ``decimals``), ``bool`` (a
    check box with ``text``), ``str`` (a line edit, placeholder ``text``) or one of
    :data:`MENU_TYPES`.  ``default``: the value of a ``param`` the choice lacks, and
    what an empty ``str`` reads as.  ``none_text``: an ``int`` that may be ``None``
    is shown as 0 with this text (``i`` as ``i + 1``).
    """

    name: str
    label: str
    type: object
    default: object = None
    low: float = -1e12
    high: float = 1e12
    decimals: int = 4
    text: str = ""
    tooltip: str = ""
    none_text: str = ""
    param: bool = False

    def get(self, choice: SourceChoice):
        """What the field's widget shows of ``choice``."""
        value = choice.params.get(self.name, self.default) if self.param else \
            getattr(choice, self.name)
        if self.none_text:
            return 0 if value is None else int(value) + 1
        return self.type(value) if self.type in (float, int, bool, str) else value

    def put(self, choice: SourceChoice, value) -> None:
        """Store the widget's ``value`` in ``choice``."""
        if self.none_text:
            value = None if value == 0 else int(value) - 1
        elif self.type is str and not value and self.default is not None:
            value = self.default
        if self.param:
            choice.params[self.name] = value
        else:
            setattr(choice, self.name, value)


#: The fields of the editor of every source kind with a dedicated page.
EDITORS: dict[str, tuple[EditorField, ...]] = {NONE_KIND: ()}


def register_editor(kind: str, *fields: EditorField) -> None:
    """Give source kind ``kind`` a page with these fields."""
    EDITORS[kind] = tuple(fields)


register_editor(
    RoiMask.kind, EditorField("layer", "layer", "shapes-layer"),
    EditorField("shape_index", "shape", int, low=0, high=100_000, none_text="all shapes",
                tooltip="Shape number in the layer (1 = first); 'all shapes' takes their "
                        "union"))
register_editor(RoiLabel.kind, EditorField("layer", "layer", "labels-layer"),
                EditorField("label_id", "label", int, low=1, high=2**31 - 1))
register_editor(
    Spectrum.kind, EditorField("path", "file", "path", text="spectra file (.csv, .txt)"),
    EditorField("column", "column", str, default="0",
                tooltip="Spectrum column: 0-based index (axis column not counted) or header "
                        "name"))
register_editor(Gaussian.kind,
                EditorField("center", "centre", float, low=-1e9, high=1e9, decimals=2),
                EditorField("width", "FWHM", float, low=1e-6, high=1e9, decimals=3),
                EditorField("amplitude", "amplitude", float, low=0.0))
register_editor(
    Flat.kind,
    EditorField("level", "level", float, low=1e-12,
                tooltip="Value of the constant spectrum on every channel (data units); lock "
                        "the row to keep an offset out of the other spectra"),
    EditorField("absorb_offsets", "", bool, text="take the other spectra's offsets",
                tooltip="When this row is locked: after seeded NNMF, lower every other "
                        "fitted spectrum to zero minimum and add what it lost to this row's "
                        "map (the fit itself does not change)"))
register_editor(PreviousResult.kind, EditorField("component", "component", "component"))


def editor_fields(kind: str) -> tuple[EditorField, ...] | None:
    """The fields of the page of ``kind``: its :data:`EDITORS` entry, else the generic
    fields of the source class (``None`` when it has no plain fields to build from)."""
    if kind in EDITORS:
        return EDITORS[kind]
    specs = plain_fields(SOURCES[kind]) if kind in SOURCES else None
    if specs is None:
        return None
    return tuple(EditorField(p.name, p.name.replace("_", " "), p.type, default=p.default,
                             decimals=6, param=True) for p in specs)


def menu_kinds() -> dict[str, str]:
    """The kinds of the source menu and their texts: those of
    :func:`~.seed_inputs.source_kinds` that have a page."""
    return {k: text for k, text in source_kinds().items() if editor_fields(k) is not None}


# -- the page of a source kind ------------------------------------------------------------
def _choose(combo: QComboBox, name) -> None:
    """Make ``name`` the combo's item (added when it is not offered yet, so it is kept)."""
    if name:
        if combo.findText(name) < 0:
            combo.addItem(name)
        combo.setCurrentIndex(combo.findText(name))


class SourceEditor(QWidget):
    """The page of one source kind: a form with a widget per :class:`EditorField`.

    ``fields`` (a sequence of EditorField) becomes the attribute ``fields``: the
    widget of every field, by name.  ``changed`` is emitted when the user edits a
    field (not by :meth:`write`).
    """

    changed = Signal()

    def __init__(self, fields=(), parent=None):
        super().__init__(parent)
        self.specs = tuple(fields)
        self.fields: dict[str, QWidget] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self._access = {}  # name -> (get, set) of the widget's value
        for f in self.specs:
            w, shown = self._widget(f)
            w.setToolTip(f.tooltip)
            self.fields[f.name] = w
            form.addRow(f.label, shown)
        self.write(SourceChoice())

    def _widget(self, f: EditorField):
        """The widget of field ``f``, and what the form shows (the widget, or a row
        holding it)."""
        if f.type is bool:
            w = QCheckBox(f.text)
            signal, get, put = w.toggled, w.isChecked, w.setChecked
        elif f.type in (int, float):
            w = QSpinBox() if f.type is int else QDoubleSpinBox()
            if f.type is int:
                w.setRange(int(max(f.low, -2**31)), int(min(f.high, 2**31 - 1)))
                w.setSpecialValueText(f.none_text)
            else:
                w.setDecimals(f.decimals)
                w.setRange(f.low, f.high)
            signal, get, put = w.valueChanged, w.value, w.setValue
        elif f.type in MENU_TYPES and f.type != "path":
            w = QComboBox()
            signal, get = w.currentIndexChanged, lambda: w.currentText() or None
            put = lambda name: _choose(w, name)  # noqa: E731
        else:
            w = QLineEdit(placeholderText=f.text)
            signal, get = w.editingFinished, lambda: w.text().strip()
            put = lambda text: w.setText(str(text))  # noqa: E731
        signal.connect(self.changed)
        self._access[f.name] = get, put
        if f.type != "path":
            return w, w
        row, browse = QWidget(), QToolButton(text="…")
        browse.clicked.connect(lambda: self._browse(w))
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(w)
        lay.addWidget(browse)
        return w, row

    def _browse(self, line: QLineEdit) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Spectrum file", line.text(),
                                              "Spectra (*.csv *.txt *.tsv *.dat);;All files (*)")
        if path:
            line.setText(path)
            self.changed.emit()

    def read(self, choice: SourceChoice) -> None:
        """Copy the page's values into ``choice``."""
        for f in self.specs:
            f.put(choice, self._access[f.name][0]())

    def write(self, choice: SourceChoice) -> None:
        """Show the values of ``choice`` (without emitting ``changed``)."""
        self.blockSignals(True)
        try:
            for f in self.specs:
                self._access[f.name][1](f.get(choice))
        finally:
            self.blockSignals(False)

    def set_menu(self, menu_type: str, names) -> None:
        """Offer ``names`` in the menus of fields of ``menu_type`` (see
        :data:`MENU_TYPES`), keeping each one's choice when it is still offered."""
        for f in self.specs:
            if f.type == menu_type:
                combo, keep = self.fields[f.name], self.fields[f.name].currentText()
                combo.blockSignals(True)
                combo.clear()
                combo.addItems(list(names))
                idx = combo.findText(keep) if keep else -1
                combo.setCurrentIndex(idx if idx >= 0 else (0 if combo.count() else -1))
                combo.blockSignals(False)


# -- rows ---------------------------------------------------------------------------------
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
        self.color_button = QPushButton()
        self.color_button.setFixedWidth(28)
        self.color_button.setToolTip("Component colour (click to change)")
        self.kind = QComboBox()
        self.kind.setToolTip("Where the component's spectrum seed (H0) comes from")
        self.pages = QStackedWidget()
        self.editors: dict[str, SourceEditor] = {}
        for key, text in menu_kinds().items():
            doc = (SOURCES[key].__doc__ or "").strip() if key in SOURCES else ""
            self.kind.addItem(text, key)  # its tooltip: the first line of the source's doc
            self.kind.setItemData(self.kind.count() - 1, doc.split("\n")[0],
                                  Qt.ItemDataRole.ToolTipRole)
            self.editors[key] = SourceEditor(editor_fields(key))
            self.pages.addWidget(self.editors[key])
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

    def _connect(self):
        self.kind.currentIndexChanged.connect(self._on_kind)
        self.color_button.clicked.connect(self._pick_color)
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self))
        self.name.editingFinished.connect(self.changed)
        for editor in self.editors.values():
            editor.changed.connect(self.changed)
        for w in (self.background, self.use_subtracted, self.locked):
            w.toggled.connect(self.changed)

    def _on_kind(self, *_):
        self.pages.setCurrentWidget(self.editor)
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

    def set_previous_components(self, names) -> None:
        """Offer these components of the last result."""
        for editor in self.editors.values():
            editor.set_menu("component", names)

    def settings(self) -> RowSettings:
        """The row's settings; the source holds the values of the current kind's page."""
        src = SourceChoice(kind=self.kind.currentData())
        self.editor.read(src)
        return RowSettings(name=self.name.text().strip(), color=self._color, source=src,
                           background=self.background.isChecked(),
                           use_subtracted=self.use_subtracted.isChecked(),
                           locked=self.locked.isChecked())

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
            self.background.setChecked(s.background)
            self.use_subtracted.setChecked(s.use_subtracted)
            self.locked.setChecked(s.locked)
        finally:
            self.blockSignals(False)

    def set_report(self, text: str = "", tooltip: str = "") -> None:
        """Show the seed report of the last run under the row (hidden when empty)."""
        self.report.setText(text)
        self.report.setToolTip(tooltip)
        self.report.setVisible(bool(text))


class ComponentTable(QWidget):
    """The list of component rows, in a scroll area; ``changed`` when any row was
    added, removed or edited."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[ComponentRow] = []
        self._shapes, self._labels, self._previous = [], [], []
        self._box = QWidget()
        self._list = QVBoxLayout(self._box)
        self._list.setContentsMargins(0, 0, 0, 0)
        self._list.setSpacing(3)
        self._list.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._box)
        scroll.setMinimumHeight(210)
        QVBoxLayout(self).addWidget(scroll)
        self.layout().setContentsMargins(0, 0, 0, 0)

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

    def _drop(self, row: ComponentRow) -> None:
        self.rows.remove(row)
        self._list.removeWidget(row)
        row.setParent(None)
        row.deleteLater()

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
        """Offer these Shapes and Labels layer names in every row (and new ones)."""
        self._shapes, self._labels = list(shapes), list(labels)
        for r in self.rows:
            r.set_layer_choices(self._shapes, self._labels)

    def set_previous_components(self, names) -> None:
        """Offer these components of the last result in every row (and new ones)."""
        self._previous = list(names)
        for r in self.rows:
            r.set_previous_components(self._previous)

    def set_reports(self, reports: dict) -> None:
        """Show ``{name: (text, tooltip)}`` under the rows; rows not listed are cleared."""
        for r in self.rows:
            text, tip = reports.get(r.name.text().strip(), ("", ""))
            r.set_report(text, tip)
