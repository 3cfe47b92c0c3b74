"""The dock's whole setup as an analysis config, saved and loaded; spectral values typed in.

:func:`setup_of` is what "Save setup" writes (a :class:`DockSetup`): the
:class:`~napari_unmix.core.config.AnalysisConfig` of the dock as it is set now (the
settings, every component row and its seeds), made self-contained where a mask says
what the row's seed says: a row seeded by a label of a Labels layer keeps its pixels
as a mask, so the file runs without the layer.  Labels painted plane by plane on a
z / t series (that differ between its planes) are the exception: a per-plane run seeds
every plane from its own labels, which one mask of the series cannot say (a per-plane
run refuses a mask that differs between planes), so those rows stay label ids and
the label image is saved beside the file (:func:`napari_unmix.io.write_setup`).
Saved as JSON it is the file the CLI's ``run --config`` reads (the label image beside
it too), and what every run's ``config.json`` is.  A series choice other than the
joint fit is kept in the config's ``series`` (a
:class:`~napari_unmix.core.series_choice.SeriesChoice`), which ``run --config`` follows;
a joint fit's setup has none (its file is as before).

:func:`apply_config` sets the dock from such a config (a saved setup, a run's
``config.json``, or a result's config): the settings that the config's mode uses,
then one row per component: region seeds (masks) are painted into a new Labels layer
"<file> seeds" on the image's Y-X grid (:mod:`.seed_layer`; seeds that overlap into
further layers "<file> seeds 2" ..., so that every row keeps all its pixels and its
seed spectrum is the one saved); a mask of a z / t series that is the same on every
plane is painted as that plane's mask, one that differs between planes into a Labels
layer over the image's planes; the label image saved beside a setup is painted into a
Labels layer "<file> labels" (over the image's planes for a series), and its rows
keep their label ids.  The config's series choice is set in the series panel when the
image has that series axis (otherwise a note says so, and the dock keeps its own
choice).  Gaussian and flat models keep their parameters, a spectrum
embedded without its file stays in its row (until a file is chosen there); what a row
cannot hold (the seeds of a previous result, a label id without its label image)
becomes a row without a source, and a note says so.  What of the preprocessing the
dock cannot hold is said too: a fit of the processed data (the dock fits the raw
data), filter parameters other than its own, a background that is not the first
background row's spectrum.

:func:`parse_spectral_values` reads what the user types as an image's spectral
values: ``start step`` (``500 10``, ``500:10`` or ``500, step 10``) or all the
values (pasted from a spreadsheet: any spaces, commas, semicolons or new lines).

Nothing here imports Qt.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np

from ..core.config import AnalysisConfig
from ..core.series import SeriesResult
from ..core.sources import SOURCES, Flat, Gaussian, RoiLabel, RoiMask, Spectrum
from .seed_inputs import NONE_KIND, RowSettings, SourceChoice, plain_fields, source_kinds
from .seed_layer import add_label_image, paint_seed_layers, paintable_mask
from .series_run import SeriesPlan, dock_choice, series_axis

__all__ = ["DockSetup", "apply_config", "parse_spectral_values", "set_spectral_values",
           "setup_of"]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_START_STEP = re.compile(rf"^\s*({_NUMBER})\s*(?::|,?\s*step|\+)\s*({_NUMBER})\s*$", re.I)


# -- spectral values ---------------------------------------------------------------------
def parse_spectral_values(text: str, n_channels: int) -> np.ndarray:
    """The spectral position of every channel from ``text``.

    ``"500 10"``, ``"500 step 10"``, ``"500:10"`` or ``"500 + 10"`` (start and step)
    give ``start + step * i``; otherwise ``text`` must hold exactly
    ``n_channels`` numbers (separated by spaces, commas, semicolons, tabs or new
    lines), strictly increasing or decreasing.  Two bare numbers are read as start
    and step unless the image has two channels.

    Raises
    ------
    ValueError
        Saying what was read and what is expected.
    """
    text = str(text or "").strip()
    n = int(n_channels)
    m = _START_STEP.match(text)
    if m is None and n != 2:
        parts = [p for p in re.split(r"[\s,;]+", text) if p]
        if len(parts) == 2:
            m = _START_STEP.match(" step ".join(parts))
    if m is not None:
        start, step = float(m.group(1)), float(m.group(2))
        if step == 0:
            raise ValueError("the step between channels must not be 0.")
        return start + step * np.arange(n, dtype=np.float64)
    parts = [p for p in re.split(r"[\s,;]+", text) if p]
    try:
        values = np.asarray([float(p) for p in parts], dtype=np.float64)
    except ValueError:
        raise ValueError(f"type 'start step' (e.g. 500 10) or the {n} values, one per "
                         f"channel; {text[:40]!r} is neither.") from None
    if values.size != n:
        raise ValueError(f"the image has {n} channels but {values.size} values were given; "
                         "type 'start step' (e.g. 500 10) or one value per channel.")
    d = np.diff(values)
    if not np.isfinite(values).all() or not (np.all(d > 0) or np.all(d < 0)):
        raise ValueError("the spectral values must be finite and strictly increasing or "
                         "decreasing (one position per channel).")
    return values


def set_spectral_values(layer, values, unit: str | None) -> None:
    """Give an image layer spectral values (its metadata, as the reader writes them)."""
    meta = dict(layer.metadata) if isinstance(layer.metadata, dict) else {}
    meta["spectral_values"] = np.asarray(values, dtype=np.float64)
    meta["spectral_unit"] = unit or None
    meta["spectral_values_typed"] = True  # entered in the dock, not read from the file
    layer.metadata = meta


# -- dock -> config ----------------------------------------------------------------------
@dataclass(frozen=True)
class DockSetup:
    """What "Save setup" writes (see the module doc).

    Attributes
    ----------
    config : AnalysisConfig
    labels : ndarray or None
        The label image of the rows kept as label ids (labels painted plane by plane
        on a z / t series), saved beside the config; None when every region seed is
        a mask in the config.
    series : SeriesPlan or None
        The dock's series choice (kept in the config's ``series``).
    """

    config: AnalysisConfig
    labels: np.ndarray | None = None
    series: SeriesPlan | None = None

    def __post_init__(self):
        saved = None if self.series is None else self.series.saved()
        object.__setattr__(self, "config", self.config.replace(series=saved))


def _differs_between_planes(labels: np.ndarray, grid) -> bool:
    """Whether ``labels`` is a label image of the whole z / t series that is not the
    same on every plane (the series axis is the first spatial axis)."""
    return (series_axis(grid) is not None and labels.shape == tuple(grid.spatial_shape)
            and not (labels == labels[:1]).all())


def setup_of(dock) -> DockSetup:
    """The dock's setup: a self-contained AnalysisConfig, and the label image of the
    rows it keeps as label ids (see the module doc).

    Raises
    ------
    ValueError, RoiError, TypeError, OSError
        The dock's setup cannot make a config (the same refusals as Run).
    """
    form, session = dock.form, dock.session
    kw = form.config_kwargs()
    session.update_rows(dock.table.settings())
    if not form.spec.seeded or not session.rows:
        grid = session.grid_or_none()
        return DockSetup(AnalysisConfig(**kw), series=None if grid is None else
                         session.plan(grid))
    subtract, smoothing = form.preprocessing_choice()
    request = session.prepare(kw, subtract_background=subtract, smoothing=smoothing)
    labels, cfg = request.labels, request.config
    if labels is None:
        return DockSetup(cfg, series=request.series)
    labels = np.asarray(labels)
    if _differs_between_planes(labels, request.grid):  # label ids, the image beside
        return DockSetup(cfg, labels=labels, series=request.series)

    def own(src):
        return RoiMask(labels == src.label_id) if isinstance(src, RoiLabel) else src

    comps = [dataclasses.replace(c, h_source=own(c.h_source), w_source=own(c.w_source))
             for c in cfg.components]
    pre = dataclasses.replace(cfg.preprocessing, background=own(cfg.preprocessing.background))
    return DockSetup(cfg.replace(components=comps, preprocessing=pre), series=request.series)


# -- config -> dock ----------------------------------------------------------------------
def _set_form(form, cfg: AnalysisConfig) -> None:
    from .settings_form import OPTION_OF, form_takes

    form.mode.value = cfg.mode
    spec = form.spec
    texts = {"tol": lambda v: f"{v:g}", "random_state": lambda v: "" if v is None else str(v)}
    order = ["loss", *[n for n in OPTION_OF if n != "loss"]]  # solvers follow the loss
    for name in order:
        field = OPTION_OF[name]
        if field == "preprocessing" or name == "device_info" or not form_takes(spec, field):
            continue
        value = getattr(cfg, field)
        widget = getattr(form, name)
        value = texts[name](value) if name in texts else value
        try:
            widget.value = value
        except (ValueError, TypeError):  # a solver not offered here: keep the form's
            pass
    if spec.uses("preprocessing"):
        pre = cfg.preprocessing
        form.subtract_background.value = pre.background is not None
        try:
            form.smoothing.value = pre.smoothing or "none"
        except ValueError:
            pass


def _preprocessing_notes(cfg: AnalysisConfig) -> list[str]:
    """What of ``cfg``'s preprocessing the dock cannot hold (it fits the raw data,
    smooths with the default filter parameters and subtracts the spectrum of the first
    component marked background)."""
    from ..core.modes import MODES
    from ..core.preprocess import Preprocessing
    from ..core.sources import FromComponent

    pre = cfg.preprocessing
    spec = MODES.get(cfg.mode)
    if not pre.active or spec is None or not spec.uses("preprocessing"):
        return []
    notes = []
    if cfg.fit_data == "processed":
        notes.append("fit_data 'processed' (the fit of the preprocessed data): the dock fits "
                     "the raw data, and the preprocessing shapes the seeds only; run the "
                     "config with napari-unmix run --config to fit the processed data.")
    default = Preprocessing()
    if pre.smoothing == "savgol" and (pre.window_length, pre.polyorder) != (
            default.window_length, default.polyorder):
        notes.append(f"the smoothing window {pre.window_length} and order {pre.polyorder}: "
                     f"the dock smooths with window {default.window_length}, order "
                     f"{default.polyorder}.")
    if pre.smoothing == "gaussian" and pre.sigma != default.sigma:
        notes.append(f"the smoothing width sigma {pre.sigma:g}: the dock smooths with sigma "
                     f"{default.sigma:g}.")
    background = [c.name for c in cfg.components if c.background and c.h_source is not None]
    bg = pre.background
    if bg is not None and not (isinstance(bg, FromComponent) and background
                               and background[0] == bg.name):
        what = (f"component {bg.name!r}'s spectrum" if isinstance(bg, FromComponent)
                else f"a {bg.kind} spectrum")
        notes.append(f"the background subtracted ({what}): the dock subtracts the spectrum "
                     "of the first component marked background"
                     + (f" ({background[0]!r})." if background else ", and none is."))
    return notes


def _set_series(dock, cfg: AnalysisConfig, notes: list[str]) -> None:
    """Set the series panel from the config's series choice (none: left as it is)."""
    saved = cfg.series
    if saved is None:
        return
    choice, plane = dock_choice(saved)
    grid = dock.session.grid_or_none()
    axis = None if grid is None else series_axis(grid)
    n = 0 if axis is None else int(grid.shape[axis])
    label = SeriesPlan(choice, saved.series_axis, n, plane or 0).label
    panel = dock.series_panel
    if axis != saved.series_axis or (plane is not None and plane >= n):
        where = ("no image is chosen" if grid is None else
                 f"image {grid.name!r} has no z / t series axis" if axis is None else
                 f"image {grid.name!r}'s series axis is {axis}" if axis != saved.series_axis
                 else f"image {grid.name!r} has {n} plane(s) along axis {axis}")
        notes.append(f"the series choice {label} along axis {saved.series_axis}: {where}, "
                     "so the dock runs a joint fit.")
        panel.series.value = "joint"
        return
    panel.series.value = choice
    if plane is not None:
        panel.series_plane.value = plane
        dock.session.set_plane(plane)  # the reference plane, even when the panel showed it


def _row_source(spec, mask_ids, notes) -> SourceChoice:
    src = spec.h_source
    if src is None:
        return SourceChoice()
    if spec.name in mask_ids:
        layer, label = mask_ids[spec.name]
        return SourceChoice(RoiLabel.kind, layer=layer.name, layer_uid=str(layer.unique_id),
                            label_id=label)
    if isinstance(src, Gaussian) and src.peaks:
        center, width, amplitude = (float(v) for v in src.peaks[0])
        if len(src.peaks) > 1:
            notes.append(f"{spec.name}: only the first of its {len(src.peaks)} Gaussian "
                         "bands fits a row; add the others as rows.")
        return SourceChoice(Gaussian.kind, center=center, width=width, amplitude=amplitude)
    if isinstance(src, Flat):
        return SourceChoice(Flat.kind, level=float(src.level),
                            absorb_offsets=bool(src.absorb_offsets))
    if isinstance(src, Spectrum):   # its values are in the config: the row holds them
        return SourceChoice(Spectrum.kind, embedded=src)
    kind = getattr(src, "kind", None)
    fields = plain_fields(SOURCES[kind]) if kind in SOURCES else None
    if kind in source_kinds() and fields is not None and kind not in ("spectrum",):
        return SourceChoice(kind, params={f.name: getattr(src, f.name) for f in fields})
    why = {"roi-label": "its label image is not in the config: choose the Labels layer in "
                        "the row",
           "previous-result": "its seeds came from a previous result: open that result and "
                              "press 'Use result as seeds'"}.get(kind, f"a {kind} source "
                                                                    "has no row editor")
    notes.append(f"{spec.name}: {why}.")
    return SourceChoice(NONE_KIND)


def apply_config(dock, cfg: AnalysisConfig, *, name: str = "setup", labels=None) -> list[str]:
    """Set the dock from ``cfg`` (see the module doc); returns notes on what could not
    be set as the config says.  Region seeds are painted into a new Labels layer
    ``"<name> seeds"`` on the chosen image's grid; ``labels``, the label image of the
    config's label ids (saved beside a setup), into a new Labels layer
    ``"<name> labels"``."""
    notes: list[str] = _preprocessing_notes(cfg)
    _set_form(dock.form, cfg)
    _set_series(dock, cfg, notes)
    comps = list(cfg.components)
    if not comps:
        dock.table.set_rows([])
        dock.session.update_rows([])
        return notes
    mask_ids = {}
    grid = dock.session.grid_or_none()
    if grid is not None:
        masks = [(c.name, paintable_mask(c.h_source.mask, grid)) for c in comps
                 if isinstance(c.h_source, RoiMask)]
        if any(m is None for _, m in masks):
            notes.append(f"some region seeds are not on image {grid.name!r}'s grid (spatial "
                         f"shape {tuple(grid.spatial_shape)}); those rows have no source.")
        mask_ids = paint_seed_layers(dock.session, grid, [(n, m) for n, m in masks
                                                          if m is not None], name=name)
        users = [c for c in comps if isinstance(c.h_source, RoiLabel)]
        layer = None
        if labels is not None and users:
            layer = add_label_image(dock.session, grid, labels, name=f"{name} labels")
            if layer is None:
                notes.append(f"the label image has shape {np.shape(labels)}, not image "
                             f"{grid.name!r}'s spatial shape {tuple(grid.spatial_shape)}; "
                             "the rows of its labels have no source.")
        if layer is not None:
            mask_ids.update({c.name: (layer, c.h_source.label_id) for c in users})
    rows = [RowSettings(name=c.name, color=c.color or "#ffffff",
                        source=_row_source(c, mask_ids, notes),
                        background=c.background, use_subtracted=c.use_subtracted,
                        locked=c.locked, anchor=c.anchor) for c in comps]
    for c in comps:
        if c.w_source is not None and not isinstance(c.w_source, (RoiMask, RoiLabel)):
            notes.append(f"{c.name}: its map seed ({c.w_source.kind}) has no row editor; the "
                         "W-seed mode builds its map.")
    dock.reset_choices()  # the new Labels layer in the rows' menus
    dock.table.set_rows(rows)
    dock.session.update_rows(dock.table.settings())
    return notes


# -- a saved result -> a run of the dock -------------------------------------------------
def open_result(dock, path):
    """Open a saved result (a result folder, or a ``.npz`` bundle) as a run of the dock:
    its maps become layers (placed on the chosen image's grid when they fit it, as the
    dock's own maps are, and then the pixel inspector reads it), it is shown (spectra,
    summary; a z / t series saved whole as the series), and "Use result as seeds" takes
    it.  Returns its
    :class:`~.run_history.RunRecord`.

    Raises
    ------
    FileNotFoundError, ValueError
        Not a napari-unmix result, or a damaged one.
    """
    from pathlib import Path

    from ..io import read_result_bundle
    from .layers import placement
    from .reader import kept_labels, on_stack_axes, result_layer_data

    path = Path(path)
    bundle = read_result_bundle(path)
    grid = dock.session.grid_or_none()
    shape = tuple(int(s) for s in bundle.spatial_shape)
    fits = grid is not None and shape == tuple(grid.spatial_shape)
    # on the image like the dock's own maps (a z / t series' planes on the image's planes)
    place, keep_axis = placement(grid.layer, grid.spectral_axis_index) if fits else ({}, False)
    layers = []
    made = result_layer_data(bundle, name=path.stem, labels=kept_labels(bundle))
    if not fits:  # on no image: on the stack the result records, as the reader places it
        made, _ = on_stack_axes(made, bundle)
    for data, kwargs, _ in made:
        if keep_axis:
            data = np.expand_dims(data, grid.spectral_axis_index)
        layers.append(dock.viewer.add_image(data, **{**kwargs, **place}))
    # a z / t series saved whole (SeriesResult.as_result): shown as the series it is
    series = None if bundle.mask is not None else SeriesResult.from_result(bundle.result, shape)
    return dock.session.add_opened(
        bundle.result, layers=layers, source=path.name, image=grid.name if fits else None,
        series_result=series, spectral_axis=grid.spectral_axis_index if fits else 0,
        series_axis=series_axis(grid) if fits and series is not None else None,
        spatial_shape=shape)
