"""Spectral positions from sidecar files, and spectral units.

A sidecar file next to the data gives the spectral positions of a stack
(wavenumbers, wavelengths) and their unit: ``name.spectral.csv`` or
``name.spectral.json`` beside a file, ``spectral_axis.csv`` / ``.json`` inside a
folder of slices.  Formats and precedence: :mod:`napari_unmix.io.readers`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

__all__ = ["FOLDER_SIDECAR_NAMES", "find_sidecar", "normalise_unit", "number_or_none",
           "read_spectral_sidecar", "unit_of_header"]

#: Sidecar names inside a folder of slices.
FOLDER_SIDECAR_NAMES = ("spectral_axis.csv", "spectral_axis.json")


_UNIT_ALIASES = {
    "cm^-1": "cm^-1", "cm-1": "cm^-1", "1/cm": "cm^-1", "cm⁻¹": "cm^-1", "/cm": "cm^-1",
    "wavenumber": "cm^-1", "wavenumbers": "cm^-1",
    "nm": "nm", "nanometer": "nm", "nanometers": "nm", "nanometre": "nm", "nanometres": "nm",
    "wavelength": "nm",
    "um": "um", "µm": "um", "μm": "um", "micron": "um", "microns": "um",
}


def normalise_unit(unit) -> str | None:
    """Canonical spelling of a spectral unit (``"cm-1"`` -> ``"cm^-1"``); others unchanged.

    Parameters
    ----------
    unit : str or None

    Returns
    -------
    str or None
        ``"cm^-1"``, ``"nm"`` or ``"um"`` for their known spellings, the stripped
        text for other units, None for None or an empty text.
    """
    if unit is None:
        return None
    text = str(unit).strip()
    if not text:
        return None
    return _UNIT_ALIASES.get(text.lower(), text)


# -- sidecar files ------------------------------------------------------------------

def find_sidecar(path) -> Path | None:
    """The spectral-axis sidecar file of a stack file or slice folder, if one exists.

    Parameters
    ----------
    path : str or Path
        A stack file (``name.ext``; for ``name.ome.tif`` also ``name.spectral.*``) or
        a folder of slices.

    Returns
    -------
    Path or None
        ``name.spectral.csv`` / ``.json`` beside a file, ``spectral_axis.csv`` /
        ``.json`` inside a folder (the first that exists, CSV before JSON), or None.
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / n for n in FOLDER_SIDECAR_NAMES]
    else:
        stems = [path.name[: -len(path.suffix)] if path.suffix else path.name]
        if stems[0].lower().endswith(".ome"):
            stems.append(stems[0][:-4])
        candidates = [path.with_name(f"{s}.spectral{ext}") for s in stems
                      for ext in (".csv", ".json")]
    found = [c for c in candidates if c.is_file()]
    return found[0] if found else None


def number_or_none(tok: str) -> float | None:
    """The number a text spells, or None.

    Parameters
    ----------
    tok : str
        E.g. ``"2850.5"`` or ``"1e3"``.

    Returns
    -------
    float or None
        ``float(tok)``; None when it is not a number.
    """
    try:
        return float(tok)
    except ValueError:
        return None


def unit_of_header(cell: str | None) -> str | None:
    """The spectral unit an axis header names, normalised (:func:`normalise_unit`).

    Parameters
    ----------
    cell : str or None
        E.g. ``"wavenumber (cm^-1)"``, ``"Wavelength [nm]"``, ``"nm"`` or
        ``"wavenumber"``.

    Returns
    -------
    str or None
        The unit in the last brackets; else ``"cm^-1"``, ``"nm"`` or ``"um"`` when the
        whole header is one of their spellings; else None.
    """
    if cell is None:
        return None
    cell = cell.strip().strip('"').strip()
    m = re.search(r"[\(\[]\s*([^\)\]]+?)\s*[\)\]]\s*$", cell)
    if m:
        return normalise_unit(m.group(1))
    unit = normalise_unit(cell)
    return unit if unit in ("cm^-1", "nm", "um") else None


def read_spectral_sidecar(path) -> tuple[np.ndarray, str | None]:
    """Read spectral positions (and their unit) from a sidecar CSV or JSON file.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.json`` file in the format described in this module's
        docstring.

    Returns
    -------
    values : ndarray of float64, shape (n_channels,)
    unit : str or None
        Normalised with :func:`normalise_unit`.

    Raises
    ------
    ValueError
        When the file is not in one of the accepted formats, holds a value that is
        not a finite number, or no values at all.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"spectral-axis file {path} could not be read: {exc}") from None
    unit = None
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"spectral-axis file {path} is not valid JSON: {exc}") from None
        if isinstance(doc, dict):
            raw = doc.get("values", doc.get("spectral_values"))
            unit = normalise_unit(doc.get("unit", doc.get("spectral_unit")))
        else:
            raw = doc
        if not isinstance(raw, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
            raise ValueError(f"spectral-axis file {path} must hold a list of numbers or "
                             '{"values": [...], "unit": "..."}.')
        values = np.asarray(raw, dtype=np.float64)
    else:
        rows = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in re.split(r"[,;\t]", line)]
            rows.append((lineno, cells))
        if rows and number_or_none(rows[0][1][0]) is None:
            unit = unit_of_header(rows[0][1][0])
            rows = rows[1:]
        if len(rows) == 1 and len(rows[0][1]) > 1:
            cells = [(rows[0][0], c) for c in rows[0][1] if c]
        else:
            cells = [(lineno, r[0]) for lineno, r in rows]
        values = np.empty(len(cells))
        for i, (lineno, tok) in enumerate(cells):
            v = number_or_none(tok)
            if v is None:
                raise ValueError(f"spectral-axis file {path}, line {lineno}: {tok!r} is not a "
                                 "number.")
            values[i] = v
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"spectral-axis file {path} holds no values.")
    if not np.isfinite(values).all():
        raise ValueError(f"spectral-axis file {path} holds non-finite values (NaN or Inf).")
    return values, unit
