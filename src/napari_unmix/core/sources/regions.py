"""Sources that take a spectrum from pixels of the image: ROI masks, labels, seed pixels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..data import roi_mean_spectrum
from .base import SeedContext, Source, as_int, cosine_to, register_source

__all__ = ["EVERY_PLANE_REMEDY", "RoiLabel", "RoiMask", "SeedPixels", "planes_of",
           "plane_ranges"]

#: What to do about an ROI that is not the same on every plane of a series fitted plane
#: by plane, in the API's terms (the dock and the CLI replace this sentence by their own,
#: see ``_napari.help_texts`` and ``cli.console``).
EVERY_PLANE_REMEDY = ("Give the same region on every plane (or an ROI mask of one plane, "
                      "(Y, X), which applies to every plane), seed it from a label present on "
                      "every plane of the label image, or fit a shared basis on one plane.")


def plane_ranges(values) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    parts: list[list[int]] = []
    for v in sorted(int(x) for x in values):
        if parts and v == parts[-1][1] + 1:
            parts[-1][1] = v
        else:
            parts.append([v, v])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in parts)


def planes_of(mask: np.ndarray) -> list[int]:
    """Planes (first axis) on which a spatial mask selects pixels."""
    return np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)).tolist()


def _series_mask(mask, spatial_shape):
    """``mask`` in the series' spatial shape, or None when it is one plane's mask."""
    mask = np.asarray(mask)
    if mask.size == int(np.prod(spatial_shape)) and mask.size != int(np.prod(spatial_shape[1:])):
        return mask.reshape(spatial_shape)
    return None


@register_source
@dataclass(eq=False)
class RoiMask(Source):
    """Mean spectrum of the pixels selected by a boolean mask.

    Parameters
    ----------
    mask : array_like of bool
        Either the stack's spatial shape or flat ``(n_pixels,)``.
    """

    mask: np.ndarray
    kind: ClassVar[str] = "roi-mask"
    title: ClassVar[str] = "Shapes ROI"
    _array_fields: ClassVar[tuple[str, ...]] = ("mask",)
    gives_spectrum: ClassVar[bool] = True
    background_ok: ClassVar[bool] = True

    def __post_init__(self):
        m = np.asarray(self.mask)
        if m.dtype != bool:
            raise TypeError(
                f"RoiMask.mask must be boolean, got dtype {m.dtype}; for a label image use "
                "RoiLabel(label_id) or pass (labels == id)."
            )
        self.mask = m

    def spectrum(self, ctx, X, *, name="component", warnings=None):
        sel = ctx.flat_mask(self.mask, f"Component {name!r}: ROI mask")
        if not sel.any() and ctx.only_left_out(self.mask):
            raise ValueError(f"Component {name!r}: its ROI {ctx.LEFT_OUT}")
        if not sel.any():
            raise ValueError(f"Component {name!r}: its ROI mask selects no pixel. Draw the ROI "
                             "over the pixels of this component, or remove the ROI.")
        return roi_mean_spectrum(X, sel, spectral_axis=-1), None

    def needs_geometry(self, *, as_map=False):
        return True

    def on_plane(self, plane, *, spatial_shape, labels=None):
        mask = _series_mask(self.mask, spatial_shape)
        if mask is None:
            return self
        on = planes_of(mask)
        if plane not in on:
            where = f"plane(s) {plane_ranges(on)}" if on else "no plane"
            raise ValueError(f"its ROI has no pixel on plane {plane} (it lies on {where}). "
                             f"Choose a plane the ROI is on, or draw the ROI on plane {plane}.")
        return RoiMask(mask[plane])

    def on_every_plane(self, *, spatial_shape, labels=None):
        mask = _series_mask(self.mask, spatial_shape)
        if mask is None:
            return self
        on = planes_of(mask)
        if len(on) != mask.shape[0] or not (mask == mask[:1]).all():
            raise ValueError(
                f"its ROI is not the same on every plane (it covers plane(s) "
                f"{plane_ranges(on) or 'none'}), but every plane is seeded from the same ROI. "
                f"{EVERY_PLANE_REMEDY}")
        return RoiMask(mask[0])


@register_source
@dataclass(eq=False)
class RoiLabel(Source):
    """Mean spectrum of the pixels of one label of the analysis' label image.

    The label image itself is given to :func:`~napari_unmix.core.seeds.build_seeds`
    or :func:`~napari_unmix.core.analysis.run_analysis` as ``labels``.
    """

    label_id: int
    kind: ClassVar[str] = "roi-label"
    title: ClassVar[str] = "label of a Labels layer"
    gives_spectrum: ClassVar[bool] = True
    background_ok: ClassVar[bool] = True

    def __post_init__(self):
        self.label_id = as_int(self.label_id, "RoiLabel.label_id")
        if self.label_id <= 0:
            raise ValueError(f"RoiLabel.label_id must be >= 1 (0 is unlabelled), "
                             f"got {self.label_id}.")

    def describe(self) -> str:
        return f"roi-label {self.label_id}"

    def spectrum(self, ctx, X, *, name="component", warnings=None):
        if ctx.labels is None:
            raise ValueError(f"Component {name!r} uses label {self.label_id} of the label "
                             "image, but no label image was given (labels=...).")
        lab = ctx.flat_labels()
        sel = lab == self.label_id
        if not sel.any() and ctx.only_left_out(np.asarray(ctx.labels) == self.label_id):
            raise ValueError(f"Component {name!r}: label {self.label_id} {ctx.LEFT_OUT}")
        if not sel.any():
            present = np.unique(lab[lab > 0])
            listed = ", ".join(str(int(v)) for v in present[:20]) or "none"
            raise ValueError(f"Component {name!r}: label {self.label_id} does not occur in the "
                             f"label image (labels present: {listed}). Paint that label or "
                             "pick another one.")
        return roi_mean_spectrum(X, sel, spectral_axis=-1), None

    def needs_geometry(self, *, as_map=False):
        return True

    def _planes(self, labels, spatial_shape):
        lab = np.asarray(labels)
        if lab.size != int(np.prod(spatial_shape)):
            return None
        per_plane = lab.reshape((spatial_shape[0], -1)) == self.label_id
        return [i for i in range(spatial_shape[0]) if per_plane[i].any()]

    def on_plane(self, plane, *, spatial_shape, labels=None):
        on = None if labels is None else self._planes(labels, spatial_shape)
        if on is not None and plane not in on:
            raise ValueError(f"label {self.label_id} is not on plane {plane} (it is on plane(s) "
                             f"{plane_ranges(on) or 'none'}). Choose a plane the label is on, "
                             "or paint it there.")
        return self

    def on_every_plane(self, *, spatial_shape, labels=None):
        on = None if labels is None else self._planes(labels, spatial_shape)
        if on is not None and len(on) != spatial_shape[0]:
            missing = sorted(set(range(spatial_shape[0])) - set(on))
            raise ValueError(f"label {self.label_id} is missing on plane(s) "
                             f"{plane_ranges(missing)}; every plane is seeded from its own "
                             "pixels of the label. Paint it on every plane, or fit a shared "
                             "basis on one plane.")
        return self


def _pixel_indices(pixels, ctx: SeedContext, name):
    n, spatial_shape = ctx.n_image_pixels, ctx.spatial_shape
    p = np.asarray(pixels)
    if p.ndim == 2:
        if p.shape[1] != len(spatial_shape):
            raise ValueError(f"Component {name!r}: seed pixel coordinates have {p.shape[1]} "
                             f"columns but the image has {len(spatial_shape)} spatial axes "
                             f"(shape {tuple(spatial_shape)}).")
        for ax, size in enumerate(spatial_shape):
            bad = (p[:, ax] < 0) | (p[:, ax] >= size)
            if bad.any():
                raise ValueError(f"Component {name!r}: seed pixel {p[bad][0].tolist()} lies "
                                 f"outside the image of shape {tuple(spatial_shape)}.")
        return ctx.rows_of(np.ravel_multi_index(tuple(p.T), tuple(spatial_shape)))
    bad = (p < 0) | (p >= n)
    if bad.any():
        raise ValueError(f"Component {name!r}: seed pixel index {int(p[bad][0])} is out of "
                         f"range for an image of {n} pixels.")
    return ctx.rows_of(p)


@register_source
@dataclass(eq=False)
class SeedPixels(Source):
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

    Notes
    -----
    The W image this source provides (used unless ``overwrite`` replaces it) is the
    cosine similarity of every pixel to the resulting spectrum.
    """

    pixels: np.ndarray | None = None
    n_best: int | None = None
    model: Any = None
    kind: ClassVar[str] = "seed-pixels"
    title: ClassVar[str] = ""  # no editor in the dock: pixels come from scripts
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
            self.n_best = as_int(self.n_best, "SeedPixels.n_best")
            if self.n_best < 1:
                raise ValueError("SeedPixels.n_best must be >= 1.")
            if not getattr(self.model, "ranks_pixels", False):
                raise TypeError("SeedPixels(n_best=...) needs model=Gaussian(...) or "
                                "Spectrum(...) to rank the pixels.")

    def describe(self) -> str:
        if self.pixels is not None:
            return f"seed-pixels ({len(self.pixels)})"
        return f"seed-pixels (best {self.n_best} for {self.model.describe()})"

    def spectrum(self, ctx, X, *, name="component", warnings=None):
        warnings = [] if warnings is None else warnings
        if self.pixels is not None:
            idx = _pixel_indices(self.pixels, ctx, name)
        else:
            model, _ = self.model.spectrum(ctx, X, name=name, warnings=warnings)
            cos = cosine_to(X, model)
            idx = np.argsort(-cos, kind="stable")[:min(self.n_best, ctx.n_pixels)]
        h = X[idx].mean(axis=0, dtype=np.float64)
        return h, cosine_to(X, h)

    def needs_geometry(self, *, as_map=False):
        return self.pixels is not None

    def on_plane(self, plane, *, spatial_shape, labels=None):
        if self.pixels is None:
            return self
        p = np.asarray(self.pixels)
        if p.ndim == 1:
            p = np.stack(np.unravel_index(p, spatial_shape), axis=1)
        if p.shape[1] != len(spatial_shape):
            return self  # given in one plane's coordinates already
        keep = p[p[:, 0] == plane, 1:]
        if keep.size == 0:
            raise ValueError(f"none of its seed pixels is on plane {plane}.")
        return SeedPixels(pixels=keep)
