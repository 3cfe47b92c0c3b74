"""What the dock's component table says, and how it becomes core component specs.

A row of the table is a :class:`RowSettings`: a name, a colour, flags, and a
:class:`SourceChoice` saying where the component's spectrum seed comes from.  Its
``kind`` is the ``kind`` of a core source
(:data:`napari_unmix.core.sources.SOURCES`), or ``"none"`` for no source (the
core's fallback estimates one).  :func:`build_components` turns the rows into
:class:`~napari_unmix.core.components.ComponentSpec` objects, reading the ROIs
from the viewer's layers (see :mod:`.rois`) at that moment.

How a row of each kind becomes core sources is registered in
:data:`SOURCE_INPUTS` (a :class:`SourceInput` per kind):

===================  ============================================================
source kind          becomes
===================  ============================================================
``roi-mask``         ``RoiMask``: one shape of a Shapes layer, or the union of all
``roi-label``        ``RoiLabel`` (one Labels layer serves as the label image of
                     the run; rows using another Labels layer get a ``RoiMask``)
``spectrum``         ``Spectrum`` read from a spectra text file (values embedded)
``gaussian``         ``Gaussian`` resonance model (centre, FWHM, amplitude)
``flat``             ``Flat`` constant spectrum (level, absorb offsets)
``previous-result``  ``PreviousResult`` (spectrum) of a component of the row's
                     run (default: the one shown), with its map as ``FixedW``
                     when that run was computed on this image and grid: both at
                     their fitted scale, so the seeds reproduce the fit
===================  ============================================================

Any other registered core source with a ``title`` that gives a spectrum and whose
dataclass fields are plain values (float, int, bool, str) is offered too, through
a *generic* input: the row's :attr:`SourceChoice.params` (the values of a
generic editor: one widget per field of :func:`plain_fields`) are the keyword
arguments of the class.

Nothing here imports Qt; the table widget only edits ``RowSettings``.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace

import numpy as np

from ..core.components import ComponentSpec
from ..core.data import roi_mean_spectrum
from ..core.sources import (
    SOURCES,
    FixedW,
    Flat,
    Gaussian,
    PreviousResult,
    RoiLabel,
    RoiMask,
    Spectrum,
)
from ..core.sources import SeedContext as SourceContext
from .rois import RoiError, shapes_roi
from .seed_context import SeedContext

__all__ = ["NONE_KIND", "SOURCE_INPUTS", "PlainField", "RowSettings", "SeedContext",
           "SourceChoice", "SourceInput", "build_components", "plain_fields",
           "register_input", "resolve_layers", "seed_spectra", "source_input", "source_kinds",
           "source_of", "unused_map_notes"]

#: The kind of a row without a spectrum source, and its menu text.
NONE_KIND = "none"
NONE_TITLE = "none (fallback)"

_PLAIN = {"float": float, "int": int, "bool": bool, "str": str}


@dataclass
class SourceChoice:
    """Where a component's spectrum seed comes from (see the module table).

    Parameters
    ----------
    kind : str
        ``"none"`` or the kind of a core source offered by :func:`source_kinds`.
    layer : str, optional
        Name of the Shapes / Labels layer.
    layer_uid : str, optional
        Its identity (``layer.unique_id``): the row holds that layer, whatever its
        name becomes; a deleted or replaced layer is an error, never another layer
        (see :mod:`.seed_context`).
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
    run : int, optional
        The number of the run whose result that is (held, as a layer is: a run that
        was deleted is an error, not another run's); ``None``: the run shown.
    embedded : Spectrum, optional
        A spectrum seed without its file (from a loaded setup or a run's config,
        which embed the values): used while ``path`` is empty; a chosen file wins.
    params : dict
        Values of a generic editor: the keyword arguments of the source class
        (sources without a dedicated editor).
    """

    kind: str = NONE_KIND
    layer: str | None = None
    layer_uid: str | None = None
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
    run: int | None = None
    params: dict = field(default_factory=dict)
    embedded: typing.Any = None

    def __post_init__(self):
        kinds = source_kinds()
        if self.kind not in kinds:
            raise ValueError(f"Unknown source kind {self.kind!r}; one of {', '.join(kinds)}.")


@dataclass
class RowSettings:
    """One component row of the dock."""

    name: str
    color: str
    source: SourceChoice = field(default_factory=SourceChoice)
    background: bool = False
    use_subtracted: bool = True
    locked: bool = False
    #: the row's own trust in its seed spectrum (None: the analysis' trust)
    anchor: float | None = None


# -- the generic input: a source class's plain fields -----------------------------------
@dataclass(frozen=True)
class PlainField:
    """A field of a source dataclass that a generic editor edits.

    Parameters
    ----------
    name : str
    type : type
        ``float``, ``int``, ``bool`` or ``str``.
    default : object
        The field's default (the type's zero value for a required field).
    """

    name: str
    type: type
    default: object

    def coerce(self, value):
        """``value`` as this field's type."""
        return self.type(value)


def plain_fields(cls) -> tuple[PlainField, ...] | None:
    """The fields of source class ``cls`` a generic editor edits.

    Fields of plain types (float, int, bool, str) are listed; other fields with a
    default are left at it (not edited).  ``None`` when ``cls`` is not a dataclass
    or has a required field of another type (it cannot be built from plain values).
    """
    if not is_dataclass(cls):
        return None
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: read their text
        hints = {}
    out = []
    for f in fields(cls):
        if not f.init:
            continue
        ann = hints.get(f.name, f.type)
        typ = ann if ann in (float, int, bool, str) else _PLAIN.get(str(ann).strip())
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        if typ is None or f.name.startswith("_"):
            if has_default:
                continue
            return None
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = typ()
        out.append(PlainField(f.name, typ, typ(default)))
    return tuple(out)


# -- inputs: how a row of a kind becomes core sources ------------------------------------
@dataclass(frozen=True)
class SourceInput:
    """How a row of one source kind becomes core sources.

    Parameters
    ----------
    to_source : callable ``(SourceChoice, SeedContext) -> Source``
        The component's spectrum source (``h_source``).
    roi : callable ``(SourceChoice, SeedContext) -> ndarray of bool``, optional
        For sources that are the mean spectrum of a region: the row's pixels on the
        image's spatial grid.  Previews take the mean of these pixels of the raw
        data with :func:`napari_unmix.core.data.roi_mean_spectrum`, as the run does.
    w_source : callable ``(SourceChoice, SeedContext) -> Source or None``, optional
        The component's map source (``w_source``), evaluated after ``to_source``.
    """

    to_source: Callable
    roi: Callable | None = None
    w_source: Callable | None = None


#: The dedicated inputs, by source kind (other offered kinds get a generic input).
SOURCE_INPUTS: dict[str, SourceInput] = {}


def register_input(kind: str, *, roi=None, w_source=None):
    """Register the decorated ``to_source(choice, ctx)`` as the input of ``kind``;
    ``roi`` and ``w_source`` are as in :class:`SourceInput`."""
    def register(to_source):
        SOURCE_INPUTS[kind] = SourceInput(to_source, roi=roi, w_source=w_source)
        return to_source
    return register


def _generic(cls, specs) -> SourceInput:
    def to_source(choice, ctx):
        params = choice.params
        return cls(**{p.name: p.coerce(params.get(p.name, p.default)) for p in specs})
    return SourceInput(to_source)


def source_input(kind: str) -> SourceInput:
    """The input of source kind ``kind``: its dedicated one, else the generic one.

    Raises
    ------
    ValueError
        For ``"none"`` and kinds that are not registered or cannot be built from
        plain values.
    """
    if kind in SOURCE_INPUTS:
        return SOURCE_INPUTS[kind]
    specs = plain_fields(SOURCES[kind]) if kind in SOURCES else None
    if specs is None:
        raise ValueError(f"Source kind {kind!r} cannot be set in the component table.")
    return _generic(SOURCES[kind], specs)


def source_kinds() -> dict[str, str]:
    """The source kinds a row can have, with their menu texts: ``"none"``, then every
    registered core source with a ``title`` that gives a spectrum and has an input
    (a dedicated one, or plain fields for the generic one), in registry order."""
    kinds = {NONE_KIND: NONE_TITLE}
    for kind, cls in SOURCES.items():
        if cls.title and cls.gives_spectrum and (
                kind in SOURCE_INPUTS or plain_fields(cls) is not None):
            kinds[kind] = cls.title
    return kinds


#: Source kinds whose rows hold a layer, and the layer's kind.
_LAYER_KINDS = {RoiMask.kind: "shapes", RoiLabel.kind: "labels"}


def _shapes_mask(choice, ctx):
    layer = ctx.layer(choice.layer, "shapes")
    return shapes_roi(layer, ctx.grid, index=choice.shape_index)


def _label_mask(choice, ctx):
    lab = ctx.labels(choice.layer)
    label_id = int(choice.label_id)
    mask = lab == label_id
    if not mask.any():
        present = sorted(int(v) for v in np.unique(lab) if v > 0)
        raise RoiError(f"Label {label_id} of layer {choice.layer!r} is not on image "
                       f"{ctx.grid.name!r} (labels there: "
                       f"{', '.join(map(str, present[:20])) or 'none'}).")
    return mask


@register_input(RoiMask.kind, roi=_shapes_mask)
def _roi_mask(choice, ctx):
    return RoiMask(_shapes_mask(choice, ctx))


@register_input(RoiLabel.kind, roi=_label_mask)
def _roi_label(choice, ctx):
    mask = _label_mask(choice, ctx)
    return RoiLabel(int(choice.label_id)) if choice.layer == ctx.label_layer else RoiMask(mask)


def _column(text):
    text = str(text).strip()
    return int(text) if text.lstrip("-").isdigit() else text


@register_input(Spectrum.kind)
def _spectrum_file(choice, ctx):
    if not choice.path and choice.embedded is not None:
        return choice.embedded
    if not choice.path:
        raise ValueError("No spectrum file chosen.")
    try:
        return Spectrum.from_file(choice.path, _column(choice.column))
    except FileNotFoundError:
        raise ValueError(f"Spectrum file {choice.path!r} does not exist.") from None


@register_input(Gaussian.kind)
def _gaussian(choice, ctx):
    return Gaussian([(float(choice.center), float(choice.width), float(choice.amplitude))])


@register_input(Flat.kind)
def _flat(choice, ctx):
    return Flat(float(choice.level), absorb_offsets=bool(choice.absorb_offsets))


def _previous_map(choice, ctx):
    """The map of the component in the row's run (``FixedW``), when that run was
    computed on this image, on this grid (:meth:`~.seed_context.SeedContext.maps_mismatch`);
    else None (the W-seed mode builds the map from the spectrum).

    Kept at its fitted scale, so that together with the spectrum (also at its
    scale) the seeds reproduce the previous fit exactly and NNMF refines it.
    """
    if ctx.maps_mismatch(choice) is not None:
        return None
    res = ctx.result_of(choice)
    w = np.asarray(res.W[:, res.component_names.index(choice.component)])
    if not np.isfinite(w).all() or w.min() < 0 or not w.any():
        return None
    return FixedW(w.reshape(ctx.grid.spatial_shape))


@register_input(PreviousResult.kind, w_source=_previous_map)
def _previous_result(choice, ctx):
    res = ctx.result_of(choice)
    if res is None:
        raise ValueError("There is no previous result to take seeds from; run an analysis "
                         "first.")
    if choice.component not in res.component_names:
        raise ValueError(f"The previous result has no component {choice.component!r} (it has "
                         f"{', '.join(res.component_names)}).")
    return PreviousResult.from_result(res, choice.component, w=False)


def unused_map_notes(rows: Sequence[RowSettings], ctx: SeedContext) -> list[str]:
    """One line per ``previous-result`` row whose run's map is not its starting map:
    the run was computed on another image or grid (the W-seed mode builds it)."""
    out = []
    for r in rows:
        if r.source.kind == PreviousResult.kind:
            why = ctx.maps_mismatch(r.source)
            if why is not None:
                out.append(f"Component {r.name!r}: only the spectrum of its result is used "
                           f"({why}); its starting map comes from the W-seed mode.")
    return out


# -- rows -> components, previews ---------------------------------------------------------
def source_of(row: RowSettings, ctx: SeedContext):
    """The core spectrum source of one row (``None`` for kind ``"none"``).

    Label rows of ``ctx.label_layer`` give ``RoiLabel``, others ``RoiMask``.
    """
    if row.source.kind == NONE_KIND:
        return None
    return source_input(row.source.kind).to_source(row.source, ctx)


def resolve_layers(rows: Sequence[RowSettings], ctx: SeedContext) -> list[RowSettings]:
    """The rows with the current name of the layer each one holds (by identity).

    Raises
    ------
    RoiError
        Naming the component and its layer, when that layer was deleted or replaced.
    """
    out = []
    for r in rows:
        try:
            out.append(_resolved(r, ctx))
        except RoiError as exc:
            raise RoiError(f"Component {r.name!r}: {exc}") from None
    return out


def _resolved(row: RowSettings, ctx: SeedContext) -> RowSettings:
    kind = _LAYER_KINDS.get(row.source.kind)
    if kind is None or not (row.source.layer or row.source.layer_uid):
        return row
    name = ctx.layer_name(row.source.layer, row.source.layer_uid, kind)
    return replace(row, source=replace(row.source, layer=name))


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
    rows = resolve_layers(rows, ctx)
    label_layer = next((r.source.layer for r in rows if r.source.kind == RoiLabel.kind), None)
    ctx = replace(ctx, label_layer=label_layer)
    comps = []
    for r in rows:
        try:
            h_src, w_src = source_of(r, ctx), None
            if h_src is not None:
                inp = source_input(r.source.kind)
                w_src = None if inp.w_source is None else inp.w_source(r.source, ctx)
            comps.append(ComponentSpec(r.name, color=r.color, h_source=h_src, w_source=w_src,
                                       background=r.background,
                                       use_subtracted=r.use_subtracted, locked=r.locked,
                                       anchor=r.anchor))
        except (ValueError, TypeError, OSError) as exc:
            cls = RoiError if isinstance(exc, RoiError) else (
                TypeError if isinstance(exc, TypeError) else ValueError)
            raise cls(f"Component {r.name!r}: {exc}") from None
    labels = ctx.labels(label_layer) if label_layer is not None else None
    return comps, labels


def seed_spectra(rows: Sequence[RowSettings], ctx: SeedContext, *, read_lazy: bool = True):
    """The seed spectrum of every row that has a source, for previews.

    Rows whose input has a region (:attr:`SourceInput.roi`) give the mean spectrum
    of its pixels on the raw data (:func:`napari_unmix.core.data.roi_mean_spectrum`,
    as the run); the other sources their spectrum on the image's spectral axis
    (``source.spectrum`` in a context of the image's channels).

    Parameters
    ----------
    rows : sequence of RowSettings
    ctx : SeedContext
    read_lazy : bool, default True
        Also read ROI pixels from lazy (e.g. dask) image data; False skips those
        rows (automatic previews must stay instant).

    Returns
    -------
    spectra : list of (RowSettings, ndarray)
    problems : list of str
        One line per row that could not be previewed, with the reason.
    """
    grid = ctx.grid
    axis, _ = grid.spectral_values()
    layer = grid.layer
    stack = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    lazy = not isinstance(stack, np.ndarray)
    channels = SourceContext.for_channels(grid.n_channels, axis)
    spectra, problems = [], []
    for row in rows:
        if row.source.kind == NONE_KIND:
            continue
        try:
            row = _resolved(row, ctx)
            inp = source_input(row.source.kind)
            if inp.roi is not None:
                if lazy and not read_lazy:
                    continue
                values = roi_mean_spectrum(stack, inp.roi(row.source, ctx),
                                           spectral_axis=grid.spectral_axis_index)
            else:
                values, _ = inp.to_source(row.source, ctx).spectrum(
                    channels, channels.raw, name=row.name, warnings=[])
        except (ValueError, TypeError, OSError) as exc:
            problems.append(f"{row.name}: {exc}")
            continue
        spectra.append((row, np.asarray(values, dtype=np.float64)))
    return spectra, problems
