"""The result of a z / t series run: maps and spectra of every plane, saved and loaded.

:class:`SeriesResult` is what :func:`napari_unmix.core.series.unmix_series` returns.
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._files import atomic_path
from .analysis import AnalysisConfig
from .result import UnmixResult, jsonable

#: Strategies of :func:`~napari_unmix.core.series.unmix_series`.
SERIES_STRATEGIES = ("shared-basis", "per-slice")

_FORMAT = "napari-unmix-series-result"
_FORMAT_VERSION = 1

__all__ = ["SERIES_STRATEGIES", "SeriesResult"]


def _plane_index(value, n_planes, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a plane index (int), got {value!r}.")
    if not -n_planes <= value < n_planes:
        raise ValueError(f"{name}={value} is out of range: the series has {n_planes} plane(s) "
                         f"(indices 0 to {n_planes - 1}).")
    return int(value) % n_planes


# -- result ------------------------------------------------------------------------------
@dataclass(eq=False)
class SeriesResult:
    """Maps and spectra of a whole z / t series.

    Attributes
    ----------
    maps : ndarray, shape (k, n_planes, *plane_shape)
        Abundance maps (scores for PCA); the series axis comes right after the
        component axis, whatever its position in the stack.  Fixed-H NNLS keeps its
        fitted scale; pixels that an exact NNLS solver could not solve are NaN.
    H : ndarray, shape (k, n_channels) or (n_planes, k, n_channels)
        The shared basis (``"shared-basis"``) or every plane's spectra, in the
        matched order (``"per-slice"``).
    strategy : str
        ``"shared-basis"`` or ``"per-slice"``.
    mode : str
        Mode of the planes' fits: ``"nnls"`` for a shared basis, the config's mode
        for per-slice runs.
    planes : list of dict
        One summary per plane: ``reconstruction_err``, ``relative_error``, ``n_iter``,
        ``hit_max_iter``, ``n_capped_pixels``, backend, timing, the warnings the plane
        raised and, per-slice, the matching (``matched_to``, ``order``, ``signs``,
        ``angles`` in radians, one per component).
    summary : dict
        Totals over the series (error, iterations, planes that hit the cap), the
        basis fit (``summary["basis"]``) and the matching (``summary["match"]``).
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
    summary: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    component_names: list = field(default_factory=list)
    spectral_values: np.ndarray | None = None
    spectral_unit: str | None = None

    def __post_init__(self):
        self.maps = np.asarray(self.maps)
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
        self.planes = json.loads(json.dumps(jsonable(list(self.planes))))
        self.summary = json.loads(json.dumps(jsonable(dict(self.summary))))
        self.params = json.loads(json.dumps(jsonable(dict(self.params))))
        self.arrays = {str(a): np.asarray(v) for a, v in (self.arrays or {}).items()}
        if not self.component_names:
            prefix = "PC" if self.mode == "pca" else "C"
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
        z = _plane_index(plane, self.n_planes, "plane")
        return self.H if self.shared_basis else self.H[z]

    def plane_result(self, plane: int) -> UnmixResult:
        """Plane ``plane`` as an :class:`UnmixResult` (``W`` a copy of its maps)."""
        z = _plane_index(plane, self.n_planes, "plane")
        info = self.planes[z] if z < len(self.planes) else {}
        W = self.maps[:, z].reshape(self.n_components, -1).T.copy()
        params = {"series": {k: v for k, v in self.params.items() if k != "config"},
                  "plane": z, "mode": self.mode}
        return UnmixResult(
            W=W, H=np.array(self.plane_spectra(z)), mode=self.mode,
            backend=str(info.get("backend", "")), device=str(info.get("device", "cpu")),
            n_iter=int(info.get("n_iter", 0)),
            reconstruction_err=float(info.get("reconstruction_err", np.nan)),
            summary=info, params=params, component_names=self.component_names,
            spectral_axis=self.spectral_values, spectral_unit=self.spectral_unit)

    def config(self) -> AnalysisConfig:
        """The resolved config this result was made with."""
        return AnalysisConfig.from_dict(self.params["config"], arrays=self.arrays)

    def rerun(self, stack, *, labels=None, callback=None) -> SeriesResult:
        """Run the same analysis again on ``stack`` (identical numbers on the same data).

        ``labels`` must be passed again when the config uses ``RoiLabel`` sources
        (only its checksum is stored).
        """
        from .series import unmix_series

        p = self.params
        return unmix_series(
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
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else \
                path.with_suffix(".npz")
        meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION,
                "strategy": self.strategy, "mode": self.mode, "planes": self.planes,
                "summary": self.summary, "params": self.params,
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
        """Read a result written by :meth:`save`."""
        path = Path(path)
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"][()])) if "meta" in data.files else {}
            if meta.get("format") != _FORMAT:
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
