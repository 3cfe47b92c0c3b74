"""The base of every seed source, the context sources are evaluated in, and the registry.

A *source* says where one seed of a component comes from: its spectrum (an ``H0``
row), its map (a ``W0`` column), or both.  Each source class is a small dataclass
that owns its behaviour:

* :meth:`Source.spectrum` -- the spectrum it gives on the component's working data;
* :meth:`Source.seed_map` -- the map it gives (map sources);
* :meth:`Source.needs_geometry` -- whether it needs the image's geometry (a pooled
  pixel sample has none);
* :meth:`Source.on_plane` / :meth:`Source.on_every_plane` -- the same source for one
  plane of a z / t series, or for every plane.

They are evaluated against a :class:`SeedContext`: the raw and processed data, the
spatial shape, the label image and the spectral values of the stack.

:func:`register_source` adds a class to :data:`SOURCES` (keyed by its ``kind``);
configs, the CLI and the dock's component table find sources there.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from .._validation import as_float_array
from ..encoding import decode_array, encode_array, plain_value
from ..spectra import resample_spectrum

__all__ = ["SOURCES", "SeedContext", "Source", "register_source", "source_from_dict"]

#: Every source class, by its ``kind``.
SOURCES: dict[str, type] = {}


def register_source(cls: type) -> type:
    """Register a source class under its ``kind`` (usable as a class decorator).

    Raises
    ------
    ValueError
        When another class already uses that kind.
    """
    kind = getattr(cls, "kind", "")
    if not kind:
        raise ValueError(f"{cls.__name__} needs a non-empty class attribute 'kind'.")
    if kind in SOURCES and SOURCES[kind] is not cls:
        raise ValueError(f"A source of kind {kind!r} is already registered "
                         f"({SOURCES[kind].__name__}).")
    SOURCES[kind] = cls
    return cls


def source_from_dict(d: dict, *, arrays: dict | None = None):
    """Rebuild a source from its :meth:`Source.to_dict` output."""
    if not isinstance(d, dict) or "kind" not in d:
        raise ValueError(f"Not a source description: {str(d)[:80]!r}.")
    kind = d["kind"]
    if kind not in SOURCES:
        raise ValueError(f"Unknown source kind {kind!r}; known: {', '.join(SOURCES)}.")
    return SOURCES[kind].from_fields(d, arrays)


def as_int(value, name) -> int:
    """``value`` as an int; booleans and non-integers are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    return int(value)


# -- the context -------------------------------------------------------------------------
@dataclass(eq=False)
class SeedContext:
    """What sources are evaluated against.

    Parameters
    ----------
    raw : ndarray (n_pixels, n_channels)
        Raw data, non-negative (seed estimation treats negative values as 0).
    processed : ndarray (n_pixels, n_channels), optional
        Processed (background-subtracted, smoothed) data, non-negative; defaults to
        ``raw``.
    spatial_shape : tuple of int, optional
        Spatial shape of the image; defaults to ``(n_pixels,)``.
    labels : array_like of int, optional
        The label image of :class:`~napari_unmix.core.sources.RoiLabel` sources.
    spectral_values : ndarray (n_channels,), optional
        Spectral position of every channel (wavenumbers, wavelengths).
    layout : PixelLayout, optional
        The order of the rows of ``raw`` when it is not C order of the spatial axes
        (a chunked stack read tile by tile): label images, masks, maps and pixel
        indices, given as images or in C order, are put into it.
    pixel_mask : ndarray of bool (``spatial_shape``), optional
        The pixels the rows of ``raw`` hold, in C order, when some pixels of the
        image were left out (``nan_policy="omit"``): label images, masks and maps
        are given for the whole image and read on these pixels.
    """

    raw: np.ndarray
    processed: np.ndarray | None = None
    spatial_shape: tuple | None = None
    labels: Any = None
    spectral_values: np.ndarray | None = None
    layout: Any = None
    pixel_mask: Any = None
    #: spectra resampled over part of the axis only: name -> (channels set to 0, range)
    partial: dict = field(default_factory=dict)
    _flat_labels: Any = field(default=None, repr=False)
    _kept: Any = field(default=None, repr=False)

    def __post_init__(self):
        if self.processed is None:
            self.processed = self.raw
        n = self.raw.shape[0]
        self.spatial_shape = (n,) if self.spatial_shape is None else \
            tuple(int(s) for s in self.spatial_shape)
        if self.pixel_mask is not None:
            kept = np.asarray(self.pixel_mask, dtype=bool).reshape(-1)
            if kept.size != math.prod(self.spatial_shape) or int(kept.sum()) != n:
                raise ValueError(f"pixel_mask must select the {n} rows among the "
                                 f"{math.prod(self.spatial_shape)} pixels of the image.")
            self._kept = kept

    @classmethod
    def for_channels(cls, n_channels: int, spectral_values=None) -> SeedContext:
        """A context with no pixels, for sources that need only the spectral axis
        (spectra, models: previews of seed spectra)."""
        return cls(np.zeros((1, int(n_channels))), spectral_values=spectral_values)

    @property
    def n_pixels(self) -> int:
        """The rows: the pixels that are fitted."""
        return int(self.raw.shape[0])

    @property
    def n_image_pixels(self) -> int:
        """The pixels of the image, left-out ones (``pixel_mask``) included."""
        return self.n_pixels if self._kept is None else int(self._kept.size)

    @property
    def n_channels(self) -> int:
        return int(self.raw.shape[1])

    def flat_labels(self) -> np.ndarray:
        """The label image as a flat ``(n_pixels,)`` integer array (validated once)."""
        if self._flat_labels is None:
            lab = np.asarray(self.labels)
            if lab.dtype.kind not in "iub":
                raise TypeError(f"The label image must hold integers, got dtype {lab.dtype}.")
            if lab.shape == self.spatial_shape:
                lab = lab.reshape(-1)
            if lab.shape != (self.n_image_pixels,):
                raise ValueError(f"The label image has shape {np.asarray(self.labels).shape}, "
                                 f"but the stack's spatial shape is {self.spatial_shape}.")
            self._flat_labels = self.in_row_order(lab)
        return self._flat_labels

    def flat_mask(self, mask, what: str) -> np.ndarray:
        """A boolean mask (spatial shape or flat) as a flat ``(n_pixels,)`` array."""
        m = np.asarray(mask)
        if m.dtype != bool:
            raise TypeError(f"{what} must be boolean, got dtype {m.dtype}.")
        if m.shape == self.spatial_shape:
            return self.in_row_order(m.reshape(-1))
        if m.shape == (self.n_image_pixels,):
            return self.in_row_order(m)
        raise ValueError(f"{what} has shape {m.shape}, but the image has spatial shape "
                         f"{self.spatial_shape} ({self.n_image_pixels} pixels); draw it on "
                         "the same image.")

    def flat_map(self, a, what: str) -> np.ndarray:
        """A map seed (spatial shape or flat) as a validated flat float64 array."""
        n, shape = self.n_image_pixels, self.spatial_shape
        arr = as_float_array(a, name=what)
        if arr.shape == shape:
            arr = arr.reshape(-1)
        elif arr.shape == (n, 1):
            arr = arr[:, 0]
        if arr.shape != (n,):
            raise ValueError(f"{what} has shape {np.asarray(a).shape}, but the image has spatial "
                             f"shape {shape} ({n} pixels): give a map of shape {shape} or "
                             f"({n},).")
        if self._kept is not None:  # the map on the fitted pixels only
            arr = arr[self._kept]
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} holds NaN or infinite values; maps must be finite.")
        if arr.min() < 0:
            raise ValueError(f"{what} holds negative values (minimum {float(arr.min()):.4g}); "
                             "map seeds must be >= 0. Clip or rebuild the map.")
        if not arr.any():
            raise ValueError(f"{what} is all zeros; a zero map cannot seed a component. Give a "
                             "map with positive values or remove it (the map is then built "
                             "from the spectrum).")
        arr = np.asarray(arr, dtype=np.float64)
        return arr if self._kept is not None else self.in_row_order(arr)

    def in_row_order(self, flat) -> np.ndarray:
        """A flat per-pixel array in C order of the spatial axes (every pixel of the
        image), put in the rows' order (only the fitted pixels, with ``pixel_mask``)."""
        if self._kept is not None:
            return np.asarray(flat)[self._kept]
        if self.layout is None or self.layout.is_c_order:
            return flat
        return self.layout.to_rows(flat)

    def only_left_out(self, selection) -> bool:
        """Whether ``selection`` (an image-shaped or flat bool array over the whole image)
        holds pixels, all of them left out of the fit (``pixel_mask``): what to say
        when a region seed has no pixel to fit."""
        sel = np.asarray(selection, dtype=bool).reshape(-1)
        return self._kept is not None and sel.size == self._kept.size and bool(sel.any())

    #: The end of a message on a region that lies only on left-out pixels.
    LEFT_OUT = ("lies only on pixels left out of the fit (their spectra hold NaN or infinite "
                "values, nan_policy='omit'): draw it over pixels with finite spectra.")

    def rows_of(self, c_indices) -> np.ndarray:
        """The rows of pixels given by flat C-order indices.

        Raises
        ------
        ValueError
            For pixels left out of the fit (``pixel_mask``).
        """
        if self._kept is not None:
            c = np.asarray(c_indices, dtype=np.intp)
            out = ~self._kept[c]
            if out.any():
                raise ValueError(f"{int(out.sum())} of the given pixel(s) (the first at "
                                 f"index {int(c[out][0])}) were left out of the fit: their "
                                 "spectra hold NaN or infinite values.")
            return (np.cumsum(self._kept) - 1)[c]
        if self.layout is None:
            return np.asarray(c_indices, dtype=np.intp)
        return self.layout.rows_of(c_indices)

    def on_channels(self, values, axis, *, name: str, what: str, warnings: list) -> np.ndarray:
        """A spectrum given with or without its own axis, put on the stack's channels.

        With both its axis and the stack's spectral values it is resampled (channels
        outside its range are set to 0, with a warning); otherwise it must have one
        value per channel.  The result is finite, non-negative and not all zero.
        """
        m = self.n_channels
        values = np.asarray(values, dtype=np.float64)
        if axis is None or self.spectral_values is None:
            if values.shape != (m,):
                raise ValueError(
                    f"Component {name!r}: {what} has {values.size} values but the stack has "
                    f"{m} channels. Give the spectrum's axis and the stack's spectral axis so "
                    "it can be resampled, or a spectrum with one value per channel.")
            if axis is not None:
                warnings.append(f"{what}: no stack spectral axis was given; its {m} values "
                                "were taken channel by channel.")
            out = check_spectrum_values(values, name, what)
            if not out.any():
                raise ValueError(f"Component {name!r}: {what} is all zeros; it cannot seed a "
                                 "component.")
            return out
        out, info = resample_spectrum(values, axis, self.spectral_values, outside="zero",
                                      name=f"Component {name!r}: {what}")
        if info["n_outside"]:
            lo, hi = info["source_range"]
            warnings.append(f"{what} covers {lo:g} to {hi:g}, only part of the stack's axis; "
                            f"{info['n_outside']} of {m} channel(s) outside it were set to 0.")
            self.partial[name] = (int(info["n_outside"]), float(lo), float(hi))
        out = check_spectrum_values(out, name, what)
        if not out.any():
            raise ValueError(f"Component {name!r}: {what} is zero on every channel of the "
                             "stack's axis; it cannot seed a component.")
        return out

    def axis_or_channels(self, warnings: list, what: str) -> np.ndarray:
        """The spectral values, or channel indices (with a warning) when there are none."""
        if self.spectral_values is None:
            warnings.append(f"{what}: no spectral axis was given; peak centres and widths are "
                            "read in channel indices (0 .. n_channels-1).")
            return np.arange(self.n_channels, dtype=np.float64)
        return np.asarray(self.spectral_values, dtype=np.float64)


def check_spectrum_values(v, name: str, what: str) -> np.ndarray:
    """``v`` as float64 after checking it is finite and non-negative."""
    v = np.asarray(v, dtype=np.float64)
    if not np.isfinite(v).all():
        raise ValueError(f"Component {name!r}: {what} holds NaN or infinite values.")
    if v.min() < 0:
        raise ValueError(f"Component {name!r}: {what} has negative values (minimum "
                         f"{float(v.min()):.4g}); spectrum seeds must be >= 0. Remove the "
                         "offset or clip the spectrum.")
    return v


def cosine_to(X, h) -> np.ndarray:
    """Cosine similarity of every row of ``X`` to ``h`` (0 for zero rows), clipped >= 0."""
    hn = np.linalg.norm(h)
    if hn == 0:
        return np.zeros(X.shape[0])
    xn = np.linalg.norm(X, axis=1)
    proj = X @ (h / hn)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(xn > 0, proj / np.where(xn > 0, xn, 1.0), 0.0)
    return np.clip(c, 0.0, 1.0)


# -- the base class ----------------------------------------------------------------------
class Source:
    """Base of the source dataclasses.

    Class attributes
    ----------------
    kind : str
        Identifier in configs and menus (``"roi-mask"``, ``"spectrum"`` ...).
    title : str
        Menu text of the dock's component table (empty: not offered there).
    gives_spectrum, gives_map : bool
        Whether the source can be a component's ``h_source`` / ``w_source``.
    background_ok : bool
        Whether it can give the spectrum of a background subtraction.
    trust : float
        Seeded NNMF: how much its spectrum is trusted relative to a measured one
        (it scales the analysis' ``anchor``).
    """

    kind: ClassVar[str] = ""
    title: ClassVar[str] = ""
    gives_spectrum: ClassVar[bool] = False
    gives_map: ClassVar[bool] = False
    background_ok: ClassVar[bool] = False
    trust: ClassVar[float] = 1.0
    #: names of fields holding arrays
    _array_fields: ClassVar[tuple[str, ...]] = ()

    # -- JSON ----------------------------------------------------------------------------
    def to_dict(self, *, arrays: dict | None = None, prefix: str = "") -> dict:
        """Plain-JSON description (arrays encoded, or stored in ``arrays``)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in self._array_fields:
                out[f.name] = None if v is None else encode_array(
                    v, arrays=arrays, key=f"{prefix}{f.name}")
            elif isinstance(v, Source):
                out[f.name] = v.to_dict(arrays=arrays, prefix=f"{prefix}{f.name}/")
            else:
                out[f.name] = plain_value(v)
        return out

    @classmethod
    def from_fields(cls, d: dict, arrays=None):
        """Inverse of :meth:`to_dict` for this class (``kind`` already resolved)."""
        kwargs = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            v = d[f.name]
            if f.name in cls._array_fields:
                v = None if v is None else decode_array(v, arrays=arrays)
            elif isinstance(v, dict) and "kind" in v:
                v = source_from_dict(v, arrays=arrays)
            kwargs[f.name] = v
        return cls(**kwargs)

    def describe(self) -> str:
        """Short text for reports, e.g. ``"roi-label 3"``."""
        return self.kind

    # -- behaviour -----------------------------------------------------------------------
    def check_role(self, role: str, name: str) -> None:
        """Raise ValueError when this source cannot play ``role`` (``"h_source"`` or
        ``"w_source"``) of component ``name``."""

    def spectrum(self, ctx: SeedContext, X: np.ndarray, *, name: str = "component",
                 warnings: list | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The spectrum this source gives on the working data ``X``.

        Parameters
        ----------
        ctx : SeedContext
        X : ndarray (n_pixels, n_channels)
            The component's working data (ROI means are taken from it).
        name : str
            Component name, for messages.
        warnings : list, optional
            Receives remarks (partial spectral overlap ...).

        Returns
        -------
        spectrum : ndarray (n_channels,), float64
        info_map : ndarray (n_pixels,) or None
            The W image of a spectral-information source (before normalisation).
        """
        raise TypeError(f"Component {name!r}: {type(self).__name__} cannot give a spectrum.")

    def seed_map(self, ctx: SeedContext, *, name: str = "component",
                 floor: float = 1e-3) -> np.ndarray:
        """The ``W0`` column this map source gives (float64, ``(n_pixels,)``)."""
        raise TypeError(f"Component {name!r}: {type(self).__name__} cannot give a map.")

    def given_map(self, ctx: SeedContext, *, name: str = "component") -> np.ndarray:
        """The map as given (validated, not normalised): the weights of a map-weighted
        mean spectrum."""
        raise TypeError(f"Component {name!r}: {type(self).__name__} cannot give a map.")

    def needs_geometry(self, *, as_map: bool = False) -> bool:
        """Whether this source needs the image's pixels in place (a pooled pixel sample
        of a series has none).  ``as_map``: used as a component's map source."""
        return False

    def on_plane(self, plane: int, *, spatial_shape: tuple, labels=None) -> Source:
        """This source for plane ``plane`` of a series whose spatial shape is
        ``spatial_shape`` (the series axis first).  Raises ValueError when it has
        nothing on that plane."""
        return self

    def on_every_plane(self, *, spatial_shape: tuple, labels=None) -> Source | None:
        """This source for a run that seeds every plane alike; ``None`` when it cannot
        seed every plane (a map that differs between planes).  Raises ValueError when
        it is not the same on every plane."""
        return self
