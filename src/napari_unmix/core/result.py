"""The result object every mode returns, and its exact save / load."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._files import atomic_path, file_path
from .chunked.scheduler import is_dask_array
from .modes import MODES
from .summaries import Summary, jsonable, summary_from_dict

__all__ = ["PIXEL_MASK_KEY", "UnmixResult", "jsonable", "load_guarded"]

#: The key in ``UnmixResult.arrays`` of the fitted pixels (bool, the spatial shape)
#: when an analysis left some out (``nan_policy="omit"``).
PIXEL_MASK_KEY = "pixel_mask"

_FORMAT = "napari-unmix-result"
_FORMAT_VERSION = 1


def load_guarded(path: Path, what: str, load):
    """``load()``, with every failure to read ``path`` turned into one ValueError naming it.

    Parameters
    ----------
    path : Path
        The file ``load`` reads.
    what : str
        What the file should be, for the message (``"napari-unmix result"``).
    load : callable
        Reads the file; may raise anything a damaged file makes numpy, zipfile or
        json raise (BadZipFile, KeyError, JSONDecodeError, EOFError ...).

    Returns
    -------
    object
        What ``load`` returned.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        Naming ``path``: its own message when it already does, else the reason.
    """
    try:
        return load()
    except FileNotFoundError:
        raise
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{path} could not be read as a {what}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file raises many types
        raise ValueError(f"{path} could not be read as a {what}: "
                         f"{type(exc).__name__}: {exc}") from None


def _normalised(d: dict | None) -> dict:
    # a JSON round trip now, so that save() -> load() gives back equal dicts
    return json.loads(json.dumps(jsonable(d or {})))


@dataclass(eq=False)
class UnmixResult:
    """Abundance maps ``W`` and spectra ``H`` of one analysis, with its fit summary.

    Attributes
    ----------
    W : ndarray, shape (n_pixels, k)
        Per-pixel abundances (NNMF, NNLS) or scores (PCA).
    H : ndarray, shape (k, n_channels)
        Component spectra (NNMF, NNLS) or loadings (PCA).
    mode : str
        ``"pca"``, ``"nmf"``, ``"seeded-nmf"`` or ``"nnls"``.
    backend : str
        Implementation that ran, e.g. ``"sklearn"``, ``"torch"``, ``"scipy"``.
    device : str
        ``"cpu"`` or a torch device such as ``"cuda"``.
    n_iter : int
        Iterations run (for chunked NNLS: the largest count over chunks).
    reconstruction_err : float
        Frobenius norm ``||X - W H||_F`` on the data the mode fitted (for PCA, in the
        units of the original data).
    summary : Summary
        What a user needs to judge the fit, typed per mode
        (:class:`~napari_unmix.core.summaries.NMFSummary`, ``NNLSSummary``,
        ``PCASummary``; a dict given here is converted): iteration counts, whether
        the cap was hit, timings, error history ...
    params : dict
        Every setting needed to rerun the analysis, ``random_state`` included.
    explained_variance_ratio : ndarray or None
        PCA only: variance fraction of every principal component (scree).
    arrays : dict of str -> ndarray
        Further arrays the result needs to be complete (PCA channel mean/scale, the
        seeds a seeded run started from, ...).
    component_names : list of str
        One name per component.
    spectral_values : ndarray or None
        Spectral position of every channel (e.g. wavenumbers).  ``spectral_axis`` is
        a deprecated alias (it will be removed in the next release).
    spectral_unit : str or None
        Unit of ``spectral_values``, e.g. ``"cm^-1"`` or ``"nm"``.
    """

    W: np.ndarray
    H: np.ndarray
    mode: str
    backend: str
    device: str
    n_iter: int
    reconstruction_err: float
    summary: Summary | dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    explained_variance_ratio: np.ndarray | None = None
    arrays: dict = field(default_factory=dict)
    component_names: list = field(default_factory=list)
    spectral_values: np.ndarray | None = None
    spectral_unit: str | None = None

    def __post_init__(self):
        self.W = self.W if is_dask_array(self.W) else np.asarray(self.W)  # lazy stays lazy
        self.H = np.asarray(self.H)
        if self.W.ndim != 2 or self.H.ndim != 2 or self.W.shape[1] != self.H.shape[0]:
            raise ValueError(
                f"W {self.W.shape} and H {self.H.shape} are not (n_pixels, k) and (k, n_channels)."
            )
        self.n_iter = int(self.n_iter)
        self.reconstruction_err = float(self.reconstruction_err)
        self.summary = summary_from_dict(
            self.summary if isinstance(self.summary, Summary) else _normalised(self.summary),
            kind=getattr(self.summary, "kind", None), mode=self.mode).normalised()
        self.params = _normalised(self.params)
        self.arrays = {str(k): v if is_dask_array(v) else np.asarray(v)
                       for k, v in (self.arrays or {}).items()}
        if not self.component_names:
            spec = MODES.get(self.mode)
            prefix = "PC" if spec is not None and not spec.non_negative else "C"
            self.component_names = [f"{prefix}{i + 1}" for i in range(self.n_components)]
        self.component_names = [str(n) for n in self.component_names]
        if len(self.component_names) != self.n_components:
            raise ValueError(
                f"{len(self.component_names)} component names for {self.n_components} components."
            )
        if self.spectral_values is not None:
            self.spectral_values = np.asarray(self.spectral_values)
            if self.spectral_values.shape != (self.n_channels,):
                raise ValueError(
                    f"spectral_values has shape {self.spectral_values.shape}, expected "
                    f"({self.n_channels},)."
                )

    # -- convenience -------------------------------------------------------------
    @property
    def n_components(self) -> int:
        return int(self.H.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.H.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return self.W.dtype

    @property
    def spectral_axis(self) -> np.ndarray | None:
        """Deprecated alias of :attr:`spectral_values` (removed in the next release)."""
        warnings.warn("UnmixResult.spectral_axis is deprecated; use spectral_values.",
                      DeprecationWarning, stacklevel=2)
        return self.spectral_values

    @property
    def config(self):
        """The :class:`~napari_unmix.core.config.AnalysisConfig` this result was made with
        (``None`` for a result of a mode function called directly)."""
        if "config" not in self.params:
            return None
        from .config import AnalysisConfig

        return AnalysisConfig.from_dict(self.params["config"], arrays=self.arrays)

    def __repr__(self) -> str:
        return (
            f"UnmixResult(mode={self.mode!r}, backend={self.backend!r}, device={self.device!r}, "
            f"W={self.W.shape}, H={self.H.shape}, dtype={self.dtype}, n_iter={self.n_iter}, "
            f"reconstruction_err={self.reconstruction_err:.6g})"
        )

    @property
    def is_lazy(self) -> bool:
        """Whether ``W`` (or an array of ``arrays``) is a dask array: the result of a
        dask input (``core.chunked``); :meth:`compute` brings it into memory."""
        return is_dask_array(self.W) or any(is_dask_array(v) for v in self.arrays.values())

    def compute(self) -> UnmixResult:
        """This result with its dask arrays computed (numpy); itself when none is lazy."""
        if not self.is_lazy:
            return self
        import dataclasses

        import dask

        names = [k for k, v in self.arrays.items() if is_dask_array(v)]
        W, *values = dask.compute(self.W, *(self.arrays[k] for k in names))
        arrays = dict(self.arrays)
        arrays.update(zip(names, values, strict=True))
        return dataclasses.replace(self, W=np.asarray(W), arrays=arrays)

    @property
    def pixel_mask(self) -> np.ndarray | None:
        """The pixels ``W`` holds (bool, the spatial shape) when the analysis left some
        out (``AnalysisConfig.nan_policy="omit"``); None when ``W`` has every pixel."""
        mask = self.arrays.get(PIXEL_MASK_KEY)
        return None if mask is None else np.asarray(mask, dtype=bool)

    def on_every_pixel(self, mask=None) -> UnmixResult:
        """This result with a row of ``W`` (and of every per-pixel array) for every pixel
        of the image, NaN for the pixels it left out, and no :attr:`pixel_mask`; itself
        when it left none out.  For views that index ``W`` by pixel (napari's layers,
        the pixel inspector, the residual map).

        Parameters
        ----------
        mask : array_like of bool, optional
            The fitted pixels, when they are not :attr:`pixel_mask` (a result bundle
            written with a mask of its own).
        """
        mask = self.pixel_mask if mask is None else np.asarray(mask, dtype=bool)
        if mask is None:
            return self
        import dataclasses

        kept = mask.reshape(-1)
        n = int(kept.sum())

        def full(a):
            out = np.full((kept.size, *a.shape[1:]),
                          np.nan if a.dtype.kind in "fc" else 0, dtype=a.dtype)
            out[kept] = a
            return out

        arrays = {key: full(np.asarray(v)) if getattr(v, "ndim", 0) >= 1 and v.shape[0] == n
                  else v for key, v in self.arrays.items() if key != PIXEL_MASK_KEY}
        return dataclasses.replace(self, W=full(np.asarray(self.W)), arrays=arrays)

    def maps(self, spatial_shape, *, mask=None) -> np.ndarray:
        """``W`` as images of shape ``(k, *spatial_shape)`` (see ``matrix_to_maps``),
        NaN outside ``mask`` (default: :attr:`pixel_mask`); a lazy ``W`` gives lazy
        maps (a dask array, no mask)."""
        if mask is None:
            mask = self.pixel_mask
        if is_dask_array(self.W) and mask is None:
            from .chunked.store import lazy_maps

            return lazy_maps(self.W, spatial_shape)
        from .data import matrix_to_maps

        return matrix_to_maps(np.asarray(self.W), spatial_shape, mask=mask)

    # -- persistence -------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the result to ``path`` (a ``.npz`` file) atomically.

        Arrays are stored bit-exactly; ``summary`` and ``params`` as JSON.  Load it
        back with :meth:`UnmixResult.load`.  A lazy result (dask ``W``) is computed
        first: write big maps to a store with ``core.chunked.store_maps`` instead.
        """
        if self.is_lazy:
            return self.compute().save(path)
        path = file_path(path, example="result.npz")
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz")  # "run.v2" -> "run.v2.npz"
        meta = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "mode": self.mode,
            "backend": self.backend,
            "device": self.device,
            "n_iter": self.n_iter,
            "reconstruction_err": self.reconstruction_err,
            "summary": self.summary.to_dict(),
            "summary_kind": type(self.summary).kind,
            "params": self.params,
            "component_names": self.component_names,
            "spectral_unit": self.spectral_unit,
            "arrays": sorted(self.arrays),
        }
        payload = {"W": self.W, "H": self.H, "meta": np.array(json.dumps(meta))}
        if self.explained_variance_ratio is not None:
            payload["explained_variance_ratio"] = np.asarray(self.explained_variance_ratio)
        if self.spectral_values is not None:
            payload["spectral_axis"] = self.spectral_values
        for name, arr in self.arrays.items():
            payload[f"arrays/{name}"] = arr
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **payload)
        return path

    @classmethod
    def load(cls, path) -> UnmixResult:
        """Read a result written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            When ``path`` does not exist.
        ValueError
            For a file that is not a result, or a truncated or edited one (a damaged
            zip, metadata that is not JSON or lacks a field, arrays that do not fit):
            one message naming the file.
        """
        path = Path(path)
        return load_guarded(path, "napari-unmix result", lambda: cls._load(path))

    @classmethod
    def _load(cls, path: Path) -> UnmixResult:
        # open the file ourselves: np.load leaks its handle on a damaged zip
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            if "meta" not in data.files:
                raise ValueError(f"{path} is not a napari-unmix result file (no metadata).")
            meta = json.loads(str(data["meta"][()]))
            if not isinstance(meta, dict):
                raise ValueError(f"{path} is not a napari-unmix result file (its metadata is "
                                 "not a JSON object).")
            if meta.get("format") != _FORMAT:
                raise ValueError(f"{path} is not a napari-unmix result file.")
            if meta.get("format_version", 0) > _FORMAT_VERSION:
                raise ValueError(
                    f"{path} was written by a newer napari-unmix (format "
                    f"{meta['format_version']}); upgrade napari-unmix to read it."
                )
            arrays = {name: data[f"arrays/{name}"] for name in meta.get("arrays", [])}
            return cls(
                W=data["W"],
                H=data["H"],
                mode=meta["mode"],
                backend=meta["backend"],
                device=meta["device"],
                n_iter=meta["n_iter"],
                reconstruction_err=meta["reconstruction_err"],
                summary=summary_from_dict(meta["summary"], kind=meta.get("summary_kind"),
                                          mode=meta["mode"]),
                params=meta["params"],
                explained_variance_ratio=(
                    data["explained_variance_ratio"]
                    if "explained_variance_ratio" in data.files else None
                ),
                arrays=arrays,
                component_names=meta["component_names"],
                spectral_values=(data["spectral_axis"] if "spectral_axis" in data.files
                                 else None),
                spectral_unit=meta.get("spectral_unit"),
            )

