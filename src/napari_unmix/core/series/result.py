"""The result of a z / t series run: maps and spectra of every plane, saved and loaded.

:class:`SeriesResult` is what :func:`napari_unmix.core.series.unmix_series` returns:
plain data (arrays, typed summaries, params), with exact save / load and the view
of the whole series as one :class:`~napari_unmix.core.result.UnmixResult`
(:meth:`SeriesResult.as_result`).
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from .._files import atomic_path, file_path
from ..config import AnalysisConfig
from ..modes import MODES
from ..result import UnmixResult, load_guarded
from ..series_choice import SERIES_STRATEGIES
from ..summaries import PlaneSummary, SeriesSummary, jsonable

_FORMAT = "napari-unmix-series-result"
_FORMAT_VERSION = 1

__all__ = ["SERIES_STRATEGIES", "SeriesResult", "plane_index"]


def plane_index(value, n_planes, name) -> int:
    """``value`` as a plane index in ``0 .. n_planes - 1`` (negative counts from the end)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a plane index (int), got {value!r}.")
    if not -n_planes <= value < n_planes:
        raise ValueError(f"{name}={value} is out of range: the series has {n_planes} plane(s) "
                         f"(indices 0 to {n_planes - 1}).")
    return int(value) % n_planes


def _stored(a) -> bool:
    """Whether ``a`` is an array kept where it is (a zarr array, an h5py dataset, a dask
    array) rather than a numpy array or something to turn into one."""
    return (not isinstance(a, np.ndarray) and hasattr(a, "shape") and hasattr(a, "dtype")
            and hasattr(a, "__getitem__") and hasattr(a, "ndim"))


# -- result ------------------------------------------------------------------------------
@dataclass(eq=False)
class SeriesResult:
    """Maps and spectra of a whole z / t series.

    Attributes
    ----------
    maps : ndarray, shape (k, n_planes, *plane_shape)
        Abundance maps (scores for PCA); the series axis comes right after the
        component axis, whatever its position in the stack.  An array on disk (a
        zarr array, an h5py dataset) when the run wrote them there (``unmix_series(
        ..., maps_out=...)``): it is kept as it is and read on demand.  Fixed-H NNLS keeps its
        fitted scale; pixels that an exact NNLS solver could not solve are NaN.
    H : ndarray, shape (k, n_channels) or (n_planes, k, n_channels)
        The shared basis (``"shared-basis"``) or every plane's spectra, in the
        matched order (``"per-slice"``).
    strategy : str
        ``"shared-basis"`` or ``"per-slice"``.
    mode : str
        Mode of the planes' fits: ``"nnls"`` for a shared basis, the config's mode
        for per-slice runs.
    planes : list of PlaneSummary
        One summary per plane: ``reconstruction_err``, ``relative_error``, ``n_iter``,
        ``hit_max_iter``, ``n_capped_pixels``, backend, timing, the warnings the plane
        raised, the plane's own fit summary (``fit``) and, per-slice, the matching
        (``matched_to``, ``order``, ``signs``, ``angles`` in radians, one per
        component).
    summary : SeriesSummary
        Totals over the series (error, iterations, planes that hit the cap), the
        basis fit (``summary.basis``) and the matching (``summary.match``).
    params : dict
        Everything needed to rerun: the strategy, axes, reference, pool size,
        matching, NNLS solver and the resolved config (``params["config"]``, its
        arrays in ``arrays`` under ``"config/..."``).  See :meth:`rerun`.
    arrays : dict of str -> ndarray
        Arrays of the config and, when given, the basis (``"H_given"``).
    component_names : list of str
    spectral_values : ndarray or None
        Spectral position of every channel (wavenumbers, wavelengths).
    spectral_unit : str or None
    """

    maps: np.ndarray
    H: np.ndarray
    strategy: str
    mode: str
    planes: list = field(default_factory=list)
    summary: SeriesSummary | dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    component_names: list = field(default_factory=list)
    spectral_values: np.ndarray | None = None
    spectral_unit: str | None = None
    #: the function :meth:`rerun` calls (``core.series.run.unmix_series``, set there)
    runner: ClassVar[Callable | None] = None

    def __post_init__(self):
        self.maps = self.maps if _stored(self.maps) else np.asarray(self.maps)
        self.H = np.asarray(self.H)
        if self.strategy not in SERIES_STRATEGIES:
            raise ValueError(f"strategy={self.strategy!r} is not one of "
                             f"{', '.join(SERIES_STRATEGIES)}.")
        if self.maps.ndim < 3:
            raise ValueError(f"maps must be (k, n_planes, *plane_shape), got shape "
                             f"{self.maps.shape}.")
        k, z = self.maps.shape[:2]
        want = 2 if self.strategy == "shared-basis" else 3
        if self.H.ndim != want or self.H.shape[-2] != k or (want == 3 and self.H.shape[0] != z):
            what = "(k, n_channels)" if want == 2 else "(n_planes, k, n_channels)"
            raise ValueError(f"H {self.H.shape} does not fit maps {self.maps.shape}: a "
                             f"{self.strategy} result needs H of shape {what}.")
        self.planes = [PlaneSummary.from_dict(p).normalised() for p in self.planes]
        self.summary = SeriesSummary.from_dict(self.summary).normalised()
        self.params = json.loads(json.dumps(jsonable(dict(self.params))))
        self.arrays = {str(a): np.asarray(v) for a, v in (self.arrays or {}).items()}
        if not self.component_names:
            spec = MODES.get(self.mode)
            prefix = "PC" if spec is not None and not spec.non_negative else "C"
            self.component_names = [f"{prefix}{i + 1}" for i in range(k)]
        self.component_names = [str(n) for n in self.component_names]
        if len(self.component_names) != k:
            raise ValueError(f"{len(self.component_names)} component names for {k} components.")
        if self.spectral_values is not None:
            self.spectral_values = np.asarray(self.spectral_values)
            if self.spectral_values.shape != (self.n_channels,):
                raise ValueError(f"spectral_values has shape {self.spectral_values.shape}, "
                                 f"expected ({self.n_channels},).")

    # -- convenience -------------------------------------------------------------------
    @property
    def n_components(self) -> int:
        return int(self.maps.shape[0])

    @property
    def n_planes(self) -> int:
        return int(self.maps.shape[1])

    @property
    def n_channels(self) -> int:
        return int(self.H.shape[-1])

    @property
    def plane_shape(self) -> tuple:
        return tuple(self.maps.shape[2:])

    @property
    def shared_basis(self) -> bool:
        return self.strategy == "shared-basis"

    def plane_spectra(self, plane: int) -> np.ndarray:
        """Spectra ``(k, n_channels)`` that plane ``plane`` was unmixed with."""
        z = plane_index(plane, self.n_planes, "plane")
        return self.H if self.shared_basis else self.H[z]

    def plane_result(self, plane: int) -> UnmixResult:
        """Plane ``plane`` as an :class:`UnmixResult` (``W`` a copy of its maps)."""
        z = plane_index(plane, self.n_planes, "plane")
        info = self.planes[z] if z < len(self.planes) else PlaneSummary(plane=z)
        W = np.asarray(self.maps[:, z]).reshape(self.n_components, -1).T.copy()
        params = {"series": {k: v for k, v in self.params.items() if k != "config"},
                  "plane": z, "mode": self.mode}
        return UnmixResult(
            W=W, H=np.array(self.plane_spectra(z)), mode=self.mode,
            backend=info.backend or "", device=info.device or "cpu",
            n_iter=int(info.n_iter or 0),
            reconstruction_err=(np.nan if info.reconstruction_err is None
                                else info.reconstruction_err),
            summary=info.fit.replace(extra={**info.fit.extra, "plane": z})
            if info.fit is not None else {"plane": z},
            params=params, component_names=self.component_names,
            spectral_values=self.spectral_values, spectral_unit=self.spectral_unit)

    def as_result(self, *, reference: int | None = None) -> UnmixResult:
        """The whole series as one :class:`~napari_unmix.core.result.UnmixResult`.

        ``W`` holds the maps of every plane (C order of ``(n_planes, *plane_shape)``),
        ``H`` the shared basis or, per-slice, the mean of the planes' matched spectra
        (every plane's spectra in ``arrays["plane_H"]``).  The summary is the
        series summary with the planes (``summary.planes``) and the seeds of the basis
        fit, or of plane ``reference`` (default: the matching's reference plane).
        The params keep the series' params (``params["series"]``) and config.
        """
        k = self.n_components
        s = self.summary
        if reference is None and s.match is not None:
            reference = s.match.reference
        seeds = (s.basis.fit.seeds if self.shared_basis and s.basis is not None
                 and s.basis.fit is not None else None)
        if not self.shared_basis and reference is not None and reference < len(self.planes):
            fit = self.planes[reference].fit
            seeds = fit.seeds if fit is not None else None
        summary = s.replace(planes=list(self.planes), seeds=seeds)
        arrays = dict(self.arrays)
        if not self.shared_basis:
            arrays["plane_H"] = self.H
        series = {key: v for key, v in self.params.items() if key != "config"}
        first = self.planes[0] if self.planes else PlaneSummary()
        maps = self.maps
        if _stored(maps):   # maps on disk: a lazy W, read block by block
            import dask.array as da

            maps = da.from_array(maps, chunks=getattr(maps, "chunks", "auto"))
        return UnmixResult(
            W=maps.reshape(k, -1).T, H=self.H if self.shared_basis else self.H.mean(axis=0),
            mode=self.mode, backend=first.backend or "", device=first.device or "cpu",
            n_iter=int(s.max_plane_iter or 0),
            reconstruction_err=np.nan if s.reconstruction_err is None else s.reconstruction_err,
            summary=summary, params={"config": self.params.get("config"), "series": series},
            arrays=arrays, component_names=self.component_names,
            spectral_values=self.spectral_values, spectral_unit=self.spectral_unit)

    @classmethod
    def from_result(cls, result: UnmixResult, spatial_shape) -> SeriesResult | None:
        """The series that :meth:`as_result` made ``result`` from (e.g. read back from a
        result folder or bundle: ``spatial_shape`` is its ``(n_planes, *plane_shape)``);
        None when ``result`` is no series' (no series params and summary, or maps that
        do not cover ``spatial_shape``)."""
        s = result.summary
        series = result.params.get("series") if isinstance(result.params, dict) else None
        shape = tuple(int(v) for v in spatial_shape)
        if (not isinstance(s, SeriesSummary) or not isinstance(series, dict)
                or series.get("strategy") not in SERIES_STRATEGIES or len(shape) < 2
                or np.shape(result.W)[0] != int(np.prod(shape))):
            return None
        arrays = dict(result.arrays or {})
        shared = series["strategy"] == "shared-basis"
        H = result.H if shared else arrays.pop("plane_H", None)
        if H is None:
            return None
        k = result.n_components
        return cls(maps=np.asarray(result.W).T.reshape(k, *shape), H=H,
                   strategy=series["strategy"], mode=result.mode, planes=list(s.planes or []),
                   summary=s.replace(planes=None), params={**series,
                                                           "config": result.params.get("config")},
                   arrays=arrays, component_names=list(result.component_names),
                   spectral_values=result.spectral_values, spectral_unit=result.spectral_unit)

    def config(self) -> AnalysisConfig:
        """The resolved config this result was made with."""
        return AnalysisConfig.from_dict(self.params["config"], arrays=self.arrays)

    def rerun(self, stack, *, labels=None, callback=None) -> SeriesResult:
        """Run the same analysis again on ``stack`` (identical numbers on the same data).

        ``labels`` must be passed again when the config uses ``RoiLabel`` sources
        (only its checksum is stored).
        """
        if SeriesResult.runner is None:  # pragma: no cover - set when core.series imports
            raise RuntimeError("SeriesResult.rerun needs napari_unmix.core.series imported.")
        p = self.params
        return SeriesResult.runner(
            stack, self.config(), H=self.arrays.get("H_given"), strategy=p["strategy"],
            series_axis=p["series_axis"], spectral_axis=p["spectral_axis"],
            reference=p["reference"] if p["reference"] != "given" else None,
            pool_size=p.get("pool_size"), match=p.get("match", "auto"),
            nnls_solver=p.get("nnls_solver"), nnls_backend=p.get("nnls_backend"),
            spectral_values=self.spectral_values, labels=labels, callback=callback)

    def __repr__(self) -> str:
        return (f"SeriesResult(strategy={self.strategy!r}, mode={self.mode!r}, "
                f"maps={self.maps.shape}, H={self.H.shape}, dtype={self.maps.dtype})")

    # -- persistence -------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the result to ``path`` (``.npz``) atomically; read it with :meth:`load`."""
        path = file_path(path, example="result.npz")
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else \
                path.with_suffix(".npz")
        meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION,
                "strategy": self.strategy, "mode": self.mode,
                "planes": [p.to_dict() for p in self.planes],
                "summary": self.summary.to_dict(), "params": self.params,
                "component_names": self.component_names, "spectral_unit": self.spectral_unit,
                "arrays": sorted(self.arrays)}
        payload = {"maps": self.maps, "H": self.H, "meta": np.array(json.dumps(meta))}
        if self.spectral_values is not None:
            payload["spectral_values"] = self.spectral_values
        for name, arr in self.arrays.items():
            payload[f"arrays/{name}"] = arr
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **payload)
        return path

    @classmethod
    def load(cls, path) -> SeriesResult:
        """Read a result written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            When ``path`` does not exist.
        ValueError
            For a file that is not a series result, or a truncated or edited one: one
            message naming the file.
        """
        path = Path(path)
        return load_guarded(path, "napari-unmix series result", lambda: cls._load(path))

    @classmethod
    def _load(cls, path: Path) -> SeriesResult:
        # open the file ourselves: np.load leaks its handle on a damaged zip
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"][()])) if "meta" in data.files else {}
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError(f"{path} is not a napari-unmix series result file.")
            if meta.get("format_version", 0) > _FORMAT_VERSION:
                raise ValueError(f"{path} was written by a newer napari-unmix (format "
                                 f"{meta['format_version']}); upgrade napari-unmix to read it.")
            return cls(
                maps=data["maps"], H=data["H"], strategy=meta["strategy"], mode=meta["mode"],
                planes=meta["planes"], summary=meta["summary"], params=meta["params"],
                arrays={n: data[f"arrays/{n}"] for n in meta.get("arrays", [])},
                component_names=meta["component_names"],
                spectral_values=(data["spectral_values"] if "spectral_values" in data.files
                                 else None),
                spectral_unit=meta.get("spectral_unit"))
