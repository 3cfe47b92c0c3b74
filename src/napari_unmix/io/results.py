"""Analysis results on disk: the result bundle, ``result.json`` and the result folder.

An :class:`~napari_unmix.core.UnmixResult` holds ``W`` as ``(n_pixels, k)``; to show
the maps again one also needs the spatial shape of the analysed stack (and the
mask, when only some pixels were analysed).  A *result bundle* stores both:

``.npz`` bundle (:func:`write_result_bundle`)
    The file :meth:`UnmixResult.save` writes (so ``UnmixResult.load`` reads it as
    usual), plus ``layout/spatial_shape`` (int64) and, when given, ``layout/mask``
    (bool, the spatial shape), ``layout/pixel_scale`` and ``layout/pixel_units`` (the
    pixel sizes) and ``layout/stack`` (the JSON text of a
    :class:`~napari_unmix.io.stack_layout.StackLayout`: where the maps lie in the
    analysed stack).
Result folder (:func:`~napari_unmix.io.result_folder.write_analysis_outputs`, the CLI)
    The files of :data:`OUTPUT_NAMES`: maps TIFF, spectra CSV and composite PNG
    (written by :mod:`~napari_unmix.io.tables`), ``result.npz``, ``config.json``
    and ``result.json`` (:func:`write_result_json`), written as a whole set by
    :mod:`~napari_unmix.io.result_folder`.  ``result.json`` whose
    ``"format"`` is :data:`RESULT_JSON_FORMAT` is the marker; it gives
    ``spatial_shape`` and names the ``.npz`` (``files.bundle``).

:func:`read_result_bundle` reads either; :func:`is_result_bundle` tells them
from stacks without reading arrays.  A plain ``UnmixResult.save`` file without a
layout is read too: the spatial shape then comes from a ``result.json`` beside
it that names it, else it is guessed (a square image when the pixel count is a
square number, else one row), and the guess is noted.  Every file is written
atomically (:func:`napari_unmix.core._files.atomic_path`), a result folder as a
whole.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..core._files import atomic_path
from ..core.pixel_layout import check_pixel_mask
from ..core.result import UnmixResult, jsonable
from .stack_layout import StackLayout, series_layout

__all__ = ["OUTPUT_NAMES", "RESULT_JSON_FORMAT", "ResultBundle", "is_result_bundle",
           "read_result_bundle", "result_info", "write_result_bundle", "write_result_json"]

#: ``"format"`` of the ``result.json`` that marks a result folder.
RESULT_JSON_FORMAT = "napari-unmix-result-summary"

#: File names of a result folder (besides ``config.json`` and ``composite_z*.png``).
OUTPUT_NAMES = {"maps": "maps.tif", "spectra": "spectra.csv", "composite": "composite.png",
                "json": "result.json", "bundle": "result.npz"}

_SHAPE_KEY = "layout/spatial_shape"
_MASK_KEY = "layout/mask"
_SCALE_KEY = "layout/pixel_scale"
_UNITS_KEY = "layout/pixel_units"
_STACK_KEY = "layout/stack"


# -- the .npz bundle ------------------------------------------------------------

@dataclass(eq=False)
class ResultBundle:
    """A result read back from a bundle, with the layout of its maps.

    Attributes
    ----------
    result : UnmixResult
    spatial_shape : tuple of int
        Spatial shape of the analysed stack: ``result.maps(spatial_shape, mask=mask)``
        gives the maps.
    mask : ndarray of bool or None
        Pixels that were analysed, when not all were.
    path : Path
        The ``.npz`` file or the result folder.
    guessed_shape : bool
        True when the bundle did not store the spatial shape and it was guessed.
    notes : list of str
    pixel_size : tuple (scale, units) or None
        The physical size of a pixel along every spatial axis and its unit, from the
        ``result.json`` of a result folder whose stack had pixel sizes, or as a
        bundle written with ``pixel_size`` stores it.
    layout : StackLayout or None
        Where the maps lie in the analysed stack (its spectral axis, pixel sizes,
        origin, axis names: :class:`~napari_unmix.io.stack_layout.StackLayout`), as the
        folder or bundle recorded it, else as the series params of a z / t series
        give it; None when unknown.
    """

    result: UnmixResult
    spatial_shape: tuple
    mask: np.ndarray | None = None
    path: Path | None = None
    guessed_shape: bool = False
    notes: list = field(default_factory=list)
    pixel_size: tuple | None = None
    layout: StackLayout | None = None

    def maps(self) -> np.ndarray:
        """The maps, ``(k, *spatial_shape)`` (NaN outside the mask)."""
        return self.result.maps(self.spatial_shape, mask=self.mask)


def _check_layout(result, spatial_shape, mask):
    if mask is None:  # the pixels an analysis fitted when it left some out
        mask = result.pixel_mask
    shape = tuple(int(s) for s in spatial_shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"spatial_shape {spatial_shape!r} must be a tuple of positive sizes.")
    n = result.W.shape[0]
    if mask is None:
        if math.prod(shape) != n:
            raise ValueError(f"spatial_shape {shape} has {math.prod(shape)} pixels but the "
                             f"result's W has {n} rows; give the shape of the analysed stack "
                             "(and its mask, if only some pixels were analysed).")
        return shape, None
    return shape, check_pixel_mask(mask, shape, n, rows="the result's W has")


def write_result_bundle(path, result: UnmixResult, spatial_shape, *, mask=None,
                        pixel_size=None, stack_layout=None) -> Path:
    """Write a result and the layout of its maps as one ``.npz`` file, atomically.

    Parameters
    ----------
    path : str or Path
        Target file; ``.npz`` is appended when missing.
    result : UnmixResult
        Everything it holds is written (``W``, ``H``, summary, params with the
        analysis config, names, spectral axis ...).
    spatial_shape : tuple of int
        Spatial shape of the analysed stack.
    mask : ndarray of bool, optional
        The analysed pixels, when ``W`` does not cover the whole image.
    pixel_size : tuple (scale, units), optional
        The physical size of a pixel along every spatial axis and its unit (as
        :attr:`ResultBundle.pixel_size`): the reader places the maps with it.
    stack_layout : StackLayout, optional
        Where the maps lie in the analysed stack (:attr:`ResultBundle.layout`): the
        napari reader puts them on the stack's axes with it.

    Returns
    -------
    Path
        The written file.  ``UnmixResult.load`` reads it; :func:`read_result_bundle`
        gives the result and the layout.

    Raises
    ------
    ValueError
        When the layout does not fit ``result.W``.
    """
    if not isinstance(result, UnmixResult):
        raise TypeError(f"result must be an UnmixResult, got {type(result).__name__}.")
    shape, mask = _check_layout(result, spatial_shape, mask)
    sizes = _checked_sizes(pixel_size, shape)
    layout = None if stack_layout is None else stack_layout.checked(shape)
    path = Path(path)
    if path.suffix.lower() != ".npz":
        path = path.with_name(path.name + ".npz")
    with atomic_path(path) as tmp:
        inner = tmp.with_name(tmp.name + ".npz")
        try:
            result.save(inner)
            with zipfile.ZipFile(inner, "a") as zf:
                with zf.open(_SHAPE_KEY + ".npy", "w") as fh:
                    np.lib.format.write_array(fh, np.asarray(shape, dtype=np.int64))
                if mask is not None:
                    with zf.open(_MASK_KEY + ".npy", "w", force_zip64=True) as fh:
                        np.lib.format.write_array(fh, np.ascontiguousarray(mask))
                if sizes is not None:
                    for key, values in zip((_SCALE_KEY, _UNITS_KEY), sizes, strict=True):
                        with zf.open(key + ".npy", "w") as fh:
                            np.lib.format.write_array(fh, np.asarray(values))
                if layout is not None:
                    with zf.open(_STACK_KEY + ".npy", "w") as fh:
                        np.lib.format.write_array(fh, np.asarray(json.dumps(layout.to_json())))
            os.replace(inner, tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                inner.unlink()
    return path


def _checked_sizes(pixel_size, shape):
    """``pixel_size`` as ``(scales, units)`` with one positive value per spatial axis."""
    if pixel_size is None:
        return None
    try:
        scale, units = (tuple(part) for part in pixel_size)
        scale = tuple(float(v) for v in scale)
    except (TypeError, ValueError):
        raise ValueError(f"pixel_size {pixel_size!r} must be (scales, units), one of each "
                         f"per spatial axis of {shape}.") from None
    if not (len(scale) == len(units) == len(shape)) or not all(
            math.isfinite(v) and v > 0 for v in scale):
        raise ValueError(f"pixel_size {pixel_size!r} must give one positive scale and one "
                         f"unit per spatial axis of {shape}.")
    return scale, tuple(str(u) for u in units)


# -- result.json ----------------------------------------------------------------

def _finite_or_none(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_or_none(v) for v in obj]
    return obj


def result_info(result, extra: dict | None = None) -> dict:
    """The JSON document :func:`write_result_json` writes, as a dict.

    Parameters
    ----------
    result : UnmixResult
    extra : dict, optional
        Further entries, added at the top level.

    Returns
    -------
    dict
        JSON-serialisable: format marker, version, mode, backend, sizes, names,
        spectral range, summary and params (non-finite numbers as None).
    """
    doc = {
        "format": RESULT_JSON_FORMAT,
        "napari_unmix_version": __version__,
        "mode": result.mode,
        "backend": result.backend,
        "device": result.device,
        "n_components": result.n_components,
        "n_pixels": int(result.W.shape[0]),
        "n_channels": result.n_channels,
        "dtype": str(result.dtype),
        "n_iter": result.n_iter,
        "reconstruction_err": result.reconstruction_err,
        "component_names": list(result.component_names),
        "spectral_unit": result.spectral_unit,
        "spectral_range": (None if result.spectral_values is None else
                           [float(np.min(result.spectral_values)),
                            float(np.max(result.spectral_values))]),
        "summary": result.summary,
        "params": result.params,
    }
    if result.explained_variance_ratio is not None:
        doc["explained_variance_ratio"] = np.asarray(result.explained_variance_ratio)
    if extra:
        doc.update(extra)
    return _finite_or_none(jsonable(doc))


def write_result_json(path, result, *, extra: dict | None = None) -> Path:
    """Write the summary, params and basic facts of an ``UnmixResult`` as JSON.

    The arrays themselves are not included (save the result with
    ``UnmixResult.save`` for that).  Non-finite numbers (NaN, Inf), which JSON
    cannot hold, are written as ``null``.

    Parameters
    ----------
    path : str or Path
    result : UnmixResult
    extra : dict, optional
        Further JSON-serialisable entries (input file, output files, scores ...),
        added at the top level.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    doc = result_info(result, extra)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, allow_nan=False)
            fh.write("\n")
    return path


# -- reading -------------------------------------------------------------------

def _result_json(folder: Path) -> dict | None:
    doc_path = folder / OUTPUT_NAMES["json"]
    if not doc_path.is_file():
        return None
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != RESULT_JSON_FORMAT:
        return None
    return doc


def _is_result_npz(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return {"W.npy", "H.npy", "meta.npy"} <= names


def is_result_bundle(path) -> bool:
    """Whether ``path`` is a result ``.npz`` or a result folder (cheap: no arrays read).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    bool
        True for an ``.npz`` that holds ``W``, ``H`` and the result metadata, and
        for a folder whose ``result.json`` has the format marker and whose bundle
        file exists.
    """
    path = Path(path)
    if path.is_dir():
        doc = _result_json(path)
        if doc is None:
            return False
        name = (doc.get("files") or {}).get("bundle") or OUTPUT_NAMES["bundle"]
        return (path / str(name)).is_file()
    return path.suffix.lower() == ".npz" and path.is_file() and _is_result_npz(path)


def _guess_shape(n: int) -> tuple[tuple, str]:
    side = math.isqrt(n)
    if side * side == n:
        return (side, side), f"a square image of {side} x {side} pixels"
    return (1, n), f"one row of {n} pixels"


def read_result_bundle(path) -> ResultBundle:
    """Read a result bundle (``.npz``) or a result folder.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`write_result_bundle` or ``UnmixResult.save``, or a
        folder written by :func:`~napari_unmix.io.write_analysis_outputs` (the CLI).

    Returns
    -------
    ResultBundle

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When it is not a napari-unmix result, or is damaged.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    notes: list[str] = []
    doc = None
    if path.is_dir():
        doc = _result_json(path)
        if doc is None:
            raise ValueError(f"{path} is not a napari-unmix result folder: it has no "
                             f"{OUTPUT_NAMES['json']} with format {RESULT_JSON_FORMAT!r}.")
        npz = path / str((doc.get("files") or {}).get("bundle") or OUTPUT_NAMES["bundle"])
        if not npz.is_file():
            raise ValueError(f"result folder {path} has no {npz.name} (the result arrays); "
                             "it cannot be opened without it.")
    else:
        npz = path
        sibling = _result_json(path.parent)
        if sibling is not None and (sibling.get("files") or {}).get("bundle") == path.name:
            doc = sibling
    if not _is_result_npz(npz):
        raise ValueError(f"{npz} is not a napari-unmix result file (no W, H and metadata).")
    try:
        result = UnmixResult.load(npz)
        with open(npz, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            shape = tuple(int(s) for s in z[_SHAPE_KEY]) if _SHAPE_KEY in z.files else None
            mask = z[_MASK_KEY] if shape is not None and _MASK_KEY in z.files else None
            stored = ({"scale": z[_SCALE_KEY].tolist(), "units": z[_UNITS_KEY].tolist()}
                      if _SCALE_KEY in z.files and _UNITS_KEY in z.files else None)
            stack = str(z[_STACK_KEY][()]) if _STACK_KEY in z.files else None
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - zip / npy / JSON decoding errors
        raise ValueError(f"{npz} could not be read as a napari-unmix result: "
                         f"{type(exc).__name__}: {exc}") from None
    guessed = False
    if shape is None and doc is not None and doc.get("spatial_shape"):
        shape = tuple(int(s) for s in doc["spatial_shape"])
    if shape is not None:
        try:
            shape, mask = _check_layout(result, shape, mask)
        except ValueError as exc:
            raise ValueError(f"{npz}: {exc}") from None
    else:
        shape, how = _guess_shape(result.W.shape[0])
        guessed = True
        notes.append(f"{npz.name} does not store the image shape; the maps are shown as "
                     f"{how}. Save results with napari_unmix.io.write_result_bundle (or the "
                     "plugin's writer) to keep it.")
    sizes = _pixel_size(doc, shape) or _pixel_size({"pixel_size": stored}, shape)
    layout = (StackLayout.from_json((doc or {}).get("stack_layout"), shape)
              or StackLayout.from_json(stack, shape) or series_layout(result, shape))
    return ResultBundle(result=result, spatial_shape=shape, mask=mask, path=path,
                        guessed_shape=guessed, notes=notes, pixel_size=sizes, layout=layout)


def _pixel_size(doc, shape):
    """The ``pixel_size`` a result.json records, when it has one value per spatial axis."""
    info = (doc or {}).get("pixel_size")
    if not isinstance(info, dict):
        return None
    scale, units = info.get("scale"), info.get("units")
    if not (isinstance(scale, list) and isinstance(units, list)
            and len(scale) == len(units) == len(shape)):
        return None
    return tuple(float(v) for v in scale), tuple(str(u) for u in units)
