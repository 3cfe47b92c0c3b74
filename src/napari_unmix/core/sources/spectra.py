"""Sources that give a spectrum without looking at pixels: given spectra, models, results."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..data import matrix_to_maps
from ..spectra import check_peaks, gaussian_model
from .base import Source, as_int, register_source

__all__ = ["Flat", "FromComponent", "Gaussian", "PreviousResult", "Spectrum"]


@register_source
@dataclass(eq=False)
class Spectrum(Source):
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
    title: ClassVar[str] = "spectrum file"
    _array_fields: ClassVar[tuple[str, ...]] = ("values", "axis")
    gives_spectrum: ClassVar[bool] = True
    background_ok: ClassVar[bool] = True
    ranks_pixels: ClassVar[bool] = True

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
        """Read one column of a spectra file (see :func:`~napari_unmix.core.spectra.read_spectra`).

        ``column`` is a 0-based index among the spectrum columns (the axis column
        not counted) or a header name.  The values are embedded, so a config built
        from them does not depend on the file afterwards.
        """
        from ..spectra import read_spectra

        table = read_spectra(path, **read_kwargs)
        idx = table.column_index(column)
        return cls(values=table.values[idx].copy(), axis=table.axis.copy(),
                   label=f"{path}:{table.names[idx]}")

    def describe(self) -> str:
        return f"spectrum {self.label}" if self.label else "spectrum"

    def spectrum(self, ctx, X, *, name="component", warnings=None):
        warnings = [] if warnings is None else warnings
        return ctx.on_channels(self.values, self.axis, name=name, what=self.describe(),
                               warnings=warnings), None


@register_source
@dataclass(eq=False)
class Gaussian(Source):
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
        :class:`~napari_unmix.core.sources.SeedPixels`).  Otherwise the W image is
        the model-weighted band image.
    """

    peaks: list
    width_kind: str = "fwhm"
    baseline: float = 0.0
    n_seed_pixels: int | None = None
    kind: ClassVar[str] = "gaussian"
    title: ClassVar[str] = "Gaussian resonance"
    gives_spectrum: ClassVar[bool] = True
    background_ok: ClassVar[bool] = True
    ranks_pixels: ClassVar[bool] = True
    #: a model is a sketch of a band: the data should reshape it
    trust: ClassVar[float] = 0.1

    def __post_init__(self):
        self.peaks = check_peaks(self.peaks)
        if self.width_kind not in ("fwhm", "sigma"):
            raise ValueError(f"width_kind must be 'fwhm' or 'sigma', got {self.width_kind!r}.")
        self.baseline = float(self.baseline)
        if not np.isfinite(self.baseline) or self.baseline < 0:
            raise ValueError(f"Gaussian baseline must be finite and >= 0, got {self.baseline}.")
        if self.n_seed_pixels is not None:
            self.n_seed_pixels = as_int(self.n_seed_pixels, "n_seed_pixels")
            if self.n_seed_pixels < 1:
                raise ValueError("n_seed_pixels must be >= 1.")

    def describe(self) -> str:
        centers = ", ".join(f"{c:g}" for c, _, _ in self.peaks)
        return f"gaussian at {centers}"

    def model(self, ctx, warnings) -> np.ndarray:
        """The model on the stack's spectral axis (channel indices when it has none)."""
        axis = ctx.axis_or_channels(warnings, "Gaussian model")
        return gaussian_model(axis, self.peaks, width_kind=self.width_kind,
                              baseline=self.baseline)

    def spectrum(self, ctx, X, *, name="component", warnings=None):
        from .base import cosine_to

        warnings = [] if warnings is None else warnings
        h = self.model(ctx, warnings)
        if not h.any():
            raise ValueError(f"Component {name!r}: the Gaussian model is zero on every channel; "
                             "check its centres and widths against the spectral axis.")
        n = X.shape[0]
        if self.n_seed_pixels is not None:
            cos = cosine_to(X, h)
            top = np.argsort(-cos, kind="stable")[:min(self.n_seed_pixels, n)]
            info = np.zeros(n)
            info[top] = 1.0
        else:
            info = X @ (h / h.sum())  # model-weighted band image
        return h, info


@register_source
@dataclass(eq=False)
class Flat(Source):
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
    title: ClassVar[str] = "flat (non-resonant)"
    gives_spectrum: ClassVar[bool] = True
    background_ok: ClassVar[bool] = True

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

    def spectrum(self, ctx, X, *, name="component", warnings=None):
        h = np.full(ctx.n_channels, self.level)
        return h, X.mean(axis=1, dtype=np.float64)  # its band image: the mean intensity


@register_source
@dataclass(eq=False)
class PreviousResult(Source):
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
    title: ClassVar[str] = "previous result"
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
    def from_result(cls, result, index, *, h=True, w=True,
                    spatial_shape=None) -> PreviousResult:
        """Take component ``index`` (int or name) of an :class:`UnmixResult`.

        ``h`` / ``w`` choose whether its spectrum (``H`` row) and its map (``W``
        column) are taken; both are copied.  ``result`` may also be a
        :class:`~napari_unmix.io.ResultBundle` (a result read back from a file),
        whose spatial shape is then the map's.

        ``spatial_shape`` is the spatial shape of the stack the result was computed
        from: the map keeps it, so that it only seeds an image of that shape.
        Without it a result's map is one value per pixel, and it fits any image with
        as many pixels (a 128 x 128 result would seed a 64 x 256 image, folded).
        """
        if spatial_shape is None and hasattr(result, "spatial_shape") \
                and hasattr(result, "result"):   # a ResultBundle
            spatial_shape = tuple(result.spatial_shape)
        result = getattr(result, "result", result)
        if isinstance(index, str):
            if index not in result.component_names:
                raise ValueError(f"The result has no component {index!r}; it has "
                                 f"{', '.join(result.component_names)}.")
            index = result.component_names.index(index)
        index = as_int(index, "index")
        if not -result.n_components <= index < result.n_components:
            raise ValueError(f"Component index {index} is out of range for a result with "
                             f"{result.n_components} components.")
        values = result.spectral_values
        column = np.array(result.W[:, index]) if w else None
        mask = result.pixel_mask
        if column is not None and mask is not None:  # pixels left out: the image, NaN there
            column = matrix_to_maps(column[:, None], mask.shape, mask=mask)[0]
        if column is not None and spatial_shape is not None and column.ndim == 1:
            shape = tuple(int(n) for n in spatial_shape)
            if int(np.prod(shape)) != column.size:
                raise ValueError(f"spatial_shape {shape} holds {int(np.prod(shape))} pixels, "
                                 f"but the result's maps have {column.size}; give the shape "
                                 "of the stack the result was computed from.")
            column = column.reshape(shape)
        return cls(h=np.array(result.H[index]) if h else None, w=column,
                   axis=None if values is None else np.array(values),
                   label=f"{result.mode} component {result.component_names[index]}")

    def describe(self) -> str:
        return f"previous-result {self.label}" if self.label else "previous-result"

    def check_role(self, role, name):
        part = "h" if role == "h_source" else "w"
        if getattr(self, part) is None:
            what = "spectrum (h)" if part == "h" else "map (w)"
            raise ValueError(f"Component {name!r}: the PreviousResult used as {role} has no "
                             f"{what}.")

    def spectrum(self, ctx, X, *, name="component", warnings=None):
        if self.h is None:
            raise ValueError(f"Component {name!r}: the PreviousResult used as h_source has no "
                             "spectrum (h).")
        warnings = [] if warnings is None else warnings
        return ctx.on_channels(self.h, self.axis, name=name, what=self.describe(),
                               warnings=warnings), None

    def given_map(self, ctx, *, name="component"):
        return ctx.flat_map(self.w, f"Component {name!r}: {self.describe()} map")

    def seed_map(self, ctx, *, name="component", floor=1e-3):
        from .maps import unit_max

        return unit_max(self.given_map(ctx, name=name))

    def needs_geometry(self, *, as_map=False):
        return as_map

    def on_plane(self, plane, *, spatial_shape, labels=None):
        if self.w is None or np.asarray(self.w).size != int(np.prod(spatial_shape)):
            return self
        return PreviousResult(h=self.h, w=np.asarray(self.w).reshape(spatial_shape)[plane],
                              axis=self.axis, label=self.label)

    def on_every_plane(self, *, spatial_shape, labels=None):
        if self.w is None:
            return self
        if self.h is None:
            return None
        return PreviousResult(h=self.h, axis=self.axis, label=self.label)


@register_source
@dataclass(eq=False)
class FromComponent(Source):
    """Preprocessing only: the spectrum seed of the component called ``name``.

    Its spectrum is evaluated on the raw data (before any subtraction).
    """

    name: str
    kind: ClassVar[str] = "from-component"
    background_ok: ClassVar[bool] = True

    def describe(self) -> str:
        return f"component {self.name!r}"

