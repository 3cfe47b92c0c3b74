"""Unmixing of z-stacks and time series, with maps that are comparable across planes.

A series stack has a series axis (z or t), a spectral axis and the spatial axes of
one plane, e.g. ``(Z, C, Y, X)`` or ``(T, C, Y, X)``.  :func:`unmix_series` runs an
:class:`~napari_unmix.core.analysis.AnalysisConfig` on it plane by plane with one of
two strategies:

``"shared-basis"`` (default)
    One set of spectra ``H (k, C)`` is obtained once, then the abundances of every
    plane are fitted to it by fixed-H NNLS (:func:`~napari_unmix.core.nnls`, which
    streams pixel chunks).  All planes share one basis, so map values mean the same
    thing in every plane and can be compared directly.  The basis is

    * the given spectra (``H=``), used as they are;
    * or the spectra of the config run (:func:`~napari_unmix.core.run_analysis`) on
      a *reference* plane (``reference=<plane index>``): random NNMF, seeded NNMF
      (ROIs are drawn on that plane), or the seed spectra of a fixed-H NNLS config;
    * or the spectra of the config run on a *pooled* pixel sample of all planes
      (``reference="pooled"``).  The pool is a uniform random sample without
      replacement of ``pool_size`` pixels (default: as many as one plane has), the
      same number from every plane, drawn with the config's ``random_state``.  A
      pool has no image geometry, so spatial seed sources (ROI masks, labels, seed
      pixel lists, map seeds) need a reference plane instead.

``"per-slice"``
    The config runs on every plane independently (any mode, PCA included), so each
    plane has its own spectra ``H (Z, k, C)``.  Components are then put in the same
    order in every plane: each plane's spectra are paired with those of its
    neighbour towards the reference plane (``match="previous"``) or with the
    reference plane's (``match="reference"``) by the smallest total spectral angle
    (:func:`~napari_unmix.core.metrics.match_components`; for PCA the sign of a
    loading is free, so the angle is taken up to sign and flipped pairs are flipped
    back).  The angles are reported per plane: large angles say that a component
    changes between planes, or that the pairing is unreliable.  Seeded modes keep
    the order their components define (``match="auto"`` does not reorder them) and
    only report the angles.

Memory
    The stack is read one plane at a time (``stack[..., z, ...]`` converted with
    ``numpy.asarray``), so numpy arrays, memory maps, dask arrays and zarr arrays all
    work, and a dask or zarr series larger than memory runs plane by plane.  Beyond
    the maps ``(k, Z, *plane)`` the run holds one plane's data and temporaries (and
    the pool, no bigger than one plane by default).  The pooled basis reads every
    plane twice (once to sample, once to fit).

Progress
    ``callback(info)`` receives :class:`SeriesProgressInfo`, a
    :class:`~napari_unmix.core.progress.ProgressInfo` whose ``fraction`` covers the
    whole series and which says which ``plane`` runs.  Returning False cancels
    (:class:`~napari_unmix.core.progress.Cancelled`); nothing half-done is returned.
"""

from __future__ import annotations

import numbers
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ._validation import check_spectra
from .analysis import AnalysisConfig, run_analysis
from .components import (
    BackgroundMap,
    FixedW,
    ImportedMap,
    PreviousResult,
    RoiLabel,
    RoiMask,
    SeedPixels,
)
from .data import normalize_axis, stack_to_matrix
from .init import resolve_random_state
from .metrics import match_components, spectral_angle
from .nnls import nnls
from .progress import Cancelled, ProgressInfo
from .result import UnmixResult
from .series_result import SERIES_STRATEGIES, SeriesResult, _plane_index

__all__ = ["MATCH_POLICIES", "SERIES_STRATEGIES", "SeriesProgressInfo", "SeriesResult",
           "unmix_series"]

#: How per-slice components are put in the same order across planes.
MATCH_POLICIES = ("auto", "previous", "reference", "none")

# summary entries of a plane's run that are too long to keep for every plane
_HEAVY_KEYS = ("error_history", "capped_pixels", "chunk_iters")


# -- progress ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SeriesProgressInfo(ProgressInfo):
    """A :class:`ProgressInfo` of a series run.

    ``stage``, ``iteration``, ``max_iter`` and ``error`` are those of the step that
    runs (``"sample"`` while the pool is drawn, the stages of the basis fit, the
    stages of a plane's run, and ``"series"`` after each finished plane, with
    ``iteration`` planes of ``max_iter`` done).  ``fraction`` is the rough fraction of
    the whole series done; it never decreases.

    Attributes
    ----------
    plane : int or None
        Index of the plane being processed; None while the shared basis is fitted
        on a pool of planes.
    n_planes : int
        Number of planes of the series.
    """

    plane: int | None = None
    n_planes: int = 0


class _Progress:
    """Maps the progress of every step onto one fraction of the whole series."""

    def __init__(self, callback, total_units: float, n_planes: int):
        self.callback = callback
        self.total = max(float(total_units), 1e-12)
        self.n_planes = n_planes
        self.done = 0.0
        self.last = 0.0

    def _emit(self, stage, iteration, max_iter, error, fraction, plane):
        self.last = max(self.last, min(max(fraction, 0.0), 1.0))
        info = SeriesProgressInfo(stage, int(iteration), int(max_iter),
                                  None if error is None else float(error), self.last,
                                  plane=plane, n_planes=self.n_planes)
        return self.callback(info)

    def inner(self, weight: float, plane: int | None):
        """A core callback for one step worth ``weight`` units (None if no callback)."""
        if self.callback is None:
            return None
        base = self.done

        def callback(info: ProgressInfo):
            frac = (base + weight * info.fraction) / self.total
            return self._emit(info.stage, info.iteration, info.max_iter, info.error, frac,
                              plane)

        return callback

    def advance(self, weight: float, *, stage: str, iteration: int, max_iter: int,
                plane: int | None, error: float | None = None) -> None:
        """Mark a step of ``weight`` units done; raise Cancelled if asked to stop."""
        self.done += weight
        if self.callback is None:
            return
        if self._emit(stage, iteration, max_iter, error, self.done / self.total,
                      plane) is False:
            where = "" if plane is None else f" after plane {plane}"
            raise Cancelled(f"Series run cancelled{where} ({stage} {iteration}/{max_iter}).")


# -- input handling ----------------------------------------------------------------------

def _check_axis(value, ndim, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int (an axis of the stack), got {value!r}.")
    return normalize_axis(int(value), ndim, name=name)


class _Series:
    """Plane-by-plane access to a series stack of any array type."""

    def __init__(self, stack, series_axis, spectral_axis):
        if not (hasattr(stack, "shape") and hasattr(stack, "ndim")
                and hasattr(stack, "__getitem__")):
            stack = np.asarray(stack)
        self.stack = stack
        shape = tuple(int(s) for s in stack.shape)
        ndim = len(shape)
        if ndim < 3:
            raise ValueError(
                f"A series stack needs a series axis (z or t), a spectral axis and at least "
                f"one spatial axis, e.g. (Z, C, Y, X); got shape {shape}. For a single "
                "spectral image use run_analysis.")
        self.series_axis = _check_axis(series_axis, ndim, "series_axis")
        self.spectral_axis = _check_axis(spectral_axis, ndim, "spectral_axis")
        if self.series_axis == self.spectral_axis:
            raise ValueError(
                f"series_axis and spectral_axis are both axis {self.series_axis} of the stack "
                f"{shape}; they must be different axes (e.g. series_axis=0, spectral_axis=1 "
                "for (Z, C, Y, X)).")
        self.shape = shape
        self.n_planes = shape[self.series_axis]
        if self.n_planes < 1 or 0 in shape:
            raise ValueError(f"The series stack is empty (shape {shape}).")
        # position of the spectral axis once the series axis is taken out
        self.plane_spectral_axis = self.spectral_axis - (self.spectral_axis > self.series_axis)
        plane = [s for i, s in enumerate(shape) if i != self.series_axis]
        self.n_channels = plane[self.plane_spectral_axis]
        self.plane_shape = tuple(s for i, s in enumerate(plane) if i != self.plane_spectral_axis)
        self.n_plane_pixels = int(np.prod(self.plane_shape))

    def plane(self, z) -> np.ndarray:
        """Plane ``z`` as a numpy array (dask / zarr planes are computed here)."""
        index = [slice(None)] * len(self.shape)
        index[self.series_axis] = int(z)
        block = self.stack[tuple(index)]
        if hasattr(block, "compute") and not isinstance(block, np.ndarray):
            block = block.compute()
        return np.asarray(block)

    def matrix(self, z):
        X, _ = stack_to_matrix(self.plane(z), self.plane_spectral_axis)
        return X


def _as_config(config, H):
    if config is None:
        if H is None:
            raise ValueError("unmix_series needs an AnalysisConfig (or a dict of its fields), "
                             "or the spectra of a shared basis as H=.")
        return AnalysisConfig(mode="nnls")
    if isinstance(config, AnalysisConfig):
        return config
    if isinstance(config, Mapping):
        return AnalysisConfig(**dict(config))
    raise TypeError(f"config must be an AnalysisConfig or a dict of its fields, got "
                    f"{type(config).__name__}.")


def _spatial_sources(cfg: AnalysisConfig) -> list[str]:
    """Descriptions of the config's seed sources that need the image geometry."""
    out = []

    def spatial(src, as_map):
        if isinstance(src, (RoiMask, RoiLabel, FixedW, ImportedMap)):
            return True
        if isinstance(src, SeedPixels):
            return src.pixels is not None
        if isinstance(src, BackgroundMap):
            return src.map is not None
        return isinstance(src, PreviousResult) and as_map

    for c in cfg.components:
        if spatial(c.h_source, False):
            out.append(f"{c.name!r} spectrum ({c.h_source.describe()})")
        if spatial(c.w_source, True):
            out.append(f"{c.name!r} map ({type(c.w_source).__name__})")
    bg = cfg.preprocessing.background
    if spatial(bg, False):
        out.append(f"background subtraction ({bg.describe()})")
    return out


def _plane_labels(labels, series: _Series, z):
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.shape == series.plane_shape:
        return labels
    per_plane = tuple(s for i, s in enumerate(series.shape) if i != series.spectral_axis)
    if labels.shape == per_plane:
        index = [slice(None)] * labels.ndim
        index[series.series_axis - (series.series_axis > series.spectral_axis)] = z
        return labels[tuple(index)]
    raise ValueError(f"labels has shape {labels.shape}; it must be one plane's spatial shape "
                     f"{series.plane_shape} (used for every plane) or the stack's shape "
                     f"without the spectral axis {per_plane} (one label image per plane).")


class _WarningLog:
    """Collects the warnings of every plane and re-issues each distinct one once."""

    def __init__(self):
        self.seen: dict[tuple, list] = {}

    def run(self, plane, fn, *args, **kwargs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = fn(*args, **kwargs)
        messages = []
        for w in caught:
            key = (w.category, str(w.message))
            self.seen.setdefault(key, []).append(plane)
            messages.append(f"{w.category.__name__}: {w.message}")
        return out, messages

    def reissue(self, n_planes):
        for (category, message), where in self.seen.items():
            planes = sorted({p for p in where if p is not None})
            parts = ["basis fit"] if None in where else []
            if len(planes) == 1:
                parts.append(f"plane {planes[0]}")
            elif planes:
                parts.append(f"{len(planes)} of {n_planes} planes ({_ranges(planes)})")
            warnings.warn(f"{' and '.join(parts)}: {message}", category, stacklevel=3)


def _ranges(values):
    parts, start, prev = [], None, None
    for v in values:
        if start is None:
            start = prev = v
        elif v == prev + 1:
            prev = v
        else:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = v
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(parts)


def _plane_info(z, res: UnmixResult, messages, x_norm, t0):
    s = res.summary
    info = {k: v for k, v in s.items() if k not in _HEAVY_KEYS}
    info.update({
        "plane": int(z),
        "backend": res.backend,
        "device": res.device,
        "n_iter": int(res.n_iter),
        "reconstruction_err": float(res.reconstruction_err),
        "relative_error": float(s.get("relative_error", res.reconstruction_err
                                      / max(x_norm, np.finfo(float).tiny))),
        "hit_max_iter": bool(s.get("hit_max_iter", False)),
        "n_capped_pixels": int(s.get("n_capped_pixels", 0)),
        "data_norm": float(x_norm),
        "warnings": messages,
        "plane_time_s": time.perf_counter() - t0,
    })
    return info


def _series_totals(planes):
    err = float(np.sqrt(sum(p["reconstruction_err"] ** 2 for p in planes)))
    norm = float(np.sqrt(sum(p["data_norm"] ** 2 for p in planes)))
    iters = [p["n_iter"] for p in planes]
    return {
        "reconstruction_err": err,
        "relative_error": err / max(norm, np.finfo(float).tiny),
        "plane_relative_errors": [p["relative_error"] for p in planes],
        "plane_iters": iters,
        "max_plane_iter": max(iters) if iters else 0,
        "planes_hit_max_iter": [p["plane"] for p in planes if p["hit_max_iter"]],
        "hit_max_iter": any(p["hit_max_iter"] for p in planes),
        "n_capped_pixels": int(sum(p["n_capped_pixels"] for p in planes)),
    }


def _x_norm(X):
    return float(np.sqrt(np.einsum("ij,ij->", X, X, dtype=np.float64)))


# -- matching ----------------------------------------------------------------------------
def _match(H_ref, H, signed):
    """Order (and signs) putting ``H``'s components in line with ``H_ref``'s."""
    if not signed:
        m = match_components(H_ref, H)
        order = np.empty(len(H_ref), dtype=int)
        order[m.true_index] = m.est_index
        return order, np.ones(len(order)), spectral_angle(H_ref, H[order])
    angles = np.atleast_2d(spectral_angle(H_ref[:, None, :], H[None, :, :]))
    folded = np.minimum(angles, np.pi - angles)
    rows, cols = linear_sum_assignment(np.where(np.isnan(folded), np.pi / 2, folded))
    order = np.empty(len(H_ref), dtype=int)
    order[rows] = cols
    raw = angles[np.arange(len(order)), order]
    signs = np.where(raw > np.pi / 2, -1.0, 1.0)
    return order, signs, np.minimum(raw, np.pi - raw)


def _align_planes(maps, Hs, planes, reference, policy, signed):
    """Reorder every plane's components in place; record the pairing per plane."""
    n = len(Hs)
    k = Hs.shape[1]
    planes[reference].update({"matched_to": None, "order": list(range(k)),
                              "signs": [1.0] * k, "angles": [0.0] * k})
    chain = [(z, z - 1) for z in range(reference + 1, n)] + \
            [(z, z + 1) for z in range(reference - 1, -1, -1)]
    for z, prev in chain:
        target = reference if policy == "reference" else prev
        if policy == "none":
            order, signs = np.arange(k), np.ones(k)
            angles = spectral_angle(Hs[target], Hs[z])
        else:
            order, signs, angles = _match(Hs[target], Hs[z], signed)
            Hs[z] = Hs[z][order] * signs[:, None].astype(Hs.dtype)
            if not np.array_equal(order, np.arange(k)) or (signs < 0).any():
                maps[:, z] = maps[order, z] * signs.astype(maps.dtype).reshape(
                    (k,) + (1,) * (maps.ndim - 2))
            evr = planes[z].get("explained_variance_ratio")
            if evr is not None and len(evr) == k:  # per-component values follow the maps
                planes[z]["explained_variance_ratio"] = [evr[i] for i in order]
        planes[z].update({"matched_to": int(target), "order": order.tolist(),
                          "signs": signs.tolist(),
                          "angles": np.atleast_1d(angles).astype(float).tolist()})
    all_angles = np.array([a for p in planes for a in p["angles"]], dtype=float)
    return {
        "policy": policy,
        "reference": int(reference),
        "max_angle": float(np.nanmax(all_angles)) if all_angles.size else 0.0,
        "mean_angle": float(np.nanmean(all_angles)) if all_angles.size else 0.0,
        "reordered_planes": [p["plane"] for p in planes
                             if p["order"] != list(range(k)) or min(p["signs"]) < 0],
    }


# -- the entry point ---------------------------------------------------------------------
def unmix_series(stack, config=None, *, H=None, strategy="shared-basis", series_axis=0,
                 spectral_axis=1, reference=None, pool_size=None, match="auto",
                 nnls_solver=None, nnls_backend=None, spectral_values=None, labels=None,
                 callback: Callable[[ProgressInfo], bool | None] | None = None) -> SeriesResult:
    """Unmix a z-stack or time series of spectral images plane by plane.

    Parameters
    ----------
    stack : array_like
        Series of spectral images, e.g. ``(Z, C, Y, X)`` or ``(T, C, Y, X)``: any
        array with ``shape`` and numpy-style indexing (numpy, memory map, dask,
        zarr ...).  It is read one plane at a time and never modified.
    config : AnalysisConfig or dict, optional
        The analysis to run (a dict is passed to ``AnalysisConfig(**config)``).  It
        may be left out when ``H`` is given; its ``tol``, ``max_iter``,
        ``negative`` and ``device`` then still apply to the NNLS.
    H : array_like, shape (k, n_channels), optional
        Trusted spectra for a shared basis: every plane is unmixed against them.
    strategy : {"shared-basis", "per-slice"}, default "shared-basis"
        See the module documentation.
    series_axis, spectral_axis : int, default 0 and 1
        Positions of the series (z / t) and spectral axes in ``stack``.
    reference : int or "pooled", optional
        Shared basis: the plane the basis is fitted on, or ``"pooled"`` (the
        default) for a pixel sample of all planes.  Per-slice: the plane whose
        component order the others follow (default 0).  Not used with ``H``.
    pool_size : int, optional
        Pixels in the pooled sample (default: the pixel count of one plane).
    match : {"auto", "previous", "reference", "none"}, default "auto"
        Per-slice only: pair each plane's components with its neighbour's towards
        the reference plane, with the reference plane's, or not at all.
        ``"auto"``: ``"previous"`` for random NNMF and PCA, ``"none"`` for the seeded
        modes (whose components are defined by their seeds).  Angles are reported
        in every case.
    nnls_solver, nnls_backend : str, optional
        Shared basis: NNLS solver and backend of the plane fits.  Default: the
        config's ``solver`` / ``backend`` for a ``mode="nnls"`` config, else
        ``"auto"``.
    spectral_values : array_like (n_channels,), optional
        Spectral positions of the channels (for imported spectra and Gaussian
        models; stored in the result).
    labels : array_like of int, optional
        Label image for ``RoiLabel`` sources: one plane's spatial shape (used for
        every plane) or the stack's shape without the spectral axis.
    callback : callable, optional
        ``callback(SeriesProgressInfo) -> bool | None``; returning False cancels.

    Returns
    -------
    SeriesResult
        ``maps (k, n_planes, *plane_shape)``, ``H`` (shared ``(k, C)`` or per plane
        ``(n_planes, k, C)``), per-plane summaries and the params to rerun.

    Raises
    ------
    ValueError, TypeError
        For invalid axes, options or data, saying which plane and what to do.
    Cancelled
        When ``callback`` returns False.

    Warns
    -----
    ConvergenceWarning, UserWarning
        A warning raised by several planes' fits is issued once, naming the planes.

    Examples
    --------
    >>> from napari_unmix.core.synthetic import make_crs_sample_4d
    >>> s = make_crs_sample_4d(n_planes=3, shape=(16, 16), n_channels=16)
    >>> res = unmix_series(s.stack, H=s.H)            # (Z, C, Y, X), known spectra
    >>> res.maps.shape, res.H.shape
    ((4, 3, 16, 16), (4, 16))
    """
    t0 = time.perf_counter()
    if strategy not in SERIES_STRATEGIES:
        raise ValueError(f"strategy={strategy!r} is not one of {', '.join(SERIES_STRATEGIES)}.")
    if match not in MATCH_POLICIES:
        raise ValueError(f"match={match!r} is not one of {', '.join(MATCH_POLICIES)}.")
    cfg = _as_config(config, H)
    series = _Series(stack, series_axis, spectral_axis)
    m = series.n_channels
    if spectral_values is not None:
        spectral_values = np.asarray(spectral_values, dtype=np.float64)
        if spectral_values.shape != (m,):
            raise ValueError(f"spectral_values has {spectral_values.size} values but the stack "
                             f"has {m} channels along spectral_axis={series.spectral_axis}.")
    cfg = cfg.replace(random_state=resolve_random_state(cfg.random_state))
    log = _WarningLog()
    if strategy == "per-slice":
        if H is not None:
            raise ValueError("Given spectra (H=) are a shared basis: use "
                             "strategy='shared-basis', or put them in the config "
                             "(mode='nnls' with Spectrum sources) for per-slice fits.")
        out = _per_slice(series, cfg, reference=reference, policy=match,
                         spectral_values=spectral_values, labels=labels, callback=callback,
                         log=log)
    else:
        out = _shared_basis(series, cfg, H=H, reference=reference, pool_size=pool_size,
                            nnls_solver=nnls_solver, nnls_backend=nnls_backend,
                            spectral_values=spectral_values, labels=labels, callback=callback,
                            log=log)
    maps, H_out, mode, planes, summary, params, arrays, names = out
    log.reissue(series.n_planes)
    store: dict = {}
    params.update({
        "strategy": strategy, "series_axis": series.series_axis,
        "spectral_axis": series.spectral_axis, "match": match,
        "config": cfg.to_dict(arrays=store, prefix="config/"),
    })
    arrays.update(store)
    summary.update({"strategy": strategy, "mode": mode, "n_planes": series.n_planes,
                    "n_components": int(maps.shape[0]), "plane_shape": list(series.plane_shape),
                    "n_channels": m, "stack_shape": list(series.shape),
                    "time_s": time.perf_counter() - t0})
    return SeriesResult(maps=maps, H=H_out, strategy=strategy, mode=mode, planes=planes,
                        summary=summary, params=params, arrays=arrays,
                        component_names=names, spectral_values=spectral_values,
                        spectral_unit=cfg.spectral_unit)


def _run_plane(z, fn, log, *args, where=None, **kwargs):
    """Run one plane's (or the basis') fit; its errors name the plane."""
    try:
        return log.run(z, fn, *args, **kwargs)
    except (ValueError, TypeError) as err:
        prefix = where or f"plane {z}"
        try:
            new = type(err)(f"{prefix}: {err}")
        except Exception:  # an exception type with another signature
            new = ValueError(f"{prefix}: {err}")
        raise new from err


def _per_slice(series, cfg, *, reference, policy, spectral_values, labels, callback, log):
    n = series.n_planes
    ref = 0 if reference is None else _plane_index(reference, n, "reference")
    if policy == "auto":
        policy = "previous" if cfg.mode in ("nmf", "pca") else "none"
    progress = _Progress(callback, n, n)
    maps = Hs = None
    planes, names = [], None
    for z in range(n):
        t_plane = time.perf_counter()
        plane = series.plane(z)
        res, messages = _run_plane(
            z, run_analysis, log, plane, cfg, spectral_values=spectral_values,
            spectral_axis=series.plane_spectral_axis,
            labels=_plane_labels(labels, series, z), callback=progress.inner(1.0, z))
        if maps is None:
            k = res.n_components
            maps = np.empty((k, n, *series.plane_shape), dtype=res.W.dtype)
            Hs = np.empty((n, k, series.n_channels), dtype=res.H.dtype)
            names = list(res.component_names)
        maps[:, z] = res.W.T.reshape((res.n_components, *series.plane_shape))
        Hs[z] = res.H
        rel = float(res.summary.get("relative_error", 0.0))
        x_norm = (res.reconstruction_err / rel if rel > 0 else
                  _x_norm(stack_to_matrix(plane, series.plane_spectral_axis)[0]))
        del plane
        planes.append(_plane_info(z, res, messages, x_norm, t_plane))
        progress.advance(1.0, stage="series", iteration=z + 1, max_iter=n, plane=z,
                         error=res.reconstruction_err)
    match_info = _align_planes(maps, Hs, planes, ref, policy, signed=cfg.mode == "pca")
    summary = _series_totals(planes)
    summary["match"] = match_info
    params = {"reference": ref, "pool_size": None, "nnls_solver": None, "nnls_backend": None}
    return maps, Hs, cfg.mode, planes, summary, params, {}, names


def _pool(series, pool_size, seed, progress, weight):
    """A uniform random pixel sample of every plane, ``(n_pool, C)``, and its layout."""
    n, p = series.n_planes, series.n_plane_pixels
    total = p if pool_size is None else pool_size
    if isinstance(total, bool) or not isinstance(total, numbers.Integral) or total < 1:
        raise ValueError(f"pool_size must be a positive integer, got {pool_size!r}.")
    total = min(int(total), n * p)
    per_plane = np.full(n, total // n)
    per_plane[: total % n] += 1
    per_plane = np.minimum(per_plane, p)
    rng = np.random.default_rng(seed)
    parts = []
    for z in range(n):
        X = series.matrix(z)
        idx = np.sort(rng.choice(p, size=int(per_plane[z]), replace=False))
        parts.append(X[idx])
        del X
        progress.advance(weight, stage="sample", iteration=z + 1, max_iter=n, plane=z)
    return np.concatenate(parts, axis=0), per_plane


def _shared_basis(series, cfg, *, H, reference, pool_size, nnls_solver, nnls_backend,
                  spectral_values, labels, callback, log):
    n, m = series.n_planes, series.n_channels
    if cfg.mode == "pca":
        raise ValueError("A shared basis is fitted by fixed-H NNLS, which needs non-negative "
                         "spectra; PCA loadings are signed. Use strategy='per-slice' for PCA, "
                         "or an NNMF / NNLS config for a shared basis.")
    if cfg.fit_data == "processed" and cfg.preprocessing.active:
        raise ValueError("strategy='shared-basis' fits every plane's raw data against the "
                         "shared spectra, so fit_data='processed' cannot be honoured. Use "
                         "fit_data='raw' (the preprocessing then shapes the seeds only) or "
                         "strategy='per-slice'.")
    if nnls_solver is None:
        nnls_solver = cfg.solver if cfg.mode == "nnls" else "auto"
    if nnls_backend is None:
        nnls_backend = cfg.backend if cfg.mode == "nnls" else "auto"
    seed = cfg.random_state
    basis_info: dict = {}
    arrays: dict = {}
    names = None
    pooled = False
    if H is not None:
        if reference is not None:
            raise ValueError("reference chooses where the shared basis is fitted; with given "
                             "spectra (H=) nothing is fitted, so leave reference out.")
        H_basis = check_spectra(H, n_features=m, name="H")
        H_basis = np.array(H_basis, dtype=np.float64)
        arrays["H_given"] = H_basis
        ref = "given"
        names = cfg.component_names if len(cfg.components) == len(H_basis) else None
        basis_info = {"source": "given"}
        progress = _Progress(callback, n, n)
    else:
        pooled = reference is None or reference == "pooled"
        ref = "pooled" if pooled else _plane_index(reference, n, "reference")
        sample_weight = 0.25 if pooled else 0.0
        progress = _Progress(callback, n + 1 + sample_weight * n, n)
        t_basis = time.perf_counter()
        if pooled:
            spatial = _spatial_sources(cfg)
            if spatial:
                raise ValueError(
                    "A pooled pixel sample has no image geometry, but these seeds need it: "
                    f"{'; '.join(spatial)}. Pass reference=<plane index> to fit the basis "
                    "on the plane the ROIs / maps belong to, or give the spectra as "
                    "Spectrum sources.")
            X_pool, per_plane = _pool(series, pool_size, seed, progress, sample_weight)
            res, messages = _run_plane(None, run_analysis, log, X_pool, cfg,
                                       spectral_values=spectral_values, spectral_axis=1,
                                       callback=progress.inner(1.0, None),
                                       where="basis fit on the pooled pixel sample")
            basis_info = {"source": "pooled", "pool_size": int(X_pool.shape[0]),
                          "pool_pixels_per_plane": per_plane.tolist()}
            del X_pool
        else:
            res, messages = _run_plane(
                ref, run_analysis, log, series.plane(ref), cfg,
                spectral_values=spectral_values, spectral_axis=series.plane_spectral_axis,
                labels=_plane_labels(labels, series, ref), callback=progress.inner(1.0, None),
                where=f"basis fit on reference plane {ref}")
            basis_info = {"source": "plane", "plane": ref}
        progress.advance(1.0, stage="basis", iteration=1, max_iter=1, plane=None,
                         error=res.reconstruction_err)
        H_basis = res.H
        names = list(res.component_names)
        zero = np.flatnonzero(~H_basis.any(axis=1))
        if zero.size:
            raise ValueError(
                f"The fitted basis has all-zero spectra for component(s) "
                f"{', '.join(names[i] for i in zero)}: their maps would be undefined. "
                "Use fewer components or seed them.")
        basis_info.update({k: v for k, v in res.summary.items() if k not in _HEAVY_KEYS})
        basis_info.update({"mode": res.mode, "backend": res.backend, "n_iter": res.n_iter,
                           "reconstruction_err": res.reconstruction_err, "warnings": messages,
                           "basis_time_s": time.perf_counter() - t_basis})
        del res
    k = H_basis.shape[0]
    maps = None
    planes = []
    for z in range(n):
        t_plane = time.perf_counter()
        X = series.matrix(z)
        fit, messages = _run_plane(
            z, nnls, log, X, H_basis, solver=nnls_solver, backend=nnls_backend, tol=cfg.tol,
            max_iter=cfg.max_iter, negative=cfg.negative, device=cfg.device,
            callback=progress.inner(1.0, z))
        if maps is None:
            maps = np.empty((k, n, *series.plane_shape), dtype=fit.W.dtype)
        maps[:, z] = fit.W.T.reshape((k, *series.plane_shape))
        planes.append(_plane_info(z, fit, messages, _x_norm(X), t_plane))
        del X, fit
        progress.advance(1.0, stage="series", iteration=z + 1, max_iter=n, plane=z,
                         error=planes[-1]["reconstruction_err"])
    summary = _series_totals(planes)
    summary["basis"] = basis_info
    params = {"reference": ref, "pool_size": basis_info.get("pool_size") if pooled else None,
              "nnls_solver": planes[0]["algorithm"], "nnls_backend": planes[0]["backend"]}
    return maps, H_basis, "nnls", planes, summary, params, arrays, names
