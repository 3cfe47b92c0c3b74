"""One entry point for a whole analysis: :class:`AnalysisConfig` and :func:`run_analysis`.

An :class:`AnalysisConfig` holds everything an analysis needs besides the data: the
mode, the components and their seed sources, the seed settings, the preprocessing,
and the solver options.  It converts to JSON and back exactly (arrays included), so
a config can be saved, shared, and stored inside the result it produced.

:func:`run_analysis` runs a config on a stack:

1. the stack becomes a pixel-by-channel matrix (``stack_to_matrix``);
2. non-negative modes apply the negative-value policy (``negative``) to it: this is
   the *raw* data;
3. the preprocessing steps (background subtraction, smoothing) make the
   *processed* data from the raw data;
4. seeds are built (seeded NNMF: ``W0`` and ``H0``; fixed-H NNLS: ``H0``), each
   component from its working data (see :mod:`~napari_unmix.core.seeds`);
5. the mode runs on the data chosen by ``fit_data``.

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
    the result stores the resolved config (``result.params["config"]``, arrays in
    ``result.arrays``).  ``AnalysisConfig.from_result(result)`` gives it back;
    running it on the same stack, axis and label image gives identical numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._files import atomic_path
from ._validation import check_data_matrix
from .components import ComponentSpec, Flat, FromComponent
from .data import stack_to_matrix
from .init import INITS, resolve_random_state
from .modes import MODES
from .nmf import nmf
from .nnls import nnls
from .offsets import move_offsets_to_flat_row
from .pca import pca
from .preprocess import NEGATIVE_POLICIES, Preprocessing, apply_negative_policy, preprocess
from .result import UnmixResult
from .seeds import H_FALLBACKS, W_SEED_MODES, build_seeds, source_spectrum

__all__ = ["FIT_DATA", "AnalysisConfig", "run_analysis"]

_FORMAT = "napari-unmix-config"
_FORMAT_VERSION = 1

#: Which data the factorisation fits.
FIT_DATA = ("raw", "processed")


@dataclass(eq=False)
class AnalysisConfig:
    """Everything an analysis needs besides the data.

    Parameters
    ----------
    mode : {"pca", "nmf", "seeded-nmf", "nnls"}, default "seeded-nmf"
        The unmixing mode (see ``core.modes.MODES``).
    components : list of ComponentSpec
        Seeded NNMF / fixed-H NNLS: one spec per component (their order is the
        order of the result's components).  PCA / random NNMF: optional, only names
        and colours are used.
    n_components : int, optional
        PCA / random NNMF: the number of components (default: ``len(components)``).
        Seeded modes: must equal ``len(components)`` when given.
    w_seed_mode : {"nnls", "selective_score", "h_weighted", "average", "empty"}
        How seed maps are built from seed spectra.
    overwrite : bool, default True
        Replace spectral-information W images by H-based maps (see ``seeds``).
    h_fallback : {"residual", "random", "none"}, default "residual"
        Spectrum of components without a usable spectrum seed.
    residual_score : bool, default True
        Score-based selection of residual pixels in the residual fallback.
    preprocessing : Preprocessing
        Background subtraction and smoothing (what makes the processed data).
    fit_data : {"raw", "processed"}, default "raw"
        Data the factorisation fits (see the module documentation).
    solver, backend : str, default "auto"
        NNMF solver / backend (``"mu"``, ``"cd"`` ...) or, for ``mode="nnls"``, the
        NNLS solver / backend (``"lawson-hanson"``, ``"fista"`` ...).
    init : str, default "nndsvda"
        Initialisation of random NNMF.
    tol, max_iter : float, int
        Stopping rule (see ``core.nmf`` / ``core.nnls``).
    random_state : int or None
        Seed of every random choice; ``None`` draws one, recorded in the result.
    negative : {"raise", "clip", "offset"}, default "raise"
        Negative values in the data of the non-negative modes.
    device : str, default "auto"
        torch device of torch backends.
    standardize : bool, default True
        PCA: standardise channels.
    spectral_unit : str, optional
        Unit of the spectral axis, stored in the result.
    """

    mode: str = "seeded-nmf"
    components: list = field(default_factory=list)
    n_components: int | None = None
    w_seed_mode: str = "nnls"
    overwrite: bool = True
    h_fallback: str = "residual"
    residual_score: bool = True
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    fit_data: str = "raw"
    solver: str = "auto"
    backend: str = "auto"
    init: str = "nndsvda"
    tol: float = 1e-4
    max_iter: int = 1000
    random_state: int | None = None
    negative: str = "raise"
    device: str = "auto"
    standardize: bool = True
    spectral_unit: str | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"Unknown mode {self.mode!r}; choose one of {', '.join(MODES)}.")
        self.components = list(self.components or [])
        for c in self.components:
            if not isinstance(c, ComponentSpec):
                raise TypeError(f"components must be ComponentSpec objects, got "
                                f"{type(c).__name__}.")
        names = [c.name for c in self.components]
        dup = sorted({x for x in names if names.count(x) > 1})
        if dup:
            raise ValueError(f"Component names must be unique; repeated: {', '.join(dup)}.")
        if self.preprocessing is None:
            self.preprocessing = Preprocessing()
        if not isinstance(self.preprocessing, Preprocessing):
            raise TypeError("preprocessing must be a core.preprocess.Preprocessing.")
        checks = (("w_seed_mode", W_SEED_MODES), ("h_fallback", H_FALLBACKS),
                  ("fit_data", FIT_DATA), ("negative", NEGATIVE_POLICIES), ("init", INITS))
        for attr, allowed in checks:
            if getattr(self, attr) not in allowed:
                raise ValueError(f"{attr}={getattr(self, attr)!r} is not one of "
                                 f"{', '.join(allowed)}.")
        if self.n_components is not None:
            self.n_components = int(self.n_components)
        if self.random_state is not None:
            self.random_state = resolve_random_state(self.random_state)
        bg = self.preprocessing.background
        if isinstance(bg, FromComponent) and bg.name not in names:
            raise ValueError(f"The background subtraction uses component {bg.name!r}, which is "
                             f"not among the components ({', '.join(names) or 'none'}).")

    # -- convenience ---------------------------------------------------------------------
    @property
    def component_names(self) -> list[str]:
        return [c.name for c in self.components]

    def replace(self, **changes) -> AnalysisConfig:
        """A copy with some fields changed (components and sources are shared)."""
        return dataclasses.replace(self, **changes)

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self, *, arrays: dict | None = None, prefix: str = "") -> dict:
        """Plain-JSON description.

        Arrays (ROI masks, spectra, maps) are encoded inline, bit-exactly, unless a
        dict ``arrays`` is given: then they are put there (keys start with
        ``prefix``) and referenced.
        """
        out = {"format": _FORMAT, "format_version": _FORMAT_VERSION}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "components":
                v = [c.to_dict(arrays=arrays, prefix=f"{prefix}components/{i}/")
                     for i, c in enumerate(v)]
            elif f.name == "preprocessing":
                v = v.to_dict(arrays=arrays, prefix=f"{prefix}preprocessing/")
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict, *, arrays: dict | None = None) -> AnalysisConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        fmt = d.pop("format", _FORMAT)
        version = d.pop("format_version", _FORMAT_VERSION)
        if fmt != _FORMAT:
            raise ValueError(f"Not a napari-unmix analysis config (format {fmt!r}).")
        if version > _FORMAT_VERSION:
            raise ValueError(f"This config was written by a newer napari-unmix (format "
                             f"{version}); upgrade napari-unmix to read it.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"Unknown config field(s) {sorted(unknown)}; known: {sorted(known)}.")
        d["components"] = [ComponentSpec.from_dict(c, arrays=arrays)
                           for c in d.get("components") or []]
        d["preprocessing"] = Preprocessing.from_dict(d.get("preprocessing"), arrays=arrays)
        return cls(**d)

    def to_json(self, **json_kwargs) -> str:
        """The config as JSON text (arrays inline)."""
        return json.dumps(self.to_dict(), **json_kwargs)

    @classmethod
    def from_json(cls, text: str) -> AnalysisConfig:
        """Read a config from :meth:`to_json` text."""
        return cls.from_dict(json.loads(text))

    def save(self, path) -> Path:
        """Write the config as JSON to ``path`` (atomically)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_json(indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path) -> AnalysisConfig:
        """Read a config written by :meth:`save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    @classmethod
    def from_result(cls, result: UnmixResult) -> AnalysisConfig:
        """The config a result of :func:`run_analysis` was made with."""
        if "config" not in result.params:
            raise ValueError("This result holds no analysis config (it was not made by "
                             "run_analysis); its params alone describe the run.")
        return cls.from_dict(result.params["config"], arrays=result.arrays)


# -- running -----------------------------------------------------------------------------
def _background_spectrum(cfg: AnalysisConfig, raw, spatial_shape, labels, spectral_axis):
    src = cfg.preprocessing.background
    notes: list[str] = []
    if isinstance(src, FromComponent):
        comp = next(c for c in cfg.components if c.name == src.name)
        if comp.h_source is None:
            raise ValueError(f"The background subtraction uses component {src.name!r}, but that "
                             "component has no spectrum source (ROI, spectrum or model).")
        h, _ = source_spectrum(comp.h_source, raw, name=comp.name, spatial_shape=spatial_shape,
                               labels=labels, spectral_axis=spectral_axis, warnings=notes)
        name = f"component {src.name!r} ({comp.h_source.describe()})"
    else:
        h, _ = source_spectrum(src, raw, name="background", spatial_shape=spatial_shape,
                               labels=labels, spectral_axis=spectral_axis, warnings=notes)
        name = src.describe()
    return h, name, notes


def _absorb_offsets(res, components, locked):
    """Apply the first locked ``Flat(absorb_offsets=True)`` row of a seeded NNMF fit."""
    flat = next((j for j, c in enumerate(components)
                 if isinstance(c.h_source, Flat) and c.h_source.absorb_offsets
                 and locked[j]), None)
    if flat is None:
        return res
    W, H, moved = move_offsets_to_flat_row(res.W, res.H, flat=flat,
                                           keep=np.flatnonzero(locked))
    summary = dict(res.summary)
    summary["offsets_moved"] = {
        "into": components[flat].name,
        "amounts": {c.name: float(moved[j]) for j, c in enumerate(components)
                    if j != flat and not locked[j]},
    }
    return dataclasses.replace(res, W=W, H=H, summary=summary)


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
        With ``component_names``, ``spectral_axis``, ``params["config"]`` (the
        resolved config; its arrays in ``arrays`` under ``"config/..."``),
        ``summary["seeds"]`` (per-component seed reports, seeded modes) and
        ``summary["preprocessing"]`` (the steps that ran).

    Raises
    ------
    ValueError, TypeError
        For invalid data or configs, with what to do.
    """
    t0 = time.perf_counter()
    if not isinstance(config, AnalysisConfig):
        raise TypeError(f"config must be an AnalysisConfig, got {type(config).__name__}.")
    seed = resolve_random_state(config.random_state)
    cfg = config.replace(random_state=seed)
    mode = cfg.mode
    X_in, spatial_shape = stack_to_matrix(stack, spectral_axis)
    X_in = check_data_matrix(X_in, name="stack")
    n, m = X_in.shape
    values = spectral_values
    if values is not None:
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (m,):
            raise ValueError(f"spectral_values has {values.size} values but the stack has "
                             f"{m} channels along axis {spectral_axis}.")
    seeded = mode in ("seeded-nmf", "nnls")
    if seeded:
        if not cfg.components:
            raise ValueError(f"mode={mode!r} needs components with seeds (ComponentSpec list); "
                             "for an unguided analysis use mode='nmf'.")
        if cfg.n_components is not None and cfg.n_components != len(cfg.components):
            raise ValueError(f"n_components={cfg.n_components} but {len(cfg.components)} "
                             "components are specified; in seeded modes the components define "
                             "the number (add unseeded ComponentSpec(name) entries for extra "
                             "ones).")
    k = cfg.n_components if cfg.n_components is not None else len(cfg.components)
    if not seeded and k < 1:
        raise ValueError(f"mode={mode!r} needs n_components (or a list of components).")
    if not seeded and cfg.components and len(cfg.components) != k:
        raise ValueError(f"{len(cfg.components)} components are named but n_components={k}.")

    # raw and processed data
    steps: list[dict] = []
    if mode == "pca":
        raw = X_in
    else:
        raw, neg_info = apply_negative_policy(X_in, cfg.negative, name="stack")
        steps.append({"step": "negative", **neg_info})
    processed = raw
    notes: list[str] = []
    pp = cfg.preprocessing
    if pp.active:
        bg = bg_name = None
        if pp.background is not None:
            bg, bg_name, notes = _background_spectrum(cfg, raw, spatial_shape, labels,
                                                      values)
        processed, pp_steps = preprocess(raw, background=bg, background_name=bg_name or "",
                                         smoothing=pp.smoothing, window_length=pp.window_length,
                                         polyorder=pp.polyorder, sigma=pp.sigma)
        steps.extend(pp_steps)
    X_fit = raw
    if cfg.fit_data == "processed" and pp.active:
        X_fit = processed
        if mode != "pca":
            X_fit, info = apply_negative_policy(processed, cfg.negative, name="processed data")
            steps.append({"step": "negative (processed data)", **info})

    seeds = None
    if mode == "pca":
        res = pca(X_fit, k, standardize=cfg.standardize, callback=callback)
    elif mode == "nmf":
        res = nmf(X_fit, k, solver=cfg.solver, backend=cfg.backend, init=cfg.init, tol=cfg.tol,
                  max_iter=cfg.max_iter, random_state=seed, callback=callback,
                  device=cfg.device)
    else:
        seeds = build_seeds(raw, cfg.components, X_processed=processed if pp.active else None,
                            spatial_shape=spatial_shape, labels=labels,
                            spectral_axis=values, w_seed_mode=cfg.w_seed_mode,
                            overwrite=cfg.overwrite, h_fallback=cfg.h_fallback,
                            residual_score=cfg.residual_score, build_w=mode == "seeded-nmf",
                            random_state=seed, fixed_h=mode == "nnls", callback=callback)
        seeds.notes[:0] = notes
        if mode == "nnls":
            if seeds.fallback_components:
                warnings.warn(
                    "Fixed-H NNLS: no usable spectrum was given for "
                    f"{', '.join(repr(x) for x in seeds.fallback_components)}; a fallback "
                    "spectrum was estimated and kept fixed. It is an emergency stand-in, not a "
                    "trusted reference: give a measured spectrum for reliable abundances.",
                    UserWarning, stacklevel=2)
            res = nnls(X_fit, seeds.H0, solver=cfg.solver, backend=cfg.backend, tol=cfg.tol,
                       max_iter=cfg.max_iter, callback=callback, device=cfg.device)
        else:
            res = nmf(X_fit, k, W0=seeds.W0, H0=seeds.H0,
                      locked=seeds.locked if seeds.locked.any() else None,
                      solver=cfg.solver, backend=cfg.backend, tol=cfg.tol,
                      max_iter=cfg.max_iter, random_state=seed, callback=callback,
                      device=cfg.device)
            res = _absorb_offsets(res, cfg.components, seeds.locked)

    store: dict = {}
    cfg_dict = cfg.to_dict(arrays=store, prefix="config/")
    params = dict(res.params)
    params["config"] = cfg_dict
    summary = dict(res.summary)
    if mode != "pca":
        params["negative"] = cfg.negative
        summary["negative"] = {k_: v for k_, v in steps[0].items() if k_ != "step"}
    summary["preprocessing"] = steps
    summary["fit_data"] = cfg.fit_data if pp.active else "raw"
    if seeds is not None:
        summary["seeds"] = seeds.summary()
    if labels is not None:
        summary["labels_sha256"] = hashlib.sha256(
            np.ascontiguousarray(np.asarray(labels)).tobytes()).hexdigest()
    summary["analysis_time_s"] = time.perf_counter() - t0
    arrays = dict(res.arrays)
    arrays.update(store)
    names = cfg.component_names if cfg.components else list(res.component_names)
    return dataclasses.replace(res, params=params, summary=summary, arrays=arrays,
                               component_names=names, spectral_axis=values,
                               spectral_unit=cfg.spectral_unit)
