"""The pixel inspector: what the fit says about one pixel.

Clicking a pixel of the canvas (or hovering with Shift held) shows in the spectra
dock, for the run shown:

* the pixel's raw spectrum (the image's data);
* the fitted spectrum ``w H`` (its maps times the spectra), on the raw data's
  footing: a run with the negative-value policy ``"offset"`` fitted the raw data plus
  an offset, so the offset is taken off the fit (``w H - offset``);
* each component's contribution ``w_k H_k`` (in the component's colour);
* the residual ``x - w H`` (with the offset: ``x + offset - w H``, the fit's own).

On a z / t series the pixel is taken on the plane the viewer shows, with that
plane's spectra (per-plane runs) or the shared basis.  PCA scores do not rebuild the
data (it is centred and scaled first), so a PCA result shows the pixel's spectrum
and each component's score times its loading, without a fit or residual.

:func:`inspect_pixel` computes a :class:`PixelView` (Qt-free, tested without a
viewer); the dock turns it into curves of the spectra dock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .residual import fit_offset

__all__ = ["PixelView", "inspect_pixel"]


@dataclass(eq=False)
class PixelView:
    """One pixel: ``index`` (its spatial index), ``raw``, ``fit`` and ``residual``
    (``None`` for signed modes), ``contributions`` (one per component, in
    ``names`` order), ``plane`` (the series plane, or None), ``offset`` (what the
    negative-value policy added to the data the run fitted; ``fit`` is ``w H`` less
    it, on the raw data's footing)."""

    index: tuple
    raw: np.ndarray
    names: list
    contributions: list = field(default_factory=list)
    fit: np.ndarray | None = None
    residual: np.ndarray | None = None
    plane: int | None = None
    offset: float = 0.0

    @property
    def title(self) -> str:
        where = ", ".join(str(int(v)) for v in self.index)
        plane = f" (plane {self.plane})" if self.plane is not None else ""
        return f"Pixel ({where}){plane}"


def _spatial_index(data_coords, shape, spectral_axis):
    """The spatial index of data coordinates (nearest pixel), None off the image."""
    coords = np.asarray(data_coords, dtype=np.float64)
    if coords.size != len(shape) or not np.isfinite(coords).all():
        return None
    idx = []
    for ax, (c, n) in enumerate(zip(coords, shape, strict=True)):
        if ax == spectral_axis:
            continue
        i = int(np.floor(c + 0.5))
        if not 0 <= i < n:
            return None
        idx.append(i)
    return tuple(idx)


def inspect_pixel(result, stack, *, spectral_axis: int, data_coords, signed: bool = False,
                  series_result=None) -> PixelView | None:
    """The :class:`PixelView` of the pixel at ``data_coords`` of ``stack`` (the image's
    data coordinates, one per axis, the spectral one ignored); None off the image.

    ``result``: the run's :class:`~napari_unmix.core.result.UnmixResult` (W rows in
    the C order of the stack's spatial axes); ``series_result``: its
    :class:`~napari_unmix.core.series.SeriesResult` after a series run (the first
    spatial axis is the series axis; each plane's own result is used).
    """
    data = stack[0] if isinstance(stack, list) else stack
    shape = tuple(int(v) for v in data.shape)
    s = int(spectral_axis)
    index = _spatial_index(data_coords, shape, s)
    if index is None:
        return None
    spatial = tuple(n for ax, n in enumerate(shape) if ax != s)
    sel = list(index)
    sel.insert(s, slice(None))
    raw = np.asarray(data[tuple(sel)], dtype=np.float64).ravel()
    plane = None
    if series_result is not None:
        plane = int(index[0])
        res = series_result.plane_result(plane)
        row = int(np.ravel_multi_index(index[1:], spatial[1:]))
    else:
        res = result
        row = int(np.ravel_multi_index(index, spatial))
    if row >= res.W.shape[0]:
        return None
    w = np.asarray(res.W[row], dtype=np.float64)
    H = np.asarray(res.H, dtype=np.float64)
    contributions = [w[k] * H[k] for k in range(H.shape[0])]
    offset = fit_offset(res)
    if np.ndim(offset):  # a whole series' result: the offset of the pixel's plane
        offset = offset[index[0]] if index[0] < len(offset) else 0.0
    view = PixelView(index=index, raw=raw, names=list(res.component_names),
                     contributions=contributions, plane=plane, offset=float(offset))
    if not signed:
        view.fit = w @ H - view.offset
        view.residual = raw - view.fit
    return view
