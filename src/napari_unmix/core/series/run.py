"""Running a series: :func:`unmix_series` and its two strategies (see :mod:`.`)."""

from __future__ import annotations

import numbers
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from .._validation import check_spectra
from ..analysis import AnalysisConfig, labels_sha256, run_analysis
from ..data import check_spectral_values, stack_to_matrix
from ..init import resolve_random_state
from ..modes import MODES
from ..nnls import nnls
from ..progress import ProgressInfo
from ..result import UnmixResult
from ..summaries import BasisSummary, PlaneSummary, SeriesSummary
from .matching import MATCH_POLICIES, align_planes
from .planes import SeriesStack, plane_labels
from .progress import SeriesProgress, WarningLog
from .result import SERIES_STRATEGIES, SeriesResult, plane_index

__all__ = ["spatial_seeds", "unmix_series"]


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


def spatial_seeds(cfg: AnalysisConfig) -> list[str]:
    """Descriptions of the config's seed sources that need the image geometry (ROI
    masks, label ids, seed pixels, maps, a region background), which a pooled pixel
    sample (``reference="pooled"``) does not have; empty when there are none."""
    out = []
    for c in cfg.components:
        if c.h_source is not None and c.h_source.needs_geometry():
            out.append(f"{c.name!r} spectrum ({c.h_source.describe()})")
        if c.w_source is not None and c.w_source.needs_geometry(as_map=True):
            out.append(f"{c.name!r} map ({type(c.w_source).__name__})")
    bg = cfg.preprocessing.background
    if bg is not None and bg.needs_geometry():
        out.append(f"background subtraction ({bg.describe()})")
    return out


def _plane_info(z, res: UnmixResult, messages, x_norm, t0) -> PlaneSummary:
    s = res.summary
    rel = s.relative_error
    return PlaneSummary(
        plane=int(z), backend=res.backend, device=res.device, n_iter=int(res.n_iter),
        reconstruction_err=float(res.reconstruction_err),
        relative_error=float(res.reconstruction_err / max(x_norm, np.finfo(float).tiny)
                             if rel is None else rel),
        hit_max_iter=bool(s.hit_max_iter), n_capped_pixels=s.n_capped,
        data_norm=float(x_norm), warnings=messages, plane_time_s=time.perf_counter() - t0,
        fit=s.light())


def _series_totals(planes) -> SeriesSummary:
    err = float(np.sqrt(sum(p.reconstruction_err ** 2 for p in planes)))
    norm = float(np.sqrt(sum(p.data_norm ** 2 for p in planes)))
    iters = [p.n_iter for p in planes]
    return SeriesSummary(
        reconstruction_err=err,
        relative_error=err / max(norm, np.finfo(float).tiny),
        plane_relative_errors=[p.relative_error for p in planes],
        plane_iters=iters,
        max_plane_iter=max(iters) if iters else 0,
        planes_hit_max_iter=[p.plane for p in planes if p.hit_max_iter],
        hit_max_iter=any(p.hit_max_iter for p in planes),
        n_capped_pixels=int(sum(p.n_capped_pixels for p in planes)),
    )


def _x_norm(X):
    return float(np.sqrt(np.einsum("ij,ij->", X, X, dtype=np.float64)))


# -- the entry point ---------------------------------------------------------------------
def unmix_series(stack, config=None, *, H=None, strategy="shared-basis", series_axis=0,
                 spectral_axis=1, reference=None, pool_size=None, match="auto",
                 nnls_solver=None, nnls_backend=None, spectral_values=None, labels=None,
                 maps_out=None,
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
        every plane) or the stack's shape without the spectral axis.  Its checksum
        is recorded (``summary.labels_sha256``).
    maps_out : str, Path or array-like, optional
        Where the maps go, plane by plane as each is fitted, instead of an array in
        memory: the path of a new zarr array (created with chunks of one component
        and one plane, at most 1024 px along each plane axis; needs
        ``napari-unmix[distributed]``), or an array of shape ``(k, n_planes,
        *plane_shape)`` that takes numpy-style assignment (a zarr array, an h5py
        dataset, a ``np.memmap``).  The result's ``maps`` is then that array, read
        on demand.  Only one plane's maps are held in memory at a time.
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
    if cfg.nan_policy != "raise":
        raise ValueError(f"nan_policy={cfg.nan_policy!r} leaves pixels out of one analysis "
                         "(run_analysis), not of a series, whose planes share one map "
                         "layout: replace the NaN values of the stack, or unmix the planes "
                         "one by one.")
    _check_new_path(maps_out)
    series = SeriesStack(stack, series_axis, spectral_axis)
    m = series.n_channels
    spectral_values = check_spectral_values(
        spectral_values, m, where=f"the stack (along spectral_axis={series.spectral_axis})")
    cfg = cfg.replace(random_state=resolve_random_state(cfg.random_state))
    log = WarningLog()
    if strategy == "per-slice":
        if H is not None:
            raise ValueError("Given spectra (H=) are a shared basis: use "
                             "strategy='shared-basis', or put them in the config "
                             "(mode='nnls' with Spectrum sources) for per-slice fits.")
        out = _per_slice(series, cfg, reference=reference, policy=match,
                         spectral_values=spectral_values, labels=labels, callback=callback,
                         log=log, maps_out=maps_out)
    else:
        out = _shared_basis(series, cfg, H=H, reference=reference, pool_size=pool_size,
                            nnls_solver=nnls_solver, nnls_backend=nnls_backend,
                            spectral_values=spectral_values, labels=labels, callback=callback,
                            log=log, maps_out=maps_out)
    maps, H_out, mode, planes, summary, params, arrays, names = out
    log.reissue(series.n_planes)
    store: dict = {}
    params.update({
        "strategy": strategy, "series_axis": series.series_axis,
        "spectral_axis": series.spectral_axis, "match": match,
        "config": cfg.to_dict(arrays=store, prefix="config/"),
        "maps_out": None if maps_out is None else
        str(maps_out) if isinstance(maps_out, (str, os.PathLike)) else type(maps_out).__name__,
    })
    arrays.update(store)
    summary = summary.replace(strategy=strategy, mode=mode, n_planes=series.n_planes,
                              n_components=int(maps.shape[0]),
                              plane_shape=list(series.plane_shape), n_channels=m,
                              stack_shape=list(series.shape), time_s=time.perf_counter() - t0,
                              labels_sha256=None if labels is None else labels_sha256(labels))
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


def _check_new_path(maps_out):
    """``maps_out`` as a Path when it is one, refused when something is there already."""
    if not isinstance(maps_out, (str, os.PathLike)):
        return None
    path = Path(maps_out)
    if path.exists():
        raise ValueError(f"maps_out={str(path)!r} already exists; the maps are written to a "
                         "new zarr array: give a new path or remove the old one.")
    return path


def _maps_target(maps_out, shape, dtype):
    """The array the maps ``shape`` are written into: a new one in memory, a new zarr
    array at the path ``maps_out``, or the given array (its shape checked)."""
    if maps_out is None:
        return np.empty(shape, dtype=dtype)
    if isinstance(maps_out, (str, os.PathLike)):
        path = _check_new_path(maps_out)
        try:
            import zarr
        except ImportError:
            raise ImportError("maps_out as a path writes a zarr array: pip install "
                              "'napari-unmix[distributed]' (or pass an array to write into, "
                              "such as a numpy memmap).") from None
        chunks = (1, 1, *(min(int(s), 1024) for s in shape[2:]))
        return zarr.create_array(str(path), shape=shape, dtype=dtype, chunks=chunks)
    if tuple(getattr(maps_out, "shape", ())) != tuple(shape):
        raise ValueError(f"maps_out has shape {tuple(getattr(maps_out, 'shape', ()))}, but the "
                         f"maps are {tuple(shape)} (components, planes, *plane_shape): give "
                         "an array of that shape.")
    return maps_out


def _per_slice(series, cfg, *, reference, policy, spectral_values, labels, callback, log,
               maps_out=None):
    n = series.n_planes
    ref = 0 if reference is None else plane_index(reference, n, "reference")
    spec = MODES[cfg.mode]
    if policy == "auto":  # seeded components keep the order their seeds define
        policy = "none" if spec.seeded else "previous"
    progress = SeriesProgress(callback, n, n)
    maps = Hs = None
    planes, names = [], None
    for z in range(n):
        t_plane = time.perf_counter()
        plane = series.plane(z)
        res, messages = _run_plane(
            z, run_analysis, log, plane, cfg, spectral_values=spectral_values,
            spectral_axis=series.plane_spectral_axis,
            labels=plane_labels(labels, series, z), callback=progress.inner(1.0, z))
        if maps is None:
            k = res.n_components
            maps = _maps_target(maps_out, (k, n, *series.plane_shape), res.W.dtype)
            Hs = np.empty((n, k, series.n_channels), dtype=res.H.dtype)
            names = list(res.component_names)
        maps[:, z] = np.asarray(res.W).T.reshape((res.n_components, *series.plane_shape))
        Hs[z] = res.H
        rel = res.summary.relative_error or 0.0
        x_norm = (res.reconstruction_err / rel if rel > 0 else
                  _x_norm(stack_to_matrix(plane, series.plane_spectral_axis)[0]))
        del plane
        planes.append(_plane_info(z, res, messages, x_norm, t_plane))
        progress.advance(1.0, stage="series", iteration=z + 1, max_iter=n, plane=z,
                         error=res.reconstruction_err)
    match_info = align_planes(maps, Hs, planes, ref, policy, signed=not spec.non_negative)
    summary = _series_totals(planes).replace(match=match_info)
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
                  spectral_values, labels, callback, log, maps_out=None):
    n, m = series.n_planes, series.n_channels
    spec = MODES[cfg.mode]
    if not spec.non_negative:
        raise ValueError("A shared basis is fitted by fixed-H NNLS, which needs non-negative "
                         "spectra; PCA loadings are signed. Use strategy='per-slice' for PCA, "
                         "or an NNMF / NNLS config for a shared basis.")
    if cfg.fit_data == "processed" and cfg.preprocessing.active:
        raise ValueError("strategy='shared-basis' fits every plane's raw data against the "
                         "shared spectra, so fit_data='processed' cannot be honoured. Use "
                         "fit_data='raw' (the preprocessing then shapes the seeds only) or "
                         "strategy='per-slice'.")
    if nnls_solver is None:  # a fixed-H NNLS config's solver names are NNLS solvers
        nnls_solver = cfg.solver if spec.fixed_spectra else "auto"
    if nnls_backend is None:
        nnls_backend = cfg.backend if spec.fixed_spectra else "auto"
    seed = cfg.random_state
    basis_info = BasisSummary()
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
        basis_info = BasisSummary(source="given")
        progress = SeriesProgress(callback, n, n)
    else:
        pooled = reference is None or reference == "pooled"
        ref = "pooled" if pooled else plane_index(reference, n, "reference")
        sample_weight = 0.25 if pooled else 0.0
        progress = SeriesProgress(callback, n + 1 + sample_weight * n, n)
        t_basis = time.perf_counter()
        if pooled:
            spatial = spatial_seeds(cfg)
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
            basis_info = BasisSummary(source="pooled", pool_size=int(X_pool.shape[0]),
                                      pool_pixels_per_plane=per_plane.tolist())
            del X_pool
        else:
            res, messages = _run_plane(
                ref, run_analysis, log, series.plane(ref), cfg,
                spectral_values=spectral_values, spectral_axis=series.plane_spectral_axis,
                labels=plane_labels(labels, series, ref), callback=progress.inner(1.0, None),
                where=f"basis fit on reference plane {ref}")
            basis_info = BasisSummary(source="plane", plane=ref)
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
        basis_info = basis_info.replace(
            fit=res.summary.light(), mode=res.mode, backend=res.backend, n_iter=res.n_iter,
            reconstruction_err=res.reconstruction_err, hit_max_iter=res.summary.hit_max_iter,
            converged=getattr(res.summary, "converged", None), warnings=messages,
            basis_time_s=time.perf_counter() - t_basis)
        del res
    k = H_basis.shape[0]
    maps = None
    planes = []
    for z in range(n):
        t_plane = time.perf_counter()
        X = series.matrix(z)
        fit, messages = _run_plane(
            z, nnls, log, X, H_basis, solver=nnls_solver, backend=nnls_backend, tol=cfg.tol,
            max_iter=cfg.max_iter, negative=cfg.negative, device=cfg.device, loss=cfg.loss,
            abundance=cfg.abundance, callback=progress.inner(1.0, z))
        if maps is None:
            maps = _maps_target(maps_out, (k, n, *series.plane_shape), fit.W.dtype)
        maps[:, z] = np.asarray(fit.W).T.reshape((k, *series.plane_shape))
        planes.append(_plane_info(z, fit, messages, _x_norm(X), t_plane))
        del X, fit
        progress.advance(1.0, stage="series", iteration=z + 1, max_iter=n, plane=z,
                         error=planes[-1].reconstruction_err)
    summary = _series_totals(planes).replace(basis=basis_info)
    params = {"reference": ref, "pool_size": basis_info.pool_size if pooled else None,
              "nnls_solver": planes[0].fit.solver, "nnls_backend": planes[0].backend}
    return maps, H_basis, "nnls", planes, summary, params, arrays, names


SeriesResult.runner = unmix_series
