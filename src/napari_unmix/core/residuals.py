"""Which pixels are not explained? :func:`residuals` of a result on its data.

The residual ``R = X - W H`` of a fit, read against the data's own noise level
(:func:`~napari_unmix.core.noise.estimate_noise`, estimated from the data, not from
the fit, so a poor fit cannot hide in it):

* ``relative``: per pixel ``||r_p|| / ||x_p||``, the map of how much of each pixel
  is left unexplained; ``norm`` the same without the division;
* ``channel_rms`` / ``channel_mean``: per channel, the residual's RMS and its mean
  (a systematic misfit, e.g. a band no component has, shows in the mean);
* ``unexplained``: the pixels whose whitened residual ``sum_i (r_pi / sigma_i)^2``
  fails a chi-square test at ``p_value`` (with ``n_channels`` minus the pixel's
  number of non-zero abundances degrees of freedom): more residual than noise;
* ``regions``: the unexplained pixels grouped by *what* is missing.  The missing
  part of a spectrum leaves residuals that point the same way in every pixel it is
  in, so the regions are peeled off one by one: the leading direction of the
  remaining unexplained pixels' whitened residuals (outside the span of the fitted
  spectra, which the fit can trade against the missing one), and the pixels that
  this one direction explains (what their residual holds besides it passes the
  test).  Region 1 is the largest; its mean residual is the spectrum of what was
  missed, and :meth:`ResidualReport.seed_component` turns
  it into a new component ("add a component from the residual").

Measured (``benchmarks/diagnostics.py``, test ``tests/core/test_residuals.py``): the
bundled sample fitted by fixed-H NNLS with one of its four spectra left out, the
largest region covers 0.95-1.0 of the left-out component's pixels (those holding at
least a tenth of its peak abundance), and 0.96-1.0 of the region are such pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .components import ComponentSpec, Spectrum
from .data import stack_to_matrix
from .noise import estimate_noise

__all__ = ["ResidualReport", "fitted_data", "fitted_plane", "fits_processed", "residuals"]


@dataclass(eq=False)
class ResidualReport:
    """The residual of a fit, per pixel, per channel and per region.

    Attributes
    ----------
    relative : ndarray, spatial shape
        ``||r_p|| / ||x_p||`` (NaN for pixels the fit left out, 0 for all-zero
        pixels).
    norm : ndarray, spatial shape
        ``||r_p||``.
    channel_rms, channel_mean : ndarray, (n_channels,)
        Per channel, the residual's RMS and mean over the fitted pixels.
    noise : ndarray, (n_channels,)
        The data's noise level per channel.
    chi2 : ndarray, spatial shape
        Whitened residual sum of squares per pixel.
    unexplained : ndarray of bool, spatial shape
        Pixels with more residual than noise (chi-square test at ``p_value``).
    regions : ndarray of int32, spatial shape
        Regions of unexplained pixels with a common residual direction, 1 the
        largest; 0 elsewhere.
    region_spectra : ndarray, (n_regions, n_channels)
        Mean residual of every region.
    region_sizes : list of int
    worst : ndarray of int
        Flat indices of the worst-explained pixels (largest ``relative``), worst
        first.
    spectral_values : ndarray or None
    p_value : float
    """

    relative: np.ndarray
    norm: np.ndarray
    channel_rms: np.ndarray
    channel_mean: np.ndarray
    noise: np.ndarray
    chi2: np.ndarray
    unexplained: np.ndarray
    regions: np.ndarray
    region_spectra: np.ndarray
    region_sizes: list
    worst: np.ndarray
    spectral_values: np.ndarray | None = None
    p_value: float = 1e-3
    notes: list = field(default_factory=list)

    @property
    def n_regions(self) -> int:
        return len(self.region_sizes)

    @property
    def unexplained_fraction(self) -> float:
        fitted = np.isfinite(self.relative)
        return float(self.unexplained[fitted].mean()) if fitted.any() else float("nan")

    def seed_spectrum(self, region: int = 1) -> np.ndarray:
        """The non-negative part of region ``region``'s mean residual (what was missed)."""
        if not 1 <= region <= self.n_regions:
            raise ValueError(f"region {region} does not exist; the residual has "
                             f"{self.n_regions} region(s) of unexplained pixels.")
        return np.maximum(self.region_spectra[region - 1], 0.0)

    def seed_component(self, name: str = "residual", *, region: int = 1, color=None,
                       anchor: float | None = 0.0) -> ComponentSpec:
        """A new component seeded with the spectrum of region ``region``'s residual.

        Add it to the components of a seeded NNMF (with the result's own spectra
        as the other seeds) to fit what the result missed.  The residual is the
        missing spectrum less what the other components absorbed, a rough seed, so
        its trust defaults to 0 (the fit reshapes it freely).  Measured on the
        bundled sample with one spectrum left out (lipid, protein, water): the seed
        is 0.37-0.47 rad from the missing spectrum; seeded NNMF with it at trust 0
        ends 0.12-0.15 rad from it (0.30-0.37 at trust 1).
        """
        h = self.seed_spectrum(region)
        if not h.any():
            raise ValueError(f"region {region}'s residual has no positive part: the fit "
                             "there is above the data (a component is too strong), not short "
                             "of a component.")
        src = Spectrum(values=h, axis=None if self.spectral_values is None
                       else np.asarray(self.spectral_values, dtype=np.float64),
                       label=f"residual of region {region} ({self.region_sizes[region - 1]} "
                       "px)")
        return ComponentSpec(name, color=color, h_source=src, anchor=anchor)

    def to_dict(self) -> dict:
        """Plain-JSON summary (without the maps)."""
        rel = self.relative[np.isfinite(self.relative)]
        return json.loads(json.dumps({
            "p_value": self.p_value,
            "unexplained_fraction": self.unexplained_fraction,
            "median_relative": float(np.median(rel)) if rel.size else None,
            "max_relative": float(rel.max()) if rel.size else None,
            "region_sizes": self.region_sizes, "noise_mean": float(np.mean(self.noise)),
            "channel_rms": self.channel_rms.tolist(), "channel_mean": self.channel_mean.tolist(),
            "notes": self.notes}))


def fitted_data(result, X, spatial_shape, *, labels=None) -> np.ndarray:
    """The matrix ``result`` fitted: ``X`` after the result's config's negative policy
    and preprocessing (``fit_data="processed"``); ``X`` itself for a result made
    without a config.

    A series as one result (:meth:`~napari_unmix.core.series.SeriesResult.as_result`,
    rows in the order of its planes) had the policy and preprocessing applied to every
    plane on its own (with ``negative="offset"`` each plane has its own offset), so
    they are applied plane by plane here too; ``labels`` is then one plane's label
    image or one per plane (``(n_planes, *plane_shape)``).
    """
    cfg = result.config
    if cfg is None:
        return X
    n_planes = _series_planes(result, X.shape[0])
    if n_planes is None:
        return _prepared(cfg, result, X, spatial_shape, labels)
    n = X.shape[0] // n_planes
    shape = tuple(spatial_shape)
    plane_shape = shape[1:] if len(shape) > 1 and shape[0] == n_planes else (n,)
    per_plane = labels is not None and np.ndim(labels) == len(plane_shape) + 1
    return np.concatenate([
        _prepared(cfg, result, X[z * n:(z + 1) * n], plane_shape,
                  labels[z] if per_plane else labels) for z in range(n_planes)])


def fits_processed(result) -> bool:
    """Whether ``result`` fitted the processed data (``fit_data="processed"`` with a
    preprocessing), its own or, for a series as one result, its planes' (their
    summaries say it; the series summary does not), and has the config to make
    that data again (:func:`fitted_data`)."""
    s = result.summary
    planes = getattr(s, "planes", None) or []
    said = getattr(s, "fit_data", None) == "processed" or any(
        getattr(getattr(p, "fit", None), "fit_data", None) == "processed" for p in planes)
    return said and result.config is not None


def fitted_plane(result, X, plane_shape, *, labels=None) -> np.ndarray:
    """:func:`fitted_data` of one plane of a series as one result (``X``: the plane's
    pixels, ``labels``: its label image), or of a whole result that is no series:
    what the fit of those pixels saw.  A series' planes were prepared one by one, so
    one plane is made again without the others."""
    cfg = result.config
    if cfg is None:
        return X
    return _prepared(cfg, result, X, tuple(plane_shape), labels)


def _series_planes(result, n_pixels) -> int | None:
    """The planes of a series result whose rows are its planes' pixels, else None."""
    from .summaries import SeriesSummary

    s = result.summary
    if not isinstance(s, SeriesSummary) or "series" not in result.params:
        return None
    n_planes = s.n_planes or len(s.planes or [])
    return int(n_planes) if n_planes and n_pixels % n_planes == 0 else None


def _prepared(cfg, result, X, spatial_shape, labels) -> np.ndarray:
    from .analysis import prepare_fit_data
    from .data import prepare_stack
    from .modes import MODES

    spec = MODES.get(cfg.mode)
    non_negative = spec.non_negative if spec is not None else True
    stack = X.reshape(*spatial_shape, X.shape[1])
    data = prepare_stack(stack, spectral_axis=-1, spectral_values=result.spectral_values,
                         negative=cfg.negative if non_negative else None,
                         nan_policy=cfg.nan_policy)
    prepare_fit_data(data, cfg, non_negative=non_negative, labels=labels)
    if data.pixel_mask is None:
        return data.fit.X
    # pixels the analysis left out: NaN rows, as in its W (UnmixResult.on_every_pixel)
    out = np.full((X.shape[0], X.shape[1]), np.nan, dtype=data.fit.X.dtype)
    out[data.pixel_mask.reshape(-1)] = data.fit.X
    return out


def _plane_spectra(result, H, n_pixels) -> list[tuple[slice, np.ndarray]]:
    """``(rows, H)`` blocks: the spectra every row of ``W`` was fitted with.  A per-slice
    series as one result (:meth:`~napari_unmix.core.series.SeriesResult.as_result`)
    fitted each plane with its own spectra (``arrays["plane_H"]``; its ``H`` is their
    mean); any other result one ``H`` for every row."""
    plane_H = result.arrays.get("plane_H") if isinstance(result.arrays, dict) else None
    n_planes = _series_planes(result, n_pixels)
    if plane_H is None or n_planes is None or np.shape(plane_H) != (n_planes, *H.shape):
        return [(slice(0, n_pixels), H)]
    n = n_pixels // n_planes
    return [(slice(z * n, (z + 1) * n), np.asarray(plane_H[z], dtype=np.float64))
            for z in range(n_planes)]


def _check_options(p_value, max_regions, min_region, n_worst):
    if not (isinstance(p_value, (int, float, np.floating)) and 0.0 < p_value < 1.0):
        raise ValueError(f"p_value is the test's false-alarm rate, between 0 and 1 "
                         f"(exclusive); got {p_value!r}.")
    for name, value, least in (("max_regions", max_regions, 0), ("min_region", min_region, 1),
                               ("n_worst", n_worst, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or value < least:
            raise ValueError(f"{name} must be an integer >= {least}; got {value!r}.")


def _checked_noise(noise, n_channels):
    sigma = np.asarray(noise, dtype=np.float64)
    if sigma.ndim > 1 or (sigma.ndim == 1 and sigma.size != n_channels):
        raise ValueError(f"noise must be one level or one per channel ({n_channels}); got "
                         f"shape {sigma.shape}.")
    if not (np.isfinite(sigma).all() and (sigma > 0).all()):
        raise ValueError("noise levels must be finite and above 0 (a residual is divided by "
                         "them); leave noise out to estimate it from the data.")
    return np.broadcast_to(sigma, (n_channels,))


def _peel(Rw, candidates, limit, *, max_regions, min_region):
    """Regions of ``candidates`` (rows of the whitened residual ``Rw``) sharing a
    residual direction, largest first.  A pixel belongs to a direction when what its
    residual leaves besides that direction passes the chi-square test (``limit``:
    the threshold per pixel, one degree of freedom fewer)."""
    left = np.asarray(candidates, dtype=np.intp)
    regions = []
    while left.size >= min_region and len(regions) < max_regions:
        S = Rw[left]
        _, V = np.linalg.eigh(S.T @ S)
        v = V[:, -1]
        proj = S @ v
        if proj.sum() < 0:
            v, proj = -v, -proj
        rest = np.einsum("ij,ij->i", S, S) - proj ** 2
        members = (proj > 0) & (rest <= limit[left])
        if members.sum() < min_region:
            break
        regions.append(left[members])
        left = left[~members]
    return sorted(regions, key=len, reverse=True)


def residuals(result, X, *, spectral_axis: int | None = None, spatial_shape=None,
              labels=None, p_value: float = 1e-3, max_regions: int = 5,
              min_region: int = 5, n_worst: int = 100,
              noise=None) -> ResidualReport:
    """The residual of ``result`` on its data (module documentation).

    Parameters
    ----------
    result : UnmixResult
        A non-negative fit (NNMF, seeded NNMF, fixed-H NNLS, a series as one
        result); PCA results are refused (their scores model the standardised data).
    X : array_like
        The stack the result was made from (with ``spectral_axis``), or its
        ``(n_pixels, n_channels)`` matrix (then ``spatial_shape`` gives the image's
        shape, default flat).  With a result of ``run_analysis``, its config's
        negative policy and preprocessing are applied first (``labels``: the label
        image of its label seeds, when the preprocessing uses one).
    p_value : float
        False-alarm rate of the chi-square test of every pixel.
    max_regions, min_region : int
        At most this many regions, each of at least this many pixels.
    n_worst : int
        How many worst-explained pixels ``worst`` lists.
    noise : array_like (n_channels,), optional
        The noise level per channel, when known; default estimated from ``X``.
    """
    from scipy.stats import chi2 as chi2_dist

    from .modes import MODES

    _check_options(p_value, max_regions, min_region, n_worst)
    spec = MODES.get(result.mode)
    if spec is not None and not spec.non_negative:
        raise ValueError(f"residuals need a model of the data's spectra; a {spec.label} "
                         "result models the standardised data (its scree says how much each "
                         "component explains).")
    if spectral_axis is not None:
        result = result.on_every_pixel()  # left-out pixels: NaN rows, like the stack's
        Xm, spatial_shape = stack_to_matrix(np.asarray(X), spectral_axis)
    else:
        Xm = np.asarray(X)
        if Xm.ndim != 2:
            raise ValueError(f"X has shape {Xm.shape}: give the stack with spectral_axis=..., "
                             "or its (n_pixels, n_channels) matrix.")
        spatial_shape = tuple(spatial_shape) if spatial_shape is not None else (Xm.shape[0],)
    W, H = np.asarray(result.W, dtype=np.float64), np.asarray(result.H, dtype=np.float64)
    if Xm.shape != (W.shape[0], H.shape[1]):
        raise ValueError(f"The data ({Xm.shape[0]} pixels x {Xm.shape[1]} channels) is not "
                         f"what the result fitted ({W.shape[0]} x {H.shape[1]}).")
    if int(np.prod(spatial_shape)) != Xm.shape[0]:
        raise ValueError(f"spatial_shape {tuple(spatial_shape)} does not hold "
                         f"{Xm.shape[0]} pixels.")
    Xf = np.asarray(fitted_data(result, Xm, spatial_shape, labels=labels), dtype=np.float64)
    ok = np.isfinite(W).all(axis=1) & np.isfinite(Xf).all(axis=1)
    R = np.full_like(Xf, np.nan)
    blocks = _plane_spectra(result, H, W.shape[0])
    for rows, Hz in blocks:
        sel = ok[rows]
        R[rows][sel] = Xf[rows][sel] - W[rows][sel] @ Hz
    sigma = estimate_noise(Xf[ok]) if noise is None else _checked_noise(noise, Xf.shape[1])
    norm = np.linalg.norm(R, axis=1)
    xn = np.linalg.norm(Xf, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(xn > 0, norm / np.where(xn > 0, xn, 1.0), 0.0)
    relative[~ok] = np.nan
    Rw = np.where(ok[:, None], R / sigma, 0.0)
    chi2 = np.where(ok, np.einsum("ij,ij->i", Rw, Rw), np.nan)
    dof = np.maximum(Xf.shape[1] - (W > 0).sum(axis=1), 1)
    unexplained = ok & (chi2 > chi2_dist.isf(p_value, dof))
    # compared modulo the fitted spectra: a missing spectrum h leaves r = a h - W' H,
    # whose part outside the span of H is a (h outside it), the same way in every pixel
    Rp = np.empty_like(Rw)
    for rows, Hz in blocks:
        Q, _ = np.linalg.qr((Hz / sigma).T)
        Rp[rows] = Rw[rows] - (Rw[rows] @ Q) @ Q.T
    limit = chi2_dist.isf(p_value, np.maximum(Xf.shape[1] - H.shape[0] - 1, 1))
    groups = _peel(Rp, np.flatnonzero(unexplained), np.full(Xf.shape[0], limit),
                   max_regions=max_regions, min_region=min_region)
    regions = np.zeros(Xf.shape[0], dtype=np.int32)
    for j, g in enumerate(groups):
        regions[g] = j + 1
    spectra = (np.stack([R[g].mean(axis=0) for g in groups]) if groups
               else np.zeros((0, Xf.shape[1])))
    order = np.argsort(-np.nan_to_num(relative, nan=-1.0), kind="stable")
    notes = []
    n_ok, n_bad = int(ok.sum()), int(unexplained.sum())
    # under the noise alone about p_value of the pixels fail the test (binomial)
    by_chance = n_ok * p_value + 3.0 * np.sqrt(n_ok * p_value * (1 - p_value)) + 1.0
    if not groups and n_bad <= by_chance:
        notes.append("no region of unexplained pixels: the residual is at the noise level "
                     f"(chi-square test at p = {p_value:g})")
    elif not groups:
        notes.append(f"{n_bad} of {n_ok} pixels are not explained at the noise level "
                     f"(chi-square test at p = {p_value:g}), but they share no missing "
                     f"spectrum over a region of {min_region} or more pixels: the fit is poor "
                     "throughout (too few components, or spectra that do not fit), or the "
                     "noise level is underestimated")
    return ResidualReport(
        relative=relative.reshape(spatial_shape), norm=np.where(ok, norm, np.nan).reshape(
            spatial_shape),
        channel_rms=np.sqrt(np.nanmean(R[ok] ** 2, axis=0)) if ok.any() else
        np.full(Xf.shape[1], np.nan),
        channel_mean=R[ok].mean(axis=0) if ok.any() else np.full(Xf.shape[1], np.nan),
        noise=np.asarray(sigma, dtype=np.float64), chi2=chi2.reshape(spatial_shape),
        unexplained=unexplained.reshape(spatial_shape),
        regions=regions.reshape(spatial_shape), region_spectra=spectra,
        region_sizes=[int(len(g)) for g in groups], worst=order[:int(n_worst)][
            ok[order[:int(n_worst)]]],
        spectral_values=None if result.spectral_values is None else
        np.asarray(result.spectral_values), p_value=float(p_value), notes=notes)
