"""One entry point for a whole analysis: :func:`run_analysis`.

:func:`run_analysis` runs an :class:`~napari_unmix.core.config.AnalysisConfig` on a
stack in four steps:

1. **prepare** (:func:`~napari_unmix.core.data.prepare_stack`): the stack becomes a
   pixel-by-channel matrix, checked once, with the negative-value policy
   (``negative``) applied for the non-negative modes: this is the *raw* data;
2. **preprocess** (:func:`prepare_fit_data`): the preprocessing steps (background
   subtraction, smoothing) make the *processed* data from the raw data, and
   ``fit_data`` chooses which of the two the mode fits;
3. **seeds** (seeded modes, :func:`~napari_unmix.core.seeds.build_seeds`): ``W0`` and
   ``H0`` (fixed-H NNLS: ``H0`` only), each component from its working data;
4. **run**: ``MODES[config.mode].run(data, config, seeds, callback)``
   (:mod:`~napari_unmix.core.modes`).

Which data the factorisation fits
    ``fit_data="raw"`` (default): NNMF / NNLS fit the raw data, and preprocessing
    only shapes the seeds.  The model ``X = W H`` is additive, so a background is
    best represented as a component of its own (``background=True``) rather than
    subtracted, which also would push noisy pixels below zero, where a
    non-negative model cannot follow.  Subtracted data gives cleaner spectrum
    seeds for the chemical components, which is where it is used.
    ``fit_data="processed"``: fit the processed data instead; its negative values
    then go through the same ``negative`` policy (``"raise"`` refuses them, with
    advice).  PCA has no sign constraint: it fits the chosen data as it is.

Reproducibility
    ``random_state=None`` is resolved to a concrete int before anything runs, and
    the result stores the resolved config (``result.config``; its JSON form in
    ``result.params["config"]``, arrays in ``result.arrays``).  Running it again on
    the same stack, axis and label image gives identical numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import warnings

import numpy as np

from .chunked.scheduler import is_dask_array
from .components import FromComponent
from .config import FIT_DATA, AnalysisConfig
from .data import COMPUTE_FIRST, OMIT_NEEDS_MEMORY, PreparedData, check_matrix, prepare_stack
from .init import resolve_random_state
from .modes import MODES, ModeSpec
from .preprocess import preprocess
from .result import PIXEL_MASK_KEY, UnmixResult
from .seeds import build_seeds
from .sources import SeedContext
from .summaries import NegativeInfo

__all__ = ["FIT_DATA", "AnalysisConfig", "labels_sha256", "prepare_fit_data", "run_analysis"]


def labels_sha256(labels) -> str:
    """The checksum of a label image that a result records (``summary.labels_sha256``).

    SHA-256 of the array's bytes in C order (so it depends on the values, the
    shape's element count and the dtype); a rerun compares it to refuse a
    different label image.
    """
    return hashlib.sha256(np.ascontiguousarray(np.asarray(labels)).tobytes()).hexdigest()


def _check_components(spec: ModeSpec, cfg: AnalysisConfig) -> int:
    """The number of components, after checking the components fit the mode."""
    mode = spec.name
    if spec.seeded:
        if not cfg.components:
            raise ValueError(f"mode={mode!r} needs components with seeds (ComponentSpec list); "
                             "for an unguided analysis use mode='nmf'.")
        if cfg.n_components is not None and cfg.n_components != len(cfg.components):
            raise ValueError(f"n_components={cfg.n_components} but {len(cfg.components)} "
                             "components are specified; in seeded modes the components define "
                             "the number (add unseeded ComponentSpec(name) entries for extra "
                             "ones).")
        return len(cfg.components)
    k = cfg.n_components if cfg.n_components is not None else len(cfg.components)
    if k < 1:
        raise ValueError(f"mode={mode!r} needs n_components (or a list of components).")
    if cfg.components and len(cfg.components) != k:
        raise ValueError(f"{len(cfg.components)} components are named but n_components={k}.")
    return k


def _background_spectrum(cfg: AnalysisConfig, data: PreparedData, labels):
    """The spectrum a background subtraction removes, its description and notes."""
    src = cfg.preprocessing.background
    notes: list[str] = []
    ctx = SeedContext(data.raw.X, spatial_shape=data.spatial_shape, labels=labels,
                      spectral_values=data.spectral_values, pixel_mask=data.pixel_mask)
    if isinstance(src, FromComponent):
        comp = next(c for c in cfg.components if c.name == src.name)
        if comp.h_source is None:
            raise ValueError(f"The background subtraction uses component {src.name!r}, but that "
                             "component has no spectrum source (ROI, spectrum or model).")
        h, _ = comp.h_source.spectrum(ctx, data.raw.X, name=comp.name, warnings=notes)
        return h, f"component {src.name!r} ({comp.h_source.describe()})", notes
    h, _ = src.spectrum(ctx, data.raw.X, name="background", warnings=notes)
    return h, src.describe(), notes


def prepare_fit_data(data: PreparedData, cfg: AnalysisConfig, *, non_negative: bool,
                     labels=None) -> list[str]:
    """Run the config's preprocessing on ``data`` and choose the data the mode fits.

    Sets ``data.processed``, ``data.fit`` and appends to ``data.steps``; returns the
    notes the background spectrum raised (for the seed summary).
    """
    pp = cfg.preprocessing
    if not pp.active:
        return []
    bg = bg_name = None
    notes: list[str] = []
    if pp.background is not None:
        bg, bg_name, notes = _background_spectrum(cfg, data, labels)
    processed, steps = preprocess(data.raw.X, background=bg, background_name=bg_name or "",
                                  smoothing=pp.smoothing, window_length=pp.window_length,
                                  polyorder=pp.polyorder, sigma=pp.sigma)
    data.processed = processed
    data.steps.extend(steps)
    if cfg.fit_data == "processed":
        fit = check_matrix(processed, negative=cfg.negative if non_negative else None,
                           name="processed data")
        if fit.negative is not None:
            data.steps.append({"step": "negative (processed data)", **fit.negative})
        data.fit = fit
    return notes


def run_analysis(stack, config: AnalysisConfig, *, spectral_axis=0, spectral_values=None,
                 labels=None, callback=None) -> UnmixResult:
    """Run a whole analysis described by ``config`` on ``stack``.

    Parameters
    ----------
    stack : array_like
        Spectral stack, e.g. ``(C, Y, X)``.
    config : AnalysisConfig
    spectral_axis : int, default 0
        Position of the spectral axis in ``stack`` (as in ``stack_to_matrix``).
    spectral_values : array_like (n_channels,), optional
        Spectral positions of the channels (wavenumbers, wavelengths).  Needed to
        resample imported spectra and to place Gaussian models.
    labels : array_like of int, optional
        Label image (the stack's spatial shape) for ``RoiLabel`` sources.
    callback : callable, optional
        ``callback(ProgressInfo) -> bool | None``; stages ``"seeds"`` then the
        mode's; returning False cancels (:class:`~.progress.Cancelled`).

    Returns
    -------
    UnmixResult
        With ``component_names``, ``spectral_values``, ``config`` (the resolved
        config; its JSON form in ``params["config"]``, its arrays in ``arrays`` under
        ``"config/..."``), ``summary.seeds`` (seeded modes) and
        ``summary.preprocessing`` (the steps that ran).

    Raises
    ------
    ValueError, TypeError
        For invalid data or configs, with what to do.

    Warns
    -----
    UserWarning
        When ``config.spectral_unit`` is given without ``spectral_values``: channel
        indices have no unit, so the result records none.
    """
    t0 = time.perf_counter()
    if not isinstance(config, AnalysisConfig):
        raise TypeError(f"config must be an AnalysisConfig, got {type(config).__name__}.")
    cfg = config.replace(random_state=resolve_random_state(config.random_state))
    if cfg.spectral_unit is not None and spectral_values is None:
        warnings.warn(f"The config's spectral_unit {cfg.spectral_unit!r} is not recorded: "
                      "no spectral_values were given, so the channels are numbered 0, 1, ... "
                      "and have no unit. Pass the channels' spectral_values to keep the unit.",
                      UserWarning, stacklevel=2)
        cfg = cfg.replace(spectral_unit=None)
    spec = MODES[cfg.mode]
    _check_components(spec, cfg)
    lazy = is_dask_array(stack)
    if lazy:   # blocks over whole spectra, checked in one pass (core.chunked)
        from .chunked.blocks import prepare_dask_stack

        if cfg.preprocessing.active:
            raise ValueError("Preprocessing (background subtraction, smoothing) runs on "
                             f"data in memory: {COMPUTE_FIRST}, or switch preprocessing off "
                             "for a dask stack.")
        if cfg.nan_policy != "raise":
            raise ValueError(f"nan_policy={cfg.nan_policy!r} leaves pixels out of "
                             f"{OMIT_NEEDS_MEMORY}")
        data = prepare_dask_stack(stack, spectral_axis=spectral_axis,
                                  spectral_values=spectral_values,
                                  negative=cfg.negative if spec.non_negative else None)
    else:
        data = prepare_stack(stack, spectral_axis=spectral_axis,
                             spectral_values=spectral_values,
                             negative=cfg.negative if spec.non_negative else None,
                             nan_policy=cfg.nan_policy)
    notes = prepare_fit_data(data, cfg, non_negative=spec.non_negative, labels=labels)
    seeds = None
    if spec.seeded:
        seeds = build_seeds(data.raw, cfg.components, X_processed=data.processed,
                            spatial_shape=data.spatial_shape, labels=labels,
                            spectral_values=data.spectral_values, w_seed_mode=cfg.w_seed_mode,
                            overwrite=cfg.overwrite, h_fallback=cfg.h_fallback,
                            residual_score=cfg.residual_score,
                            # a dask stack: spectra only (from the ROI pixels); the mode
                            # fits the start's maps to them block by block
                            build_w=spec.builds_maps and not lazy,
                            random_state=cfg.random_state, fixed_h=spec.fixed_spectra,
                            layout=data.layout, pixel_mask=data.pixel_mask,
                            callback=callback)
        seeds.notes[:0] = notes
    res = spec.run(data, cfg, seeds, callback)
    if data.layout is not None:   # rows read tile by tile: the result in C order
        res = _in_c_order(res, data.layout)
    return _with_analysis(res, cfg, spec, data, seeds, labels, time.perf_counter() - t0)


def _in_c_order(res: UnmixResult, layout) -> UnmixResult:
    """A result of rows in ``layout``'s order with its per-pixel arrays (``W`` and the
    arrays with one row per pixel) and pixel indices in C order, as a result of the
    stack's ``stack_to_matrix`` rows has them (lazily: no block is computed)."""
    from .chunked.store import rows_to_c_order

    n = layout.n_pixels
    arrays = {key: rows_to_c_order(v, layout)
              if getattr(v, "ndim", 0) in (1, 2) and v.shape[0] == n else v
              for key, v in res.arrays.items()}
    summary = res.summary
    capped = getattr(summary, "capped_pixels", None)
    if capped:
        summary = summary.replace(
            capped_pixels=np.sort(layout.c_indices(capped)).tolist())
    return dataclasses.replace(res, W=rows_to_c_order(res.W, layout), arrays=arrays,
                               summary=summary)


def _with_analysis(res: UnmixResult, cfg, spec, data: PreparedData, seeds, labels,
                   elapsed) -> UnmixResult:
    """The mode's result with what the analysis adds: its config, the data's
    preprocessing, the seeds' reports, names and spectral values."""
    store: dict = {}
    params = dict(res.params)
    params["config"] = cfg.to_dict(arrays=store, prefix="config/")
    changes = {"preprocessing": data.steps,
               "fit_data": cfg.fit_data if cfg.preprocessing.active else "raw",
               "analysis_time_s": elapsed}
    if spec.non_negative:
        params["negative"] = cfg.negative
        changes["negative"] = NegativeInfo.from_dict(data.raw.negative)
    params["nan_policy"] = cfg.nan_policy
    if seeds is not None:
        changes["seeds"] = seeds.summary()
    if labels is not None:
        changes["labels_sha256"] = labels_sha256(labels)
    arrays = dict(res.arrays)
    arrays.update(store)
    if data.pixel_mask is not None:  # the maps are NaN where pixels were left out
        arrays[PIXEL_MASK_KEY] = np.asarray(data.pixel_mask, dtype=bool)
    names = cfg.component_names if cfg.components else list(res.component_names)
    return dataclasses.replace(res, params=params, summary=res.summary.replace(**changes),
                               arrays=arrays, component_names=names,
                               spectral_values=data.spectral_values,
                               spectral_unit=cfg.spectral_unit)
