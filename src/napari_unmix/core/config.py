"""The description of a whole analysis: :class:`AnalysisConfig`.

An :class:`AnalysisConfig` holds everything an analysis needs besides the data: the
mode, the components and their seed sources, the seed settings, the preprocessing,
and the solver options.  It converts to JSON and back exactly (arrays included), so
a config can be saved, shared, and stored inside the result it produced
(:attr:`~napari_unmix.core.result.UnmixResult.config`).  Which fields a mode uses is
said by its :class:`~napari_unmix.core.modes.ModeSpec` (``options``).

The label image of ``RoiLabel`` sources is data, given to the run (``labels=``); a
config saved beside its label image (the dock's "Save setup" of labels painted plane
by plane, ``<name>.labels.tif``) names that file and its checksum in
:attr:`AnalysisConfig.label_image` (a :class:`LabelImageFile`), which the readers of
saved configs (:func:`napari_unmix.io.read_setup_labels`, ``napari-unmix run
--config``) follow; the analysis itself never reads it.  A setup saved with a z / t
series choice other than the joint fit records it in :attr:`AnalysisConfig.series` (a
:class:`~napari_unmix.core.series_choice.SeriesChoice`, the keys of a series result's
``params["series"]``), which the dock's "Load setup" and ``run --config`` follow; the
analysis never reads it either.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from ._files import atomic_path, file_path
from ._validation import check_iter_options, is_whole_number
from .components import ComponentSpec, FromComponent
from .data import NAN_POLICIES, NEGATIVE_POLICIES
from .device import check_device
from .encoding import decode_unbounded, encode_unbounded
from .init import INITS, resolve_random_state
from .modes import MODES
from .parallel import check_n_jobs
from .preprocess import Preprocessing
from .seeds import H_FALLBACKS, W_SEED_MODES
from .series_choice import SeriesChoice
from .solvers import LOSSES
from .solvers.simplex import ABUNDANCES

__all__ = ["FIT_DATA", "AnalysisConfig", "LabelImageFile"]

_FORMAT = "napari-unmix-config"
_FORMAT_VERSION = 1

#: Which data the factorisation fits.
FIT_DATA = ("raw", "processed")


def _check_anchor(value, name) -> float:
    import math
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) \
            or value < 0:
        raise ValueError(f"{name} must be a number >= 0 (0: free, inf: locked), got "
                         f"{value!r}.")
    return float(value)


def _check_count(value, name) -> int:
    """An integer >= 1; a float with an integer value (``3.0`` from JSON) is accepted."""
    if not is_whole_number(value) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}.")
    return int(value)


@dataclass(frozen=True)
class LabelImageFile:
    """The label image file a saved config's ``RoiLabel`` sources take their ids from.

    Parameters
    ----------
    path : str
        The file, relative to the folder of the config file (e.g.
        ``"setup.labels.tif"``, written beside ``setup.json``).
    sha256 : str
        Its checksum (:func:`~napari_unmix.core.analysis.labels_sha256` of the image),
        so that a changed or another file is refused, never used.
    """

    path: str
    sha256: str

    def __post_init__(self):
        p = self.path
        if not isinstance(p, str) or not p or PurePosixPath(p).is_absolute() \
                or PureWindowsPath(p).is_absolute() or ".." in PurePosixPath(p).parts:
            raise ValueError(f"label_image.path must name a file beside the config (a path "
                             f"relative to its folder), got {p!r}.")
        sha = self.sha256
        if not isinstance(sha, str) or len(sha) != 64 \
                or any(ch not in "0123456789abcdef" for ch in sha):
            raise ValueError(f"label_image.sha256 must be the 64 hexadecimal digits of the "
                             f"label image's SHA-256 checksum, got {sha!r}.")

    def to_dict(self) -> dict:
        return {"path": self.path, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, d) -> LabelImageFile:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict) or set(d) != {"path", "sha256"}:
            raise ValueError(f"label_image must be an object with the fields path and sha256, "
                             f"got {d!r}.")
        return cls(d["path"], d["sha256"])

    def resolve(self, config_path) -> Path:
        """The file, for the config saved at ``config_path``."""
        return Path(config_path).parent / self.path


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
    nan_policy : {"raise", "omit"}, default "raise"
        Pixels whose spectrum holds a NaN or infinite value (padding of a stitched
        or registered image, pixels a tool blanked): refused, or left out of the
        fit and of the seeds, with NaN maps (``UnmixResult.pixel_mask`` says which
        pixels were fitted; the count is in ``summary.preprocessing``).  In-memory
        stacks only.
    device : str, default "auto"
        torch device of torch backends.
    anchor : float, default 1.0
        Seeded NNMF: the trust in the seed spectra, the relative strength of the
        pull of every seeded spectrum towards its seed (see ``core.nmf``).  0 is
        the free fit, ``inf`` locks every spectrum; a component's own
        ``ComponentSpec.anchor`` overrides it, and a source's ``trust`` scales it
        (a Gaussian model counts 0.1: it sketches a band that the data should
        reshape).
        Components seeded by a fallback are free.  1.0 was chosen from
        ``benchmarks/seeded_nmf.py`` (see the user guide).
    abundance : {"free", "sum-to-one", "sum-le-one"}, default "free"
        NNMF and fixed-H NNLS: the abundance model, no sum constraint, every
        pixel's abundances summing to one (fully constrained least squares), or to
        at most one (see ``core.solvers.simplex``).
    loss : {"frobenius", "poisson"}, default "frobenius"
        NNMF and fixed-H NNLS: the loss the fit minimises, least squares or the
        Poisson likelihood of photon counts (the generalised Kullback-Leibler
        divergence; see ``core.nnls``, ``core.nmf`` and ``core.poisson``).
    standardize : bool, default True
        PCA: standardise channels.
    n_jobs : int or None, default None
        Every mode: the worker threads that share the pixel blocks on the CPU, with
        scikit-learn's meaning (``None`` or ``-1``: every core this process may use;
        a positive number; 0 and other negative values are refused).  Results do
        not depend on it (``core.parallel``).
    spectral_unit : str, optional
        Unit of the spectral axis, stored in the result.
    label_image : LabelImageFile, optional
        A saved config's label image file, beside it, whose ids its ``RoiLabel``
        sources name (see the module documentation); not used by the analysis, which
        takes the label image as ``labels=``.  Written to JSON only when set.
    series : SeriesChoice, optional
        A saved setup's z / t series choice, when it is not the joint fit (see the
        module documentation); not used by the analysis.  Written to JSON only when
        set.
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
    nan_policy: str = "raise"
    device: str = "auto"
    anchor: float = 1.0
    abundance: str = "free"
    loss: str = "frobenius"
    standardize: bool = True
    n_jobs: int | None = None
    spectral_unit: str | None = None
    label_image: LabelImageFile | None = None
    series: SeriesChoice | None = None

    def __post_init__(self):
        if not isinstance(self.mode, str) or self.mode not in MODES:
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
                  ("fit_data", FIT_DATA), ("negative", NEGATIVE_POLICIES),
                  ("nan_policy", NAN_POLICIES), ("init", INITS),
                  ("abundance", ABUNDANCES), ("loss", tuple(LOSSES)))
        for attr, allowed in checks:
            if not isinstance(getattr(self, attr), str) or getattr(self, attr) not in allowed:
                raise ValueError(f"{attr}={getattr(self, attr)!r} is not one of "
                                 f"{', '.join(allowed)}.")
        self.anchor = _check_anchor(self.anchor, "anchor")
        if self.n_components is not None:
            self.n_components = _check_count(self.n_components, "n_components")
        self.max_iter = _check_count(self.max_iter, "max_iter")
        check_iter_options(self.tol, self.max_iter)
        self.device = check_device(self.device)
        self.n_jobs = check_n_jobs(self.n_jobs)
        for attr in ("overwrite", "residual_score", "standardize"):
            value = getattr(self, attr)
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{attr} must be true or false, got {value!r}.")
            setattr(self, attr, bool(value))
        for attr in ("solver", "backend", "spectral_unit"):
            value = getattr(self, attr)
            if not isinstance(value, str) and (value is not None or attr != "spectral_unit"):
                raise ValueError(f"{attr} must be a text, got {value!r}.")
        if self.random_state is not None:
            self.random_state = resolve_random_state(self.random_state)
        if self.label_image is not None and not isinstance(self.label_image, LabelImageFile):
            raise TypeError("label_image must be a core.config.LabelImageFile or None.")
        if self.series is not None and not isinstance(self.series, SeriesChoice):
            raise TypeError("series must be a core.series_choice.SeriesChoice or None.")
        bg = self.preprocessing.background
        if isinstance(bg, FromComponent) and bg.name not in names:
            raise ValueError(f"The background subtraction uses component {bg.name!r}, which is "
                             f"not among the components ({', '.join(names) or 'none'}).")

    # -- convenience ---------------------------------------------------------------------
    @property
    def component_names(self) -> list[str]:
        return [c.name for c in self.components]

    def label_users(self) -> list[str]:
        """What is drawn from the ids of a label image (``RoiLabel`` sources, however
        deep): the names of those components, and ``"the preprocessing background"``
        when its region is one.  A run of a config with any needs its label image
        (``labels=``), and a saved result or setup of one keeps it beside the config."""
        from .sources import RoiLabel

        d = self.to_dict(arrays={}, prefix="config/")
        users = [str(c.get("name")) for c in d.get("components") or []
                 if _has_kind(c, RoiLabel.kind)]
        if _has_kind(d.get("preprocessing"), RoiLabel.kind):
            users.append("the preprocessing background")
        return users

    def anchor_strengths(self) -> list[float]:
        """Per component, the anchor strength a seeded NNMF uses (``inf``: locked).

        A locked component is ``inf``; one without a spectrum source (its spectrum
        comes from a fallback) 0; otherwise its own ``anchor``, or the config's
        ``anchor`` times its source's ``trust``.
        """
        out = []
        for c in self.components:
            if c.locked:
                out.append(float("inf"))
            elif c.h_source is None:
                out.append(0.0)
            elif c.anchor is not None:
                out.append(c.anchor)
            else:
                out.append(self.anchor * float(getattr(c.h_source, "trust", 1.0)))
        return out

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
            elif f.name == "anchor":
                v = encode_unbounded(v)  # "inf": JSON has no infinity
            elif f.name in ("label_image", "series"):
                if v is None:  # written only when set: other configs are as before
                    continue
                v = v.to_dict()
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
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"format_version must be a whole number from 1 (this "
                             f"napari-unmix writes {_FORMAT_VERSION}), got {version!r}.")
        if version > _FORMAT_VERSION:
            raise ValueError(f"This config was written by a newer napari-unmix (format "
                             f"{version}); upgrade napari-unmix to read it.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"Unknown config field(s) {sorted(unknown)}; known: {sorted(known)}.")
        comps, pre = d.get("components"), d.get("preprocessing")
        comps = [] if comps is None else comps
        if not isinstance(comps, list) or not all(isinstance(c, dict) for c in comps):
            raise ValueError(f"components must be a list of component objects "
                             f"({{\"name\": ..., \"h_source\": ...}}), got {comps!r}.")
        if pre is not None and not isinstance(pre, dict):
            raise ValueError(f"preprocessing must be an object of preprocessing settings, got "
                             f"{pre!r}.")
        if "anchor" in d:
            d["anchor"] = decode_unbounded(d["anchor"])
        if d.get("label_image") is not None:
            d["label_image"] = LabelImageFile.from_dict(d["label_image"])
        if d.get("series") is not None:
            d["series"] = SeriesChoice.from_dict(d["series"])
        d["components"] = [ComponentSpec.from_dict(c, arrays=arrays) for c in comps]
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
        path = file_path(path, example="config.json")
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_json(indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path) -> AnalysisConfig:
        """Read a config written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            When ``path`` does not exist.
        ValueError
            For a file that cannot be read, is not JSON, or is not a valid config: one
            message naming the file and what is wrong.
        """
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"config file {path} could not be read: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"config file {path} is not valid JSON ({exc}); fix it, or write "
                             "a new one with AnalysisConfig.save.") from None
        if not isinstance(doc, dict):
            raise ValueError(f"config file {path} holds a JSON {type(doc).__name__}, not an "
                             "object of config fields (see AnalysisConfig.to_dict).")
        try:
            return cls.from_dict(doc)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"config file {path}: {exc}") from None

    @classmethod
    def from_result(cls, result) -> AnalysisConfig:
        """The config a result of :func:`run_analysis` was made with.

        Raises
        ------
        ValueError
            For a result of a fitting function called directly (``nmf``, ``pca``,
            ``nnls``): it holds its ``params``, not a config; the message says how to
            get a result that holds one.
        """
        if "config" not in result.params:
            mode = result.params.get("mode", result.mode)
            raise ValueError(
                f"This {mode} result holds no analysis config: it was made by a fitting "
                "function called directly, not by run_analysis, so only its params "
                "describe the fit (result.params). To get a result that can be rerun, run "
                f"run_analysis(stack, AnalysisConfig(mode={mode!r}, "
                f"n_components={result.n_components}, ...)).")
        return cls.from_dict(result.params["config"], arrays=result.arrays)


def _has_kind(obj, kind: str) -> bool:
    """Whether the plain-JSON ``obj`` holds a source of ``kind`` (at any depth)."""
    if isinstance(obj, dict):
        return obj.get("kind") == kind or any(_has_kind(v, kind) for v in obj.values())
    if isinstance(obj, list):
        return any(_has_kind(v, kind) for v in obj)
    return False
