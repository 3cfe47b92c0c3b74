"""The pages of the component table's source menu: one editor per source kind.

A page is a :class:`SourceEditor` built from the kind's :class:`EditorField` list in
:data:`EDITORS` (Shapes ROI: layer and shape, or "all"; label: Labels layer and id;
spectrum file: path and column; Gaussian: centre, FWHM, amplitude; flat: level,
taking the others' offsets; previous result: a component).  A registered source
without an entry gets a generic page, one widget per plain field of its dataclass
(:func:`~.seed_inputs.plain_fields`), kept in ``SourceChoice.params``.
:func:`register_editor` gives a kind its own page.
"""

from __future__ import annotations

from dataclasses import dataclass

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)

from ..core.sources import SOURCES, Flat, Gaussian, PreviousResult, RoiLabel, RoiMask, Spectrum
from .seed_context import LAYER_TYPES
from .seed_inputs import NONE_KIND, SourceChoice, plain_fields, source_kinds

__all__ = ["EDITORS", "MENU_TYPES", "EditorField", "SourceEditor", "editor_fields",
           "menu_kinds", "register_editor"]


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
        """What the field's widget shows of ``choice`` (a layer menu: ``(name, uid)``)."""
        if self.type in LAYER_TYPES:
            return getattr(choice, self.name), choice.layer_uid
        value = choice.params.get(self.name, self.default) if self.param else \
            getattr(choice, self.name)
        if self.none_text:
            return 0 if value is None else int(value) + 1
        return self.type(value) if self.type in (float, int, bool, str) else value

    def put(self, choice: SourceChoice, value) -> None:
        """Store the widget's ``value`` in ``choice``."""
        if self.type in LAYER_TYPES:
            setattr(choice, self.name, value[0])
            choice.layer_uid = value[1]
            return
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
    RoiMask.kind, EditorField("layer", "layer", "shapes-layer",
                              tooltip="The Shapes layer of the region (held by identity: "
                                      "renaming it is fine, deleting it is reported)"),
    EditorField("shape_index", "shape", int, low=0, high=100_000, none_text="all shapes",
                tooltip="Shape number in the layer (1 = first); 'all shapes' takes their "
                        "union"))
register_editor(RoiLabel.kind,
                EditorField("layer", "layer", "labels-layer",
                            tooltip="The Labels layer painted with the region (held by "
                                    "identity: renaming it is fine, deleting it is reported)"),
                EditorField("label_id", "label", int, low=1, high=2**31 - 1,
                            tooltip="The label whose pixels seed this component"))
register_editor(
    Spectrum.kind, EditorField("path", "file", "path", text="spectra file (.csv, .txt)",
                               tooltip="A text file of spectra: first column the spectral "
                                       "axis, one column per spectrum (resampled onto the "
                                       "image's axis)"),
    EditorField("column", "column", str, default="0",
                tooltip="Spectrum column: 0-based index (axis column not counted) or header "
                        "name"))
register_editor(Gaussian.kind,
                EditorField("center", "centre", float, low=-1e9, high=1e9, decimals=2,
                            tooltip="Band centre, in the spectral axis' units (cm^-1, nm)"),
                EditorField("width", "FWHM", float, low=1e-6, high=1e9, decimals=3,
                            tooltip="Full width at half maximum, in the axis' units"),
                EditorField("amplitude", "amplitude", float, low=0.0,
                            tooltip="Peak height in data units (the fit rescales it)"))
register_editor(
    Flat.kind,
    EditorField("level", "level", float, low=1e-12,
                tooltip="Value of the constant spectrum on every channel (data units); lock "
                        "the row to keep an offset out of the other spectra"),
    EditorField("absorb_offsets", "", bool, text="take the other spectra's offsets",
                tooltip="When this row is locked: after seeded NNMF, lower every other "
                        "fitted spectrum to zero minimum and add what it lost to this row's "
                        "map (the fit itself does not change)"))
register_editor(PreviousResult.kind,
                EditorField("component", "component", "component",
                            tooltip="The component of the shown run whose spectrum (and map) "
                                    "seed this row"))


def editor_fields(kind: str) -> tuple[EditorField, ...] | None:
    """The fields of the page of ``kind``: its :data:`EDITORS` entry, else the generic
    fields of the source class (``None`` when it has no plain fields to build from)."""
    if kind in EDITORS:
        return EDITORS[kind]
    specs = plain_fields(SOURCES[kind]) if kind in SOURCES else None
    if specs is None:
        return None
    return tuple(EditorField(p.name, p.name.replace("_", " "), p.type, default=p.default,
                             decimals=6, param=True,
                             tooltip=f"{p.name} of the {kind} source (default {p.default!r})")
                 for p in specs)


def menu_kinds() -> dict[str, str]:
    """The kinds of the source menu and their texts: those of
    :func:`~.seed_inputs.source_kinds` that have a page."""
    return {k: text for k, text in source_kinds().items() if editor_fields(k) is not None}


# -- the page of a source kind ------------------------------------------------------------
_UID, _NAME = Qt.ItemDataRole.UserRole, Qt.ItemDataRole.UserRole + 1


def _item(combo: QComboBox, name: str, uid, *, gone: bool = False) -> int:
    """Add a layer item (text: its name, data: its identity and name); ``gone``: the
    layer a row holds is not in the viewer any more (shown as such, kept)."""
    combo.addItem(f"{name} (deleted)" if gone else name)
    i = combo.count() - 1
    combo.setItemData(i, uid, _UID)
    combo.setItemData(i, name, _NAME)
    if gone:
        combo.setItemData(i, "The layer this row was made from is not in the viewer any "
                          "more; choose another one.", Qt.ItemDataRole.ToolTipRole)
    return i


def _layer_value(combo: QComboBox):
    """``(name, uid)`` of a layer menu's item (``(None, None)`` when empty)."""
    i = combo.currentIndex()
    if i < 0:
        return None, None
    return combo.itemData(i, _NAME) or combo.itemText(i) or None, combo.itemData(i, _UID)


def _choose_layer(combo: QComboBox, value) -> None:
    """Make the layer ``(name, uid)`` the menu's item: found by identity, else by name
    when it has none; kept (marked deleted) when it is not offered."""
    name, uid = value
    if not name and uid is None:
        return
    for i in range(combo.count()):
        if (combo.itemData(i, _UID) == uid) if uid is not None else \
                (combo.itemData(i, _NAME) == name):
            combo.setCurrentIndex(i)
            return
    combo.setCurrentIndex(_item(combo, name or "?", uid, gone=uid is not None))


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
        elif f.type in LAYER_TYPES:
            w = QComboBox()
            signal, get = w.currentIndexChanged, lambda: _layer_value(w)
            put = lambda value: _choose_layer(w, value)  # noqa: E731
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
        browse.setToolTip("Choose the file")
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
        :data:`MENU_TYPES`), keeping each one's choice when it is still offered.

        Layer menus take ``(name, uid)`` pairs (or names) and keep the layer they
        hold by identity: a renamed layer stays chosen, a deleted one stays too,
        marked deleted, instead of the menu switching to another layer."""
        for f in self.specs:
            if f.type == menu_type and menu_type in LAYER_TYPES:
                combo = self.fields[f.name]
                keep = _layer_value(combo)
                combo.blockSignals(True)
                combo.clear()
                for item in names:
                    name, uid = item if isinstance(item, tuple) else (item, None)
                    _item(combo, name, uid)
                if keep != (None, None):
                    _choose_layer(combo, keep)
                combo.setCurrentIndex(combo.currentIndex() if combo.currentIndex() >= 0
                                      else (0 if combo.count() else -1))
                combo.blockSignals(False)
            elif f.type == menu_type:
                combo, keep = self.fields[f.name], self.fields[f.name].currentText()
                combo.blockSignals(True)
                combo.clear()
                combo.addItems(list(names))
                idx = combo.findText(keep) if keep else -1
                combo.setCurrentIndex(idx if idx >= 0 else (0 if combo.count() else -1))
                combo.blockSignals(False)


# -- rows ---------------------------------------------------------------------------------
