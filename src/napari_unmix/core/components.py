"""Component specifications for seeded NNMF and fixed-H NNLS.

A :class:`ComponentSpec` says, for one component of an analysis, where its initial
spectrum (``H0`` row) and its initial map (``W0`` column) come from.  Each origin is
a small *source* dataclass:

=====================  ==========  =====================================================
source                 gives        meaning
=====================  ==========  =====================================================
:class:`RoiMask`       spectrum     mean spectrum of the pixels of a boolean mask
:class:`RoiLabel`      spectrum     mean spectrum of one label of the analysis' label image
:class:`Spectrum`      spectrum     a given spectrum, resampled onto the stack's axis
:class:`Gaussian`      spectrum     a sum of Gaussian resonances (spectral information)
:class:`Flat`          spectrum     a constant spectrum: a non-resonant background, an offset
:class:`SeedPixels`    spectrum     mean spectrum of chosen pixels, or of the ``n_best``
                                    pixels that match a model (spectral information)
:class:`PreviousResult` both        a spectrum and/or a map of an earlier result
:class:`FixedW`        map          a map used exactly as given (no normalisation)
:class:`ImportedMap`   map          a map normalised to unit maximum
:class:`BackgroundMap` map          a given map, or the mean image of the raw data
:class:`FromComponent` spectrum     preprocessing only: "the spectrum of component NAME"
=====================  ==========  =====================================================

Every spec and source converts to plain JSON types with ``to_dict`` and back with
``from_dict``.  Arrays are stored bit-exactly: the bytes written by ``np.save``,
zlib-compressed and base64-encoded (:func:`encode_array`).  When a dict of arrays is
passed as ``arrays=`` the arrays go there instead and the JSON keeps a reference, which
is how an :class:`~napari_unmix.core.result.UnmixResult` carries its config.
"""

from __future__ import annotations

import base64
import io
import numbers
import zlib
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "H_SOURCES",
    "SOURCES",
    "W_SOURCES",
    "BackgroundMap",
    "ComponentSpec",
    "FixedW",
    "Flat",
    "FromComponent",
    "Gaussian",
    "ImportedMap",
    "PreviousResult",
    "RoiLabel",
    "RoiMask",
    "SeedPixels",
    "Spectrum",
    "components_from_spectra",
    "decode_array",
    "encode_array",
    "source_from_dict",
]

_ARRAY_KEY = "__ndarray__"
_REF_KEY = "__array_ref__"


# -- exact array encoding ---------------------------------------------------------------
def encode_array(a, *, arrays: dict | None = None, key: str | None = None) -> dict:
    """Encode an array for JSON, bit-exactly.

    Parameters
    ----------
    a : array_like
        Any numeric or boolean array (object arrays are refused).
    arrays : dict, optional
        If given, the array is stored in it under ``key`` and only a reference is
        returned.
    key : str, optional
        Name of the array in ``arrays``.

    Returns
    -------
    dict
        ``{"__ndarray__": base64 text, "dtype": ..., "shape": [...]}``, or
        ``{"__array_ref__": key}``.
    """
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"Cannot store an array of dtype {a.dtype} in a config; "
                        "use numbers or booleans.")
    if arrays is not None:
        if key is None:
            raise ValueError("encode_array: a key is needed to store an array by reference.")
        arrays[key] = a.copy()
        return {_REF_KEY: key}
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    text = base64.b64encode(zlib.compress(buf.getvalue(), 6)).decode("ascii")
    return {_ARRAY_KEY: text, "dtype": a.dtype.str, "shape": list(a.shape)}


def decode_array(d, *, arrays: dict | None = None) -> np.ndarray:
    """Inverse of :func:`encode_array`."""
    if isinstance(d, dict) and _REF_KEY in d:
        key = d[_REF_KEY]
        if arrays is None or key not in arrays:
            raise ValueError(
                f"The config refers to array {key!r}, which was not supplied. Load the "
                "config from the result that holds it (AnalysisConfig.from_result)."
            )
        return np.array(arrays[key], copy=True)
    if isinstance(d, dict) and _ARRAY_KEY in d:
        raw = zlib.decompress(base64.b64decode(d[_ARRAY_KEY]))
        return np.load(io.BytesIO(raw), allow_pickle=False)
    raise ValueError(f"Not an encoded array: {str(d)[:80]!r}.")


def _is_encoded(v) -> bool:
    return isinstance(v, dict) and (_ARRAY_KEY in v or _REF_KEY in v)


def _enc(v, arrays, key):
    return None if v is None else encode_array(v, arrays=arrays, key=key)


def _dec(v, arrays):
    return None if v is None else decode_array(v, arrays=arrays)


# -- sources ----------------------------------------------------------------------------
class _Source:
    """Base of the source dataclasses: JSON conversion through their fields."""

    kind: ClassVar[str] = ""
    #: names of fields holding arrays
    _array_fields: ClassVar[tuple[str, ...]] = ()
    gives_spectrum: ClassVar[bool] = False
    gives_map: ClassVar[bool] = False

    def to_dict(self, *, arrays: dict | None = None, prefix: str = "") -> dict:
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in self._array_fields:
                out[f.name] = _enc(v, arrays, f"{prefix}{f.name}")
            elif isinstance(v, _Source):
                out[f.name] = v.to_dict(arrays=arrays, prefix=f"{prefix}{f.name}/")
            else:
                out[f.name] = _plain(v)
        return out

    @classmethod
    def _from_fields(cls, d: dict, arrays):
        kwargs = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            v = d[f.name]
            if f.name in cls._array_fields:
                v = _dec(v, arrays)
            elif isinstance(v, dict) and "kind" in v:
                v = source_from_dict(v, arrays=arrays)
            kwargs[f.name] = v
        return cls(**kwargs)

    def describe(self) -> str:
        """Short text for reports, e.g. ``"roi-label 3"``."""
        return self.kind


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _as_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    return int(value)


@dataclass(eq=False)
class RoiMask(_Source):
    """Mean spectrum of the pixels selected by a boolean mask.

    Parameters
    ----------
    mask : array_like of bool
        Either the stack's spatial shape or flat ``(n_pixels,)``.
    """

    mask: np.ndarray
    kind: ClassVar[str] = "roi-mask"
    _array_fields: ClassVar[tuple[str, ...]] = ("mask",)
    gives_spectrum: ClassVar[bool] = True

    def __post_init__(self):
        m = np.asarray(self.mask)
        if m.dtype != bool:
            raise TypeError(
                f"RoiMask.mask must be boolean, got dtype {m.dtype}; for a label image use "
                "RoiLabel(label_id) or pass (labels == id)."
            )
        self.mask = m


@dataclass(eq=False)
class RoiLabel(_Source):
    """Mean spectrum of the pixels of one label of the analysis' label image.

    The label image itself is given to :func:`~napari_unmix.core.seeds.build_seeds`
    or :func:`~napari_unmix.core.analysis.run_analysis` as ``labels``.
    """

    label_id: int
    kind: ClassVar[str] = "roi-label"
    gives_spectrum: ClassVar[bool] = True

    def __post_init__(self):
        self.label_id = _as_int(self.label_id, "RoiLabel.label_id")
        if self.label_id <= 0:
            raise ValueError(f"RoiLabel.label_id must be >= 1 (0 is unlabelled), "
                             f"got {self.label_id}.")

    def describe(self) -> str:
        return f"roi-label {self.label_id}"


@dataclass(eq=False)
class Spectrum(_Source):
    """A given spectrum (imported from a file, typed in, measured elsewhere).

    Parameters
    ----------
    values : array_like, shape (n_points,)
        Non-negative spectrum values.
    axis : array_like, shape (n_points,), optional
        Spectral positions of ``values`` (ascending or descending).  When given, the
        spectrum is resampled onto the stack's spectral axis
        (:func:`~napari_unmix.core.spectra.resample_spectrum`); when omitted,
        ``values`` must already have one value per channel.
    label : str, optional
        Where it came from (file and column), for reports.
    """

    values: np.ndarray
    axis: np.ndarray | None = None
    label: str | None = None
    kind: ClassVar[str] = "spectrum"
    _array_fields: ClassVar[tuple[str, ...]] = ("values", "axis")
    gives_spectrum: ClassVar[bool] = True

    def __post_init__(self):
        v = np.asarray(self.values)
        if v.ndim != 1 or v.size < 1:
            raise ValueError(f"Spectrum.values must be 1-D and non-empty, got shape {v.shape}.")
        if v.dtype.kind not in "biuf":
            raise TypeError(f"Spectrum.values must be numeric, got dtype {v.dtype}.")
        self.values = v
        if self.axis is not None:
            a = np.asarray(self.axis)
            if a.shape != v.shape:
                raise ValueError(f"Spectrum.axis has shape {a.shape} but values have "
                                 f"shape {v.shape}; give one axis value per spectrum value.")
            self.axis = a

    @classmethod
    def from_file(cls, path, column=0, **read_kwargs) -> Spectrum:
        """Read one column of a spectra file (see :func:`~.spectra.read_spectra`).

        ``column`` is a 0-based index among the spectrum columns (the axis column
        not counted) or a header name.  The values are embedded, so a config built
        from them does not depend on the file afterwards.
        """
        from .spectra import read_spectra

        table = read_spectra(path, **read_kwargs)
        idx = table.column_index(column)
        return cls(values=table.values[idx].copy(), axis=table.axis.copy(),
                   label=f"{path}:{table.names[idx]}")

    def describe(self) -> str:
        return f"spectrum {self.label}" if self.label else "spectrum"


@dataclass(eq=False)
class Gaussian(_Source):
    """A resonance model: a sum of Gaussian peaks, in spectral-axis units.

    Parameters
    ----------
    peaks : sequence of (center, width, amplitude)
        One triple per peak.  ``width`` is the full width at half maximum (FWHM) by
        default; see ``width_kind``.  ``amplitude`` is the peak height in data units
        (counts), which sets the scale of the spectrum seed.
    width_kind : {"fwhm", "sigma"}, default "fwhm"
        Whether ``width`` is a FWHM or a standard deviation
        (``FWHM = 2 sqrt(2 ln 2) sigma ~ 2.3548 sigma``).
    baseline : float, default 0.0
        Constant added to every channel (>= 0).
    n_seed_pixels : int, optional
        Spectral-information W image: when set, the ``n_seed_pixels`` pixels that
        match the model best are marked as the spatial seed (see
        :class:`SeedPixels`).  Otherwise the W image is the model-weighted band image.
    """

    peaks: list
    width_kind: str = "fwhm"
    baseline: float = 0.0
    n_seed_pixels: int | None = None
    kind: ClassVar[str] = "gaussian"
    gives_spectrum: ClassVar[bool] = True

    def __post_init__(self):
        peaks = []
        for p in list(self.peaks):
            p = tuple(float(x) for x in p)
            if len(p) != 3:
                raise ValueError(f"Each Gaussian peak is (center, width, amplitude); got {p}.")
            c, w, a = p
            if not (np.isfinite(c) and np.isfinite(w) and np.isfinite(a)) or w <= 0 or a < 0:
                raise ValueError(f"Gaussian peak {p}: width must be > 0 and amplitude >= 0, "
                                 "all finite.")
            peaks.append(p)
        if not peaks:
            raise ValueError("A Gaussian model needs at least one peak (center, width, "
                             "amplitude).")
        self.peaks = peaks
        if self.width_kind not in ("fwhm", "sigma"):
            raise ValueError(f"width_kind must be 'fwhm' or 'sigma', got {self.width_kind!r}.")
        self.baseline = float(self.baseline)
        if not np.isfinite(self.baseline) or self.baseline < 0:
            raise ValueError(f"Gaussian baseline must be finite and >= 0, got {self.baseline}.")
        if self.n_seed_pixels is not None:
            self.n_seed_pixels = _as_int(self.n_seed_pixels, "n_seed_pixels")
            if self.n_seed_pixels < 1:
                raise ValueError("n_seed_pixels must be >= 1.")

    def describe(self) -> str:
        centers = ", ".join(f"{c:g}" for c, _, _ in self.peaks)
        return f"gaussian at {centers}"


@dataclass(eq=False)
class Flat(_Source):
    """A constant spectrum: the same value on every channel.

    The shape of a spectrally flat contribution: the non-resonant background of
    CARS, the offset of an SRS or a detector.  Seeded and locked, it keeps that
    offset out of the other components' spectra, which NNMF alone cannot do when
    the offset is present in every pixel.

    Parameters
    ----------
    level : float, default 1.0
        The value on every channel, in data units (> 0).  It sets the scale of the
        spectrum seed, as a Gaussian model's amplitude does.
    absorb_offsets : bool, default True
        In seeded NNMF, when this row is locked: after the fit, lower every other
        unlocked spectrum to a minimum of zero and add what was taken off to this
        row's map (:func:`~napari_unmix.core.offsets.move_offsets_to_flat_row`).
        ``W H`` and the other maps do not change; the amounts are reported in the
        fit summary (``offsets_moved``).  An offset in every pixel cannot be told
        apart from an offset in the spectra, and this picks offset-free spectra.
    """

    level: float = 1.0
    absorb_offsets: bool = True
    kind: ClassVar[str] = "flat"
    gives_spectrum: ClassVar[bool] = True

    def __post_init__(self):
        if isinstance(self.level, bool) or not isinstance(self.level, numbers.Real):
            raise TypeError(f"Flat level must be a number, got {self.level!r}.")
        self.level = float(self.level)
        if not np.isfinite(self.level) or self.level <= 0:
            raise ValueError(f"Flat level must be finite and > 0, got {self.level}.")
        if not isinstance(self.absorb_offsets, (bool, np.bool_)):
            raise TypeError(f"absorb_offsets must be True or False, got "
                            f"{self.absorb_offsets!r}.")
        self.absorb_offsets = bool(self.absorb_offsets)

    def describe(self) -> str:
        return f"flat {self.level:g}"


@dataclass(eq=False)
class SeedPixels(_Source):
    """Mean spectrum of seed pixels, chosen by hand or by a resonance model.

    Give either ``pixels`` or ``n_best`` with ``model``.

    Parameters
    ----------
    pixels : array_like of int, optional
        Flat pixel indices ``(n,)`` into the C-ordered spatial grid, or coordinates
        ``(n, n_spatial_dims)``.
    n_best : int, optional
        Take the ``n_best`` pixels whose spectra match ``model`` best (cosine
        similarity to the model, on the component's working data).
    model : Gaussian or Spectrum, optional
        The resonance model used to rank pixels.

    The W image this source provides (used unless ``overwrite`` replaces it) is the
    cosine similarity of every pixel to the resulting spectrum.
    """

    pixels: np.ndarray | None = None
    n_best: int | None = None
    model: Any = None
    kind: ClassVar[str] = "seed-pixels"
    _array_fields: ClassVar[tuple[str, ...]] = ("pixels",)
    gives_spectrum: ClassVar[bool] = True

    def __post_init__(self):
        if (self.pixels is None) == (self.n_best is None):
            raise ValueError("SeedPixels needs either pixels=... or n_best=... with a model.")
        if self.pixels is not None:
            p = np.asarray(self.pixels)
            if p.dtype.kind not in "iu" or p.ndim not in (1, 2) or p.size == 0:
                raise ValueError("SeedPixels.pixels must be a non-empty integer array of flat "
                                 "indices (n,) or coordinates (n, ndim); got "
                                 f"{p.dtype} {p.shape}.")
            self.pixels = p
        else:
            self.n_best = _as_int(self.n_best, "SeedPixels.n_best")
            if self.n_best < 1:
                raise ValueError("SeedPixels.n_best must be >= 1.")
            if not isinstance(self.model, (Gaussian, Spectrum)):
                raise TypeError("SeedPixels(n_best=...) needs model=Gaussian(...) or "
                                "Spectrum(...) to rank the pixels.")

    def describe(self) -> str:
        if self.pixels is not None:
            return f"seed-pixels ({len(self.pixels)})"
        return f"seed-pixels (best {self.n_best} for {self.model.describe()})"


@dataclass(eq=False)
class PreviousResult(_Source):
    """A spectrum and/or map taken from an earlier result.

    Parameters
    ----------
    h : array_like (n_channels,), optional
        The spectrum (an ``H`` row).
    w : array_like (n_pixels,) or spatial shape, optional
        The map (a ``W`` column); used as an imported map (normalised to unit max).
    axis : array_like, optional
        Spectral axis of ``h`` when it differs from the stack's (resampled then).
    label : str, optional
        Where it came from, for reports.
    """

    h: np.ndarray | None = None
    w: np.ndarray | None = None
    axis: np.ndarray | None = None
    label: str | None = None
    kind: ClassVar[str] = "previous-result"
    _array_fields: ClassVar[tuple[str, ...]] = ("h", "w", "axis")
    gives_spectrum: ClassVar[bool] = True
    gives_map: ClassVar[bool] = True

    def __post_init__(self):
        if self.h is None and self.w is None:
            raise ValueError("PreviousResult needs h (a spectrum), w (a map) or both.")
        if self.h is not None:
            self.h = np.asarray(self.h)
            if self.h.ndim != 1:
                raise ValueError(f"PreviousResult.h must be one spectrum (1-D), got shape "
                                 f"{self.h.shape}.")
        if self.w is not None:
            self.w = np.asarray(self.w)
        if self.axis is not None:
            self.axis = np.asarray(self.axis)

    @classmethod
    def from_result(cls, result, index, *, h=True, w=True) -> PreviousResult:
        """Take component ``index`` (int or name) of an :class:`UnmixResult`.

        ``h`` / ``w`` choose whether its spectrum (``H`` row) and its map (``W``
        column) are taken; both are copied.
        """
        if isinstance(index, str):
            if index not in result.component_names:
                raise ValueError(f"The result has no component {index!r}; it has "
                                 f"{', '.join(result.component_names)}.")
            index = result.component_names.index(index)
        index = _as_int(index, "index")
        if not -result.n_components <= index < result.n_components:
            raise ValueError(f"Component index {index} is out of range for a result with "
                             f"{result.n_components} components.")
        return cls(h=np.array(result.H[index]) if h else None,
                   w=np.array(result.W[:, index]) if w else None,
                   axis=None if result.spectral_axis is None else np.array(result.spectral_axis),
                   label=f"{result.mode} component {result.component_names[index]}")

    def describe(self) -> str:
        return f"previous-result {self.label}" if self.label else "previous-result"


@dataclass(eq=False)
class FixedW(_Source):
    """A spatial seed used exactly as given (no normalisation, zeros kept).

    Parameters
    ----------
    map : array_like, spatial shape or (n_pixels,)
        Non-negative.
    """

    map: np.ndarray
    kind: ClassVar[str] = "fixed-w"
    _array_fields: ClassVar[tuple[str, ...]] = ("map",)
    gives_map: ClassVar[bool] = True

    def __post_init__(self):
        self.map = np.asarray(self.map)


@dataclass(eq=False)
class ImportedMap(_Source):
    """An imported map (e.g. an earlier result's map), normalised to unit maximum."""

    map: np.ndarray
    label: str | None = None
    kind: ClassVar[str] = "imported-map"
    _array_fields: ClassVar[tuple[str, ...]] = ("map",)
    gives_map: ClassVar[bool] = True

    def __post_init__(self):
        self.map = np.asarray(self.map)


@dataclass(eq=False)
class BackgroundMap(_Source):
    """Spatial seed of a background component.

    Parameters
    ----------
    map : array_like, optional
        A given background map.  When omitted, the mean image of the raw data is
        used.  Either way it is normalised to unit maximum.
    """

    map: np.ndarray | None = None
    kind: ClassVar[str] = "background-map"
    _array_fields: ClassVar[tuple[str, ...]] = ("map",)
    gives_map: ClassVar[bool] = True

    def __post_init__(self):
        if self.map is not None:
            self.map = np.asarray(self.map)


@dataclass(eq=False)
class FromComponent(_Source):
    """Preprocessing only: the spectrum seed of the component called ``name``.

    Its spectrum is evaluated on the raw data (before any subtraction).
    """

    name: str
    kind: ClassVar[str] = "from-component"

    def describe(self) -> str:
        return f"component {self.name!r}"


SOURCES: dict[str, type] = {cls.kind: cls for cls in (
    RoiMask, RoiLabel, Spectrum, Gaussian, Flat, SeedPixels, PreviousResult, FixedW,
    ImportedMap, BackgroundMap, FromComponent)}
#: Sources that can give a spectrum seed (``h_source``).
H_SOURCES = tuple(c for c in SOURCES.values() if c.gives_spectrum)
#: Sources that can give a map seed (``w_source``).
W_SOURCES = tuple(c for c in SOURCES.values() if c.gives_map)


def source_from_dict(d: dict, *, arrays: dict | None = None):
    """Rebuild a source from :meth:`to_dict` output."""
    if not isinstance(d, dict) or "kind" not in d:
        raise ValueError(f"Not a source description: {str(d)[:80]!r}.")
    kind = d["kind"]
    if kind not in SOURCES:
        raise ValueError(f"Unknown source kind {kind!r}; known: {', '.join(SOURCES)}.")
    return SOURCES[kind]._from_fields(d, arrays)


# -- component spec ---------------------------------------------------------------------
@dataclass(eq=False)
class ComponentSpec:
    """One component of a seeded analysis.

    Parameters
    ----------
    name : str
        Component name (layer names, CSV headers, reports).
    color : str, optional
        Display colour (any matplotlib / napari colour string).
    h_source : source, optional
        Where the spectrum seed comes from: :class:`RoiMask`, :class:`RoiLabel`,
        :class:`Spectrum`, :class:`Gaussian`, :class:`SeedPixels` or
        :class:`PreviousResult`.  ``None``: the spectrum is estimated by the residual
        fallback (see :mod:`~napari_unmix.core.seeds`).
    w_source : source, optional
        Where the map seed comes from: :class:`FixedW`, :class:`ImportedMap`,
        :class:`BackgroundMap` or :class:`PreviousResult`.  ``None``: built from the
        spectrum by the analysis' W-seed mode (or taken from spectral information,
        see ``overwrite``).
    background : bool, default False
        A background component: its seeds are estimated from the raw data.
    use_subtracted : bool, default True
        For non-background components: estimate seeds from the processed
        (background-subtracted, smoothed) data.  False: from the raw data.
    locked : bool, default False
        Keep this spectrum fixed during seeded NNMF (spectral locking).  Needs a
        spectrum seed.
    """

    name: str
    color: str | None = None
    h_source: Any = None
    w_source: Any = None
    background: bool = False
    use_subtracted: bool = True
    locked: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"A component needs a non-empty name, got {self.name!r}.")
        if self.h_source is not None and not isinstance(self.h_source, H_SOURCES):
            raise TypeError(
                f"Component {self.name!r}: h_source {type(self.h_source).__name__} cannot "
                f"give a spectrum; use one of {', '.join(c.__name__ for c in H_SOURCES)}."
            )
        if self.w_source is not None and not isinstance(self.w_source, W_SOURCES):
            raise TypeError(
                f"Component {self.name!r}: w_source {type(self.w_source).__name__} cannot "
                f"give a map; use one of {', '.join(c.__name__ for c in W_SOURCES)}."
            )
        if isinstance(self.h_source, PreviousResult) and self.h_source.h is None:
            raise ValueError(f"Component {self.name!r}: the PreviousResult used as h_source "
                             "has no spectrum (h).")
        if isinstance(self.w_source, PreviousResult) and self.w_source.w is None:
            raise ValueError(f"Component {self.name!r}: the PreviousResult used as w_source "
                             "has no map (w).")
        for flag in ("background", "use_subtracted", "locked"):
            setattr(self, flag, bool(getattr(self, flag)))
        if self.locked and self.h_source is None:
            raise ValueError(f"Component {self.name!r} is locked but has no spectrum source: "
                             "a locked spectrum must be given (ROI, file, model ...).")

    def to_dict(self, *, arrays: dict | None = None, prefix: str = "") -> dict:
        """Plain-JSON description (arrays encoded, or stored in ``arrays``)."""
        return {
            "name": self.name,
            "color": self.color,
            "h_source": None if self.h_source is None else self.h_source.to_dict(
                arrays=arrays, prefix=f"{prefix}h_source/"),
            "w_source": None if self.w_source is None else self.w_source.to_dict(
                arrays=arrays, prefix=f"{prefix}w_source/"),
            "background": self.background,
            "use_subtracted": self.use_subtracted,
            "locked": self.locked,
        }

    @classmethod
    def from_dict(cls, d: dict, *, arrays: dict | None = None) -> ComponentSpec:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"Unknown component field(s) {sorted(unknown)}; known: "
                             f"{sorted(known)}.")
        kw = dict(d)
        for key in ("h_source", "w_source"):
            if kw.get(key) is not None:
                kw[key] = source_from_dict(kw[key], arrays=arrays)
        return cls(**kw)



def components_from_spectra(path, *, columns=None, locked=False, colors=None,
                            **read_kwargs) -> list[ComponentSpec]:
    """One :class:`ComponentSpec` per spectrum of a spectra file.

    Convenient for ``--spectra FILE``-style inputs: each column becomes a component
    named after its header, seeded with that spectrum (embedded, with the file's
    axis, so it is resampled onto the stack's axis when one is given).

    Parameters
    ----------
    path : str or Path
        CSV / TXT file (see :func:`~napari_unmix.core.spectra.read_spectra`).
    columns : sequence of int or str, optional
        Which spectrum columns to use (default: all).
    locked : bool, default False
        Lock every spectrum (seeded NNMF keeps them fixed).
    colors : sequence of str, optional
        One display colour per component.
    """
    from .spectra import read_spectra

    table = read_spectra(path, **read_kwargs)
    idx = [table.column_index(c) for c in (range(table.n_spectra) if columns is None
                                            else columns)]
    if colors is not None and len(colors) != len(idx):
        raise ValueError(f"{len(colors)} colours for {len(idx)} spectra.")
    return [ComponentSpec(table.names[i], color=None if colors is None else colors[j],
                          h_source=Spectrum(values=table.values[i].copy(),
                                            axis=table.axis.copy(),
                                            label=f"{path}:{table.names[i]}"),
                          locked=locked)
            for j, i in enumerate(idx)]
