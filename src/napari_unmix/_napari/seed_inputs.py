"""What the dock's component table says, and how it becomes core component specs.

A row of the table is a :class:`RowSettings`: a name, a colour, flags, and a
:class:`SourceChoice` saying where the component's spectrum seed comes from.
:func:`build_components` turns the rows into
:class:`~napari_unmix.core.components.ComponentSpec` objects, reading the ROIs
from the viewer's layers (see :mod:`.rois`) at that moment:

=============  ===============================================================
source kind    becomes
=============  ===============================================================
``none``       no spectrum source (the core's fallback estimates one)
``shapes``     ``RoiMask``: one shape of a Shapes layer, or the union of all
``labels``     ``RoiLabel`` (one Labels layer serves as the label image of the
               run; rows using another Labels layer get a ``RoiMask``)
``file``       ``Spectrum`` read from a spectra text file (values embedded)
``gaussian``   ``Gaussian`` resonance model (centre, FWHM, amplitude)
``previous``   ``PreviousResult`` (spectrum) of a component of the last result,
               with its map as ``FixedW`` when the grid matches: both at their
               fitted scale, so the seeds reproduce the previous fit
=============  ===============================================================

Nothing here imports Qt; the table widget only edits ``RowSettings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..core.components import (
    ComponentSpec,
    FixedW,
    Flat,
    Gaussian,
    PreviousResult,
    RoiLabel,
    RoiMask,
    Spectrum,
)
from .rois import ImageGrid, RoiError, labels_image, roi_mean_spectrum, shapes_roi

__all__ = ["SOURCE_KINDS", "RowSettings", "SeedContext", "SourceChoice", "build_components",
           "seed_spectra", "source_of"]

#: Source kinds of a row and their menu labels.
SOURCE_KINDS = {
    "none": "none (fallback)",
    "shapes": "Shapes ROI",
    "labels": "label of a Labels layer",
    "file": "spectrum file",
    "gaussian": "Gaussian resonance",
    "flat": "flat (non-resonant)",
    "previous": "previous result",
}


@dataclass
class SourceChoice:
    """Where a component's spectrum seed comes from (see the module table).

    Parameters
    ----------
    kind : str
        One of :data:`SOURCE_KINDS`.
    layer : str, optional
        Name of the Shapes / Labels layer.
    shape_index : int, optional
        0-based shape of the Shapes layer; ``None``: the union of all its shapes.
    label_id : int
        Label of the Labels layer.
    path, column : str
        Spectra file and column (0-based index among the spectra, or a header name).
    center, width, amplitude : float
        Gaussian model: centre and FWHM in spectral-axis units, peak height in
        data units.
    level, absorb_offsets
        Flat spectrum: its value on every channel, in data units, and whether a
        locked flat row takes the offsets of the other fitted spectra.
    component : str, optional
        Component of the previous result.
    """

    kind: str = "none"
    layer: str | None = None
    shape_index: int | None = None
    label_id: int = 1
    path: str = ""
    column: str = "0"
    center: float = 0.0
    width: float = 10.0
    amplitude: float = 1.0
    level: float = 1.0
    absorb_offsets: bool = True
    component: str | None = None

    def __post_init__(self):
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"Unknown source kind {self.kind!r}; one of "
                             f"{', '.join(SOURCE_KINDS)}.")


@dataclass
class RowSettings:
    """One component row of the dock."""

    name: str
    color: str
    source: SourceChoice = field(default_factory=SourceChoice)
    background: bool = False
    use_subtracted: bool = True
    locked: bool = False


@dataclass
class SeedContext:
    """What rows are resolved against.

    Parameters
    ----------
    layers : mapping name -> layer
        The viewer's layers (``viewer.layers`` works).
    grid : ImageGrid
        The image being unmixed.
    previous : UnmixResult, optional
        The last result, for ``previous`` sources.
    """

    layers: object
    grid: ImageGrid
    previous: object = None
    _label_cache: dict = field(default_factory=dict)

    def layer(self, name, kind):
        from napari.layers import Labels, Shapes

        cls = {"shapes": Shapes, "labels": Labels}[kind]
        if not name or name not in self.layers:
            raise RoiError(f"No {cls.__name__} layer {name!r} in the viewer; choose one in the "
                           "component table.")
        layer = self.layers[name]
        if not isinstance(layer, cls):
            raise RoiError(f"Layer {name!r} is not a {cls.__name__} layer.")
        return layer

    def labels(self, name) -> np.ndarray:
        if name not in self._label_cache:
            self._label_cache[name] = labels_image(self.layer(name, "labels"), self.grid)
        return self._label_cache[name]


def _column(text):
    text = str(text).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def source_of(row: RowSettings, ctx: SeedContext, *, label_layer: str | None = None):
    """The core source of one row (``None`` for ``kind="none"``).

    ``label_layer`` names the Labels layer whose image is passed to the run as
    ``labels``; label rows of that layer give ``RoiLabel``, others ``RoiMask``.
    """
    src = row.source
    if src.kind == "none":
        return None
    if src.kind == "shapes":
        layer = ctx.layer(src.layer, "shapes")
        return RoiMask(shapes_roi(layer, ctx.grid, index=src.shape_index))
    if src.kind == "labels":
        lab = ctx.labels(src.layer)
        label_id = int(src.label_id)
        if not (lab == label_id).any():
            present = sorted(int(v) for v in np.unique(lab) if v > 0)
            raise RoiError(f"Label {label_id} of layer {src.layer!r} is not on image "
                           f"{ctx.grid.name!r} (labels there: "
                           f"{', '.join(map(str, present[:20])) or 'none'}).")
        if src.layer == label_layer:
            return RoiLabel(label_id)
        return RoiMask(lab == label_id)
    if src.kind == "file":
        if not src.path:
            raise ValueError("No spectrum file chosen.")
        try:
            return Spectrum.from_file(src.path, _column(src.column))
        except FileNotFoundError:
            raise ValueError(f"Spectrum file {src.path!r} does not exist.") from None
    if src.kind == "gaussian":
        return Gaussian([(float(src.center), float(src.width), float(src.amplitude))])
    if src.kind == "flat":
        return Flat(float(src.level), absorb_offsets=bool(src.absorb_offsets))
    if src.kind == "previous":
        res = ctx.previous
        if res is None:
            raise ValueError("There is no previous result to take seeds from; run an analysis "
                             "first.")
        if src.component not in res.component_names:
            raise ValueError(f"The previous result has no component {src.component!r} (it has "
                             f"{', '.join(res.component_names)}).")
        return PreviousResult.from_result(res, src.component, w=False)
    raise ValueError(f"Unknown source kind {src.kind!r}.")


def _previous_map(ctx: SeedContext, component):
    """The previous result's map of ``component``, as given (``FixedW``), when the
    result was computed on an image of this grid; else None (the W-seed mode builds
    the map from the spectrum).

    Kept at its fitted scale, so that together with the spectrum (also at its
    scale) the seeds reproduce the previous fit exactly and NNMF refines it.
    """
    res = ctx.previous
    if res.W.shape[0] != int(np.prod(ctx.grid.spatial_shape)):
        return None
    w = np.asarray(res.W[:, res.component_names.index(component)])
    if not np.isfinite(w).all() or w.min() < 0 or not w.any():
        return None
    return FixedW(w.reshape(ctx.grid.spatial_shape))


def build_components(rows: Sequence[RowSettings], ctx: SeedContext):
    """Component specs of the rows, and the label image the run needs.

    Returns
    -------
    components : list of ComponentSpec
    labels : ndarray or None
        The label image of the first Labels layer used by a row (``None`` when no
        row uses one).

    Raises
    ------
    RoiError, ValueError, TypeError
        With the row's name in the message.
    """
    label_layer = next((r.source.layer for r in rows if r.source.kind == "labels"), None)
    comps = []
    for r in rows:
        try:
            h_src, w_src = source_of(r, ctx, label_layer=label_layer), None
            if r.source.kind == "previous":
                w_src = _previous_map(ctx, r.source.component)
            comps.append(ComponentSpec(r.name, color=r.color, h_source=h_src, w_source=w_src,
                                       background=r.background,
                                       use_subtracted=r.use_subtracted, locked=r.locked))
        except (ValueError, TypeError, OSError) as exc:
            cls = RoiError if isinstance(exc, RoiError) else (
                TypeError if isinstance(exc, TypeError) else ValueError)
            raise cls(f"Component {r.name!r}: {exc}") from None
    labels = ctx.labels(label_layer) if label_layer is not None else None
    return comps, labels


def seed_spectra(rows: Sequence[RowSettings], ctx: SeedContext, *, read_lazy: bool = True):
    """The seed spectrum of every row that has a source, for previews.

    ROI rows give the mean spectrum of their pixels on the raw data (only those
    pixels are read); the other sources their spectrum on the image's spectral axis.

    Parameters
    ----------
    read_lazy : bool, default True
        Also read ROI pixels from lazy (e.g. dask) image data; False skips those
        rows (automatic previews must stay instant).

    Returns
    -------
    spectra : list of (RowSettings, ndarray)
    problems : list of str
        One line per row that could not be previewed, with the reason.
    """
    from ..core.seeds import source_spectrum

    grid = ctx.grid
    axis, _ = grid.spectral_values()
    layer = grid.layer
    stack = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    spectra, problems = [], []
    for row in rows:
        kind = row.source.kind
        if kind == "none" or (kind in ("shapes", "labels") and not read_lazy
                              and not isinstance(stack, np.ndarray)):
            continue
        try:
            if kind == "shapes":
                roi = shapes_roi(ctx.layer(row.source.layer, "shapes"), grid,
                                 index=row.source.shape_index)
                values = roi_mean_spectrum(stack, grid, roi)
            elif kind == "labels":
                roi = ctx.labels(row.source.layer) == int(row.source.label_id)
                values = roi_mean_spectrum(stack, grid, roi)
            else:
                values, _ = source_spectrum(source_of(row, ctx), np.zeros((1, grid.n_channels)),
                                            name=row.name, spectral_axis=axis)
        except (ValueError, TypeError, OSError) as exc:
            problems.append(f"{row.name}: {exc}")
            continue
        spectra.append((row, np.asarray(values, dtype=np.float64)))
    return spectra, problems
