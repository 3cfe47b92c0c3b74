"""The dock's "Setup" panel: save and load the whole setup, reopen a result, and type
the image's spectral values.

* "Save setup…" writes the dock's analysis config as JSON (:func:`.dock_setup.setup_of`):
  the file ``napari-unmix run --config`` reads, the same as every run's
  ``config.json``; labels painted plane by plane on a z / t series stay label ids, and
  their label image goes beside the file (``<name>.labels.tif``,
  :func:`napari_unmix.io.write_setup`); a z / t series choice other than the joint fit
  is kept in the file too (its ``series``), and ``run --config`` follows it.
* "Load setup…" sets the dock from such a file (and the label image beside it, and
  its series choice), or from a result folder's config
  (:func:`.dock_setup.apply_config`).
* "Open result…" opens a saved result folder (or ``.npz``) as a run of the dock, so
  that it is shown, compared, and used as seeds (:func:`.dock_setup.open_result`).
* "spectral values": start and step, or every value pasted, with their unit, for an
  image whose file has none (no sidecar file needed).

The panel only asks for files and shows outcomes on the dock's status line; its
methods take paths (tests call them).
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
)

from ..core.config import AnalysisConfig
from .dock_setup import apply_config, open_result, parse_spectral_values, set_spectral_values
from .help_texts import dock_words
from .rois import RoiError

__all__ = ["SetupPanel", "add_setup_panel"]

_UNITS = ("nm", "cm^-1", "")
_JSON = "Analysis config (*.json)"


class SetupPanel(QGroupBox):
    """The "Setup" panel of ``dock`` (which has ``viewer``, ``session``, ``form``,
    ``table`` and ``status``)."""

    def __init__(self, dock, parent=None):
        super().__init__("Setup and spectral values", parent)
        self.dock = dock
        self.save_button = _button("Save setup…", "Save the settings and every component "
                                   "row with its seeds (region seeds as masks; labels painted "
                                   "plane by plane as label ids, with their label image "
                                   "beside the file as <name>.labels.tif) as a JSON "
                                   "analysis config: the file 'napari-unmix run --config' "
                                   "reads, like every run's config.json.")
        self.load_button = _button("Load setup…", "Set the dock from a saved setup, a run's "
                                   "config.json or a result folder: the settings, and one row "
                                   "per component (region seeds painted into a new Labels "
                                   "layer).")
        self.open_button = _button("Open result…", "Open a saved result folder (or .npz) as a "
                                   "run of the dock: its maps, spectra and summary are shown, "
                                   "and 'Use result as seeds' refines it.")
        self.values = QLineEdit()
        self.values.setPlaceholderText("start step (e.g. 500 10), or paste every value")
        self.values.setToolTip("The spectral position of each channel when the file has "
                               "none: 'start step' (500 10, or 500:10), or one value per "
                               "channel pasted from a table. Then press Set.")
        self.unit = QComboBox()
        self.unit.setEditable(True)
        self.unit.addItems(list(_UNITS))
        self.unit.setToolTip("The unit of the spectral values: nm (wavelength), cm^-1 "
                             "(Raman shift), or empty.")
        self.set_button = _button("Set", "Give the chosen image these spectral values (kept "
                                  "in its layer; the runs, plots and outputs use them).")
        lay = QGridLayout(self)
        files = QHBoxLayout()
        for b in (self.save_button, self.load_button, self.open_button):
            files.addWidget(b)
        lay.addLayout(files, 0, 0, 1, 3)
        lay.addWidget(self.values, 1, 0)
        lay.addWidget(self.unit, 1, 1)
        lay.addWidget(self.set_button, 1, 2)
        lay.setColumnStretch(0, 1)
        self.save_button.clicked.connect(self._ask_save)
        self.load_button.clicked.connect(self._ask_load)
        self.open_button.clicked.connect(self._ask_open)
        self.set_button.clicked.connect(lambda *_: self.set_values())
        self.values.returnPressed.connect(lambda *_: self.set_values())

    # -- outcomes ----------------------------------------------------------------------
    def _say(self, text: str, *, failed: bool = False) -> None:
        self.dock.status.setText(dock_words(text))
        self.dock.status.setStyleSheet("color: #ff7b72;" if failed else "")

    # -- actions (paths given) ---------------------------------------------------------
    def save_setup(self, path) -> Path | None:
        """Write the dock's setup to ``path`` (JSON, and its label image beside it when
        it keeps label ids); None when it cannot be made."""
        from ..io import write_setup
        from .dock_setup import setup_of

        try:
            setup = setup_of(self.dock)
            saved = write_setup(path, setup.config, labels=setup.labels)
        except (ValueError, TypeError, RoiError, OSError) as exc:
            self._say(f"Refused: the setup cannot be saved: {exc}", failed=True)
            return None
        cfg, written = setup.config, saved.config
        text = f"Saved the setup ({cfg.mode}, {len(cfg.components)} component(s)) to {written}"
        if saved.labels is not None:
            text += (f", and the label image of its labels, painted plane by plane, beside "
                     f"it as {saved.labels.name} (keep the two files together)")
        if setup.series is not None:
            text += f", with its series choice ({setup.series.label})"
        self._say(f"{text}; run it with napari-unmix run STACK --config {written.name}.")
        return written

    def load_setup(self, path) -> list[str] | None:
        """Set the dock from the config in ``path`` (a JSON file, a result folder or
        bundle); returns the notes (None when it cannot be read)."""
        path = Path(path)
        labels = None
        try:
            if path.suffix.lower() == ".json" and path.name != "result.json":
                from ..io import read_setup_labels

                cfg = AnalysisConfig.load(path)
                labels = read_setup_labels(cfg, path)  # the label image beside a setup
            else:
                from ..io import read_result_bundle

                cfg = AnalysisConfig.from_result(read_result_bundle(
                    path.parent if path.name == "result.json" else path).result)
            notes = apply_config(self.dock, cfg, name=path.stem, labels=labels)
        except (ValueError, TypeError, RoiError, OSError) as exc:
            self._say(f"Refused: {path.name} cannot be loaded: {exc}", failed=True)
            return None
        extra = (" Not kept: " + " ".join(notes)) if notes else ""
        self._say(f"Loaded the setup of {path.name} ({cfg.mode}, {len(cfg.components)} "
                  f"component(s)).{extra}")
        return notes

    def open_result(self, path):
        """Open the result at ``path`` as a run; returns its record (None: refused)."""
        try:
            record = open_result(self.dock, path)
        except (ValueError, OSError) as exc:
            self._say(f"Refused: {Path(path).name} cannot be opened: {exc}", failed=True)
            return None
        self._say(f"Opened {record.label}; 'Use result as seeds' refines it.")
        return record

    def set_values(self, text: str | None = None, unit: str | None = None):
        """Give the chosen image the spectral values ``text`` (default: the box) in
        ``unit`` (default: the unit box); returns them (None: refused)."""
        session = self.dock.session
        text = self.values.text() if text is None else text
        unit = self.unit.currentText().strip() if unit is None else unit
        try:
            grid = session.grid()
            values = parse_spectral_values(text, grid.n_channels)
        except (ValueError, RoiError) as exc:
            self._say(f"Refused: spectral values: {exc}", failed=True)
            return None
        layer = grid.layer
        set_spectral_values(layer, values, unit)
        meta = dict(layer.metadata)
        meta["spectral_axis_index"] = int(session.spectral_axis_index)
        layer.metadata = meta
        session.set_image(layer.name)  # the axis info and the plots read them
        self._say(f"{layer.name}: {values.size} spectral values, {values[0]:g} to "
                  f"{values[-1]:g} {unit}".strip() + ".")
        return values

    # -- file dialogs --------------------------------------------------------------------
    def _ask_save(self, *_):
        path, _ = QFileDialog.getSaveFileName(self, "Save setup", "setup.json", _JSON)
        if path:
            self.save_setup(path)

    def _ask_load(self, *_):
        path, _ = QFileDialog.getOpenFileName(
            self, "Load setup", "", f"{_JSON};;Result (result.json *.npz);;All files (*)")
        if path:
            self.load_setup(path)

    def _ask_open(self, *_):
        path = QFileDialog.getExistingDirectory(self, "Open a result folder")
        if path:
            self.open_result(path)


def _button(text: str, tooltip: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tooltip)
    return button


def add_setup_panel(dock, layout) -> None:
    """Add the :class:`SetupPanel` to ``layout`` of the dock, as ``dock.setup``."""
    dock.setup = SetupPanel(dock)
    layout.addWidget(dock.setup)
