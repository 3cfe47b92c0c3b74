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

from .zarr_folders import is_zarr_folder

__all__ = ["FOLDER_SIDECAR_NAMES", "find_sidecar", "normalise_unit", "number_or_none",
           "read_spectral_sidecar", "sidecar_path", "unit_of_header"]

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
        A stack file (``name.ext``; for ``name.ome.tif`` also ``name.spectral.*``), a
        zarr store (``name.zarr``, read by the file rule: ``name.spectral.*``, also
        ``name.zarr.spectral.*``) or a folder of slices.

    Returns
    -------
    Path or None
        ``name.spectral.csv`` / ``.json`` beside a file or zarr store,
        ``spectral_axis.csv`` / ``.json`` inside a folder (the first that exists, CSV
        before JSON; beside a zarr store before inside it), or None.
    """
    path = Path(path)
    zarr = is_zarr_folder(path)
    candidates = []
    if zarr or not path.is_dir():
        stems = [path.name[: -len(path.suffix)] if path.suffix else path.name]
        if stems[0].lower().endswith(".ome"):
            stems.append(stems[0][:-4])
        if zarr and path.suffix:
            stems.append(path.name)  # data.zarr.spectral.csv
        candidates = [path.with_name(f"{s}.spectral{ext}") for s in stems
                      for ext in (".csv", ".json")]
    if path.is_dir():  # a folder of slices; inside a zarr store, after the files beside it
        candidates += [path / n for n in FOLDER_SIDECAR_NAMES]
    found = [c for c in candidates if c.is_file()]
    return found[0] if found else None


def sidecar_path(path) -> Path:
    """The sidecar file :func:`find_sidecar` looks for first, to suggest writing it.

    Parameters
    ----------
    path : str or Path
        A stack file, zarr store or folder of slices.

    Returns
    -------
    Path
        ``name.spectral.csv`` beside ``name.ext`` (and beside a zarr store
        ``name.zarr``), ``spectral_axis.csv`` inside a folder of slices.
    """
    path = Path(path)
    if path.is_dir() and not is_zarr_folder(path):
        return path / FOLDER_SIDECAR_NAMES[0]
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(f"{stem}.spectral.csv")


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


_INTEGER = re.compile(r"[-+]?\d+")


def _decimal_comma_rows(lines) -> list[tuple[int, list[str]]] | None:
    """The cells of data lines that use ``,`` as their decimal mark, or None.

    ``,`` is a decimal mark when the file separates its values by ``;`` or tabs
    (``2850,5;2851,0``), or by white space within comma-split cells (``2850,5
    2851,0``); cells are then split on ``;``, tabs and white space."""
    def spaced(cell):  # "5 2851": the fraction of a value, then the next value
        parts = cell.split()
        return len(parts) > 1 and all(_INTEGER.fullmatch(part) for part in parts)

    if not any(";" in ln or "\t" in ln for _, ln in lines) and not any(
            spaced(c) for _, ln in lines for c in ln.split(",")):
        return None
    return [(no, [c.replace(",", ".") for c in re.split(r"[;\s]+", ln.strip()) if c])
            for no, ln in lines]


def _csv_cells(text, path) -> tuple[str | None, list[tuple[int, str]]]:
    """The unit of a sidecar CSV's header and its value cells, with their line numbers.

    Values are separated by ``,`` or white space (``np.savetxt``'s default); or by
    ``;`` / tabs / white space, with ``,`` as the decimal mark
    (:func:`_decimal_comma_rows`).  Lines of two whole numbers split by
    ``,`` (``2850,5``) could be either, and are refused rather than guessed."""
    lines = [(no, ln) for no, ln in enumerate(text.splitlines(), start=1)
             if ln.strip() and not ln.lstrip().startswith("#")]
    unit = None
    if lines and number_or_none(re.split(r"[,;\s]+", lines[0][1].strip())[0]) is None:
        header = [c for c in re.split(r"[,;\t]", lines[0][1]) if c.strip()]
        unit = unit_of_header(header[0]) if header else None
        lines, named = lines[1:], len(header)
    else:
        named = 0
    rows = _decimal_comma_rows(lines)
    if rows is None:   # decimal points: values split by ",", white space or both
        rows = [(no, re.split(r"\s*,\s*|\s+", ln.strip())) for no, ln in lines]
        if len(rows) > 1 and named < 2 and all(
                len(r) == 2 and all(_INTEGER.fullmatch(c) for c in r) for _, r in rows):
            no, line = lines[0]
            raise ValueError(
                f"spectral-axis file {path}, line {no}: {line.strip()!r} reads as two "
                "columns or as one number with a decimal comma. Write decimal points "
                f"({line.strip().replace(',', '.')!r}), or keep the decimal commas with "
                "';' between the values on one line ('2850,5;2851,0'); if the second "
                "number is a column of its own, name both columns in a header line.")
    if len(rows) == 1 and len(rows[0][1]) > 1:
        return unit, [(rows[0][0], c) for c in rows[0][1] if c]
    return unit, [(no, r[0]) for no, r in rows]


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
        unit, cells = _csv_cells(text, path)
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
