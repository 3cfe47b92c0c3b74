"""The pixel inspector: what the fit says about one pixel.

Clicking a pixel of the canvas (or hovering with Shift held) shows in the spectra
dock, for the run shown:

* the pixel's raw spectrum (the image's data);
* the fitted spectrum ``w H`` (its maps times the spectra), on the raw data's
  footing: a run with the negative-value policy ``"offset"`` fitted the raw data plus
  an offset, so the offset is taken off the fit (``w H - offset``);
* each component's contribution ``w_k H_k`` (in the component's colour);
* the residual ``x - w H`` (with the offset: ``x + offset - w H``, the fit's own).

A run fitted on the processed data (``fit_data="processed"``: background subtracted,
smoothed) is compared with that data: the pixel's processed spectrum is made again
by the run's config (:func:`~napari_unmix.core.residuals.fitted_plane`, the same
steps as the run's and the residual map's), the fit and residual are on its footing,
and its legend says so; the raw spectrum is drawn beside it.  The processing needs
the whole image (the background spectrum comes from an ROI, the offset from the
minimum of all the processed data), so :class:`FittedSpectra` makes it once per run
and plane and keeps it: the first click on a run (a plane) pays it (about 50 ms on
the 128 x 128 x 64 sample), the next ones read a row.  When it cannot be made again
(e.g. an opened result whose background came from a label image that is not here),
the raw spectrum is shown and the title says why.

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

from ..core.residuals import fits_processed, fitted_plane
from .residual import fit_offset

__all__ = ["FittedSpectra", "PixelView", "inspect_pixel"]


@dataclass(eq=False)
class PixelView:
    """One pixel: ``index`` (its spatial index), ``raw``, ``fit`` and ``residual``
    (``None`` for signed modes), ``contributions`` (one per component, in
    ``names`` order), ``plane`` (the series plane, or None), ``offset`` (what the
    negative-value policy added to the data the run fitted; ``fit`` is ``w H`` less
    it, on the raw data's footing).  A run fitted on the processed data has that
    spectrum in ``processed`` (``fit`` and ``residual`` on its footing) and its
    steps in ``processed_label``; ``note`` says why it is missing when it could not
    be made."""

    index: tuple
    raw: np.ndarray
    names: list
    contributions: list = field(default_factory=list)
    fit: np.ndarray | None = None
    residual: np.ndarray | None = None
    plane: int | None = None
    offset: float = 0.0
    processed: np.ndarray | None = None
    processed_label: str = ""
    note: str = ""

    @property
    def title(self) -> str:
        where = ", ".join(str(int(v)) for v in self.index)
        plane = f" (plane {self.plane})" if self.plane is not None else ""
        note = f" ({self.note})" if self.note else ""
        return f"Pixel ({where}){plane}{note}"


def _steps_text(cfg) -> str:
    pre = cfg.preprocessing
    steps = ["background subtracted"] if pre.background is not None else []
    if pre.smoothing:
        steps.append(f"{pre.smoothing}-smoothed")
    if cfg.negative == "offset":
        steps.append("offset added")
    elif cfg.negative == "clip":
        steps.append("negatives clipped")
    return ", ".join(steps)


class FittedSpectra:
    """The data a run fitted, made again from its image for the inspector, one plane at
    a time (the whole image for a run that is no series) and kept.

    Parameters
    ----------
    result : UnmixResult
        The run (the whole series as one result after a series run).
    labels : ndarray, optional
        The run's label image (its ROI background came from it): one plane's, or one
        per plane.
    series : bool
        ``result`` is a series (the first spatial axis is the series axis).
    """

    def __init__(self, result, *, labels=None, series: bool = False):
        self.processed = fits_processed(result)
        self._result, self._labels, self._series = result, labels, bool(series)
        self._planes: dict = {}
        self.problem = ""
        self.label = ""
        if self.processed:
            self.label = f"processed spectrum, fitted ({_steps_text(result.config)})"

    def pixel(self, data, spectral_axis: int, index) -> np.ndarray | None:
        """The processed spectrum of the pixel at spatial ``index`` of ``data`` (None
        when the run fitted the raw data, or ``problem`` says why it cannot be made)."""
        if not self.processed:
            return None
        key = int(index[0]) if self._series else None
        if key not in self._planes:
            self._planes[key] = self._make(data, int(spectral_axis), key)
        X = self._planes[key]
        if X is None:
            return None
        spatial = [n for ax, n in enumerate(data.shape) if ax != spectral_axis]
        where = index[1:] if self._series else index
        shape = spatial[1:] if self._series else spatial
        return X[int(np.ravel_multi_index(where, shape))]

    def _make(self, data, s: int, plane):
        if plane is not None:
            axis = next(ax for ax in range(data.ndim) if ax != s)  # the series axis
            data = np.take(data, plane, axis=axis)
            s = s - 1 if axis < s else s
        shape = tuple(n for ax, n in enumerate(data.shape) if ax != s)
        X = np.moveaxis(np.asarray(data), s, -1).reshape(-1, data.shape[s])
        labels = self._labels
        if plane is not None and labels is not None and np.ndim(labels) == len(shape) + 1:
            labels = labels[plane]
        try:
            return np.asarray(fitted_plane(self._result, X, shape, labels=labels),
                              dtype=np.float64)
        except (ValueError, TypeError, KeyError) as exc:
            self.problem = ("raw data shown: the processed data the run fitted cannot be "
                            f"made again here ({exc})")
            return None


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
                  series_result=None, fitted: FittedSpectra | None = None) -> PixelView | None:
    """The :class:`PixelView` of the pixel at ``data_coords`` of ``stack`` (the image's
    data coordinates, one per axis, the spectral one ignored); None off the image.

    ``result``: the run's :class:`~napari_unmix.core.result.UnmixResult` (W rows in
    the C order of the stack's spatial axes); ``series_result``: its
    :class:`~napari_unmix.core.series.SeriesResult` after a series run (the first
    spatial axis is the series axis; each plane's own result is used); ``fitted``:
    the run's :class:`FittedSpectra` (kept between clicks), for a run fitted on the
    processed data (default: made for this call).
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
    if signed:
        return view
    if fitted is None:
        fitted = FittedSpectra(result, series=series_result is not None)
    x = fitted.pixel(data, s, index)
    if x is not None:   # the fit saw the processed data (its offset included)
        view.processed, view.processed_label, view.offset = x, fitted.label, 0.0
        view.fit = w @ H
        view.residual = x - view.fit
        return view
    view.note = fitted.problem
    view.fit = w @ H - view.offset
    view.residual = raw - view.fit
    return view
