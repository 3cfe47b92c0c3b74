"""Spectra as seeds: reading text files, resampling, Gaussian resonance models.

Text files
    :func:`read_spectra` reads a table whose first column is the spectral axis and
    whose other columns are spectra (one per column).  Comma, semicolon, tab or
    whitespace separate values (quoted names may contain the separator; a UTF-8
    byte-order mark is ignored); a first line that is not numeric is taken as a
    header of column names; lines starting with ``#`` are comments.  The axis may
    run up or down.  A cell that is not a finite number is an error naming its line
    and column.

Resampling
    :func:`resample_spectrum` interpolates linearly (``np.interp`` on ascending
    copies of both axes) onto the stack's spectral axis.  When the two ranges do not
    overlap at all, a ``ValueError`` gives both ranges.  When they overlap only in
    part, stack channels outside the spectrum's range have no measured value: by
    default they are set to 0 ("no known contribution"; NNMF can still grow them,
    multiplicative updates after the eps lift) and the number of such channels is
    reported; ``outside="edge"`` repeats the end values instead, ``outside="error"``
    refuses.

Gaussian models
    :func:`gaussian_model` evaluates a sum of Gaussian peaks given as
    ``(center, width, amplitude)`` in axis units; ``width`` is the FWHM unless
    ``width_kind="sigma"``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "FWHM_PER_SIGMA",
    "SpectraTable",
    "check_peaks",
    "gaussian_model",
    "parse_spectra",
    "read_spectra",
    "resample_spectrum",
]

#: FWHM of a Gaussian in units of its standard deviation, ``2 sqrt(2 ln 2)``.
FWHM_PER_SIGMA = float(2.0 * np.sqrt(2.0 * np.log(2.0)))

@dataclass(eq=False)
class SpectraTable:
    """Spectra read from a file.

    Attributes
    ----------
    axis : ndarray (n_points,)
        Spectral axis, in the file's order.
    values : ndarray (n_spectra, n_points)
        One spectrum per row.
    names : list of str
        Column names (from the header, or ``"spectrum 1"`` ...).
    axis_name : str or None
        Header of the axis column, if any.
    """

    axis: np.ndarray
    values: np.ndarray
    names: list
    axis_name: str | None = None

    @property
    def n_spectra(self) -> int:
        return int(self.values.shape[0])

    @property
    def descending(self) -> bool:
        return bool(self.axis.size > 1 and self.axis[0] > self.axis[-1])

    def column_index(self, column) -> int:
        """Index of a spectrum given as a 0-based int or a header name."""
        if isinstance(column, str):
            if column not in self.names:
                raise ValueError(f"No spectrum column {column!r}; columns are "
                                 f"{', '.join(self.names)}.")
            return self.names.index(column)
        idx = int(column)
        if not 0 <= idx < self.n_spectra:
            raise ValueError(f"Spectrum column {idx} is out of range: the file has "
                             f"{self.n_spectra} spectrum column(s) (0-based, axis not counted).")
        return idx

    def resampled(self, target_axis, *, outside="zero"):
        """All spectra resampled onto ``target_axis``: ``(n_spectra, len(target_axis))``."""
        return np.stack([resample_spectrum(v, self.axis, target_axis, outside=outside)[0]
                         for v in self.values])


def _tokenise(lines: list[tuple[int, str]]) -> list[tuple[int, list[str]]]:
    """Split data lines into cells: CSV rules for ``,`` ``;`` or tab, else whitespace.

    The delimiter is sniffed from the first lines; quoted cells may contain it
    (``"ATTO 520, batch 2"``).  Files without any of the three are split on runs
    of white space (plain TXT exports).
    """
    sample = "\n".join(line for _, line in lines[:20])
    if not any(d in sample for d in ",;\t"):
        return [(no, line.split()) for no, line in lines]
    try:
        delim = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        delim = next(d for d in ",;\t" if d in sample)
    rows = csv.reader([line for _, line in lines], delimiter=delim)
    return [(no, [c.strip() for c in row]) for (no, _), row in zip(lines, rows, strict=True)]


def _to_float(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def parse_spectra(text: str, *, source: str = "<text>") -> SpectraTable:
    """Parse spectra from the text of a CSV/TXT file (see :func:`read_spectra`)."""
    lines = []
    for no, line in enumerate(text.splitlines(), start=1):
        if "#" in line and '"' not in line:  # a trailing comment (not inside a quoted name)
            line = line.split("#", 1)[0]
        if line.strip():
            lines.append((no, line))
    if not lines:
        raise ValueError(f"{source}: no data found.")
    rows = _tokenise(lines)
    header = None
    first_no, first = rows[0]
    if any(_to_float(t) is None for t in first):
        header = first
        rows = rows[1:]
        if not rows:
            raise ValueError(f"{source}: only a header line, no numbers.")
    n_cols = len(rows[0][1])
    if n_cols < 2:
        raise ValueError(f"{source}: line {rows[0][0]} has {n_cols} column; a spectra file "
                         "needs the spectral axis in the first column and at least one "
                         "spectrum column.")
    data = np.empty((len(rows), n_cols), dtype=np.float64)
    for r, (lineno, tokens) in enumerate(rows):
        if len(tokens) != n_cols:
            raise ValueError(f"{source}: line {lineno} has {len(tokens)} values, but the first "
                             f"data line has {n_cols}. Every line needs the same columns.")
        for c, tok in enumerate(tokens):
            v = _to_float(tok)
            if v is None or not np.isfinite(v):
                raise ValueError(
                    f"{source}: line {lineno}, column {c + 1} holds {tok!r}, which is not a "
                    "finite number. Fix or remove that line (missing values are not "
                    "allowed in a seed spectrum).")
            data[r, c] = v
    axis = data[:, 0].copy()
    if axis.size > 1:
        d = np.diff(axis)
        if not (np.all(d > 0) or np.all(d < 0)):
            bad = int(np.flatnonzero(d <= 0 if d[0] > 0 else d >= 0)[0])
            raise ValueError(
                f"{source}: the spectral axis (first column) must strictly increase or "
                f"strictly decrease; it breaks at line {rows[bad + 1][0]} "
                f"({axis[bad]:g} then {axis[bad + 1]:g}).")
    if header is not None and len(header) == n_cols:
        axis_name, names = header[0], list(header[1:])
    elif header is not None and len(header) == n_cols - 1:
        axis_name, names = None, list(header)
    elif header is not None:
        raise ValueError(f"{source}: the header (line {first_no}) has {len(header)} names "
                         f"but the data has {n_cols} columns.")
    else:
        axis_name, names = None, [f"spectrum {i + 1}" for i in range(n_cols - 1)]
    return SpectraTable(axis=axis, values=np.ascontiguousarray(data[:, 1:].T), names=names,
                        axis_name=axis_name)


def read_spectra(path, *, encoding: str = "utf-8-sig") -> SpectraTable:
    """Read spectra from a CSV / TXT file.

    Parameters
    ----------
    path : str or Path
        Text file: first column the spectral axis, one column per spectrum, an
        optional header line, values separated by commas, semicolons, tabs or
        whitespace.  Use ``.`` as the decimal separator.
    encoding : str, default "utf-8-sig"
        UTF-8, with or without a byte-order mark.

    Returns
    -------
    SpectraTable

    Raises
    ------
    ValueError
        For an empty file, ragged lines, a non-monotonic axis, or a cell that is not
        a finite number (the message names the line and column).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a {encoding} text file ({exc}); spectra must be "
                         "given as CSV or plain text.") from exc
    return parse_spectra(text, source=str(path))


def _sorted_axis(axis, *, whose: str):
    """``(axis ascending, its order, repeats)`` of a finite 1-D spectral axis;
    ``repeats(what)`` gives its first repeated positions and the indices ("points",
    "channels") holding them in words, or "" when it has none."""
    axis = np.asarray(axis, dtype=np.float64)
    if axis.ndim != 1 or axis.size < 1:
        raise ValueError(f"A spectral axis must be 1-D and non-empty, got shape {axis.shape}.")
    if not np.isfinite(axis).all():
        raise ValueError(f"{whose} spectral axis contains NaN or infinite values.")
    order = np.argsort(axis, kind="stable")
    ascending = axis[order]
    same = np.unique(ascending[np.flatnonzero(np.diff(ascending) == 0)])

    def repeats(what: str, at_most: int = 3) -> str:
        return "; ".join(f"{v:g} at {what} "
                         + ", ".join(str(int(i)) for i in np.sort(order[ascending == v]))
                         for v in same[:at_most])
    return ascending, order, repeats


def _ascending(axis, *, name="a spectrum"):
    ascending, order, repeats = _sorted_axis(axis, whose="A")
    if repeats("points"):
        raise ValueError(f"The spectral axis of {name} repeats positions "
                         f"({repeats('points')}); each point of a spectrum needs a position "
                         "of its own.")
    return ascending, order


def _check_target(target, name):
    """The stack's axis a spectrum is resampled onto: finite, and no position twice
    (two channels at one position, such as one emission band under two excitations,
    would get the same value of the spectrum, which is not what such a stack holds)."""
    _, order, repeats = _sorted_axis(target, whose="The stack's")
    if repeats("channels"):
        raise ValueError(
            f"{name} cannot be resampled onto the stack's spectral axis, which repeats "
            f"positions ({repeats('channels')}): one value of the spectrum per position "
            "cannot tell those channels apart. If the axis is a typo, correct it (its "
            "sidecar file); for an excitation x emission stack give a spectrum with one "
            "value per channel, or seed from a region.")
    return np.asarray(target, dtype=np.float64)


def resample_spectrum(values, axis, target_axis, *, outside: str = "zero", name: str = "spectrum"):
    """Interpolate a spectrum onto another spectral axis.

    Parameters
    ----------
    values, axis : array_like (n_points,)
        The spectrum and its axis (ascending or descending).
    target_axis : array_like (n_channels,)
        The stack's spectral axis (ascending or descending; the output follows its
        order).
    outside : {"zero", "edge", "error"}, default "zero"
        Treatment of target channels outside the spectrum's range.
    name : str
        Used in error messages.

    Returns
    -------
    resampled : ndarray (n_channels,), float64
    info : dict
        ``{"n_outside": channels outside the spectrum's range, "source_range",
        "target_range"}``.

    Raises
    ------
    ValueError
        When the ranges do not overlap (both ranges are given), or with
        ``outside="error"`` when they overlap only in part.
    """
    if outside not in ("zero", "edge", "error"):
        raise ValueError(f"outside must be 'zero', 'edge' or 'error', got {outside!r}.")
    values = np.asarray(values, dtype=np.float64)
    src, order = _ascending(axis, name=name)
    if values.shape != src.shape:
        raise ValueError(f"{name}: {values.size} values but {src.size} axis positions.")
    vals = values[order]
    if src.size < 2:
        raise ValueError(
            f"{name} has a single spectral point ({src[0]:g}): one value cannot be "
            "resampled onto the stack's channels. Give the spectrum over the stack's range "
            "(a file with one row per spectral position), or one value per channel.")
    tgt = _check_target(target_axis, name)
    lo, hi = float(src[0]), float(src[-1])
    t_lo, t_hi = float(tgt.min()), float(tgt.max())
    inside = (tgt >= lo) & (tgt <= hi)
    info = {"n_outside": int((~inside).sum()), "source_range": [lo, hi],
            "target_range": [t_lo, t_hi]}
    if not inside.any():
        raise ValueError(
            f"{name} covers {lo:g} to {hi:g} on the spectral axis but the stack covers "
            f"{t_lo:g} to {t_hi:g}: the ranges do not overlap. Check the units (e.g. nm vs "
            "cm^-1) or give the stack's spectral axis.")
    if outside == "error" and not inside.all():
        raise ValueError(
            f"{name} covers {lo:g} to {hi:g} but the stack covers {t_lo:g} to {t_hi:g}; "
            f"{info['n_outside']} channel(s) lie outside the spectrum's range.")
    if src.size == 1:
        out = np.full(tgt.shape, vals[0])
    else:
        out = np.interp(tgt, src, vals)
    if outside == "zero":
        out[~inside] = 0.0
    return out, info


def check_peaks(peaks) -> list[tuple[float, float, float]]:
    """Gaussian peaks as ``(center, width, amplitude)`` float triples, checked.

    Parameters
    ----------
    peaks : sequence of (center, width, amplitude)

    Returns
    -------
    list of tuple of float

    Raises
    ------
    ValueError
        For no peak, a peak that is not a triple of numbers, a width <= 0 (a zero
        width divided by zero: NaN on every channel), a negative amplitude (a seed
        below zero) or a value that is not finite.
    """
    out = []
    for p in list(peaks):
        try:
            p = tuple(float(x) for x in p)
        except (TypeError, ValueError):
            raise ValueError(f"Each Gaussian peak is (center, width, amplitude), three "
                             f"numbers; got {p!r}.") from None
        if len(p) != 3:
            raise ValueError(f"Each Gaussian peak is (center, width, amplitude); got {p}.")
        c, w, a = p
        if not (np.isfinite(c) and np.isfinite(w) and np.isfinite(a)) or w <= 0 or a < 0:
            raise ValueError(f"Gaussian peak {p}: width must be > 0 and amplitude >= 0, "
                             "all finite.")
        out.append(p)
    if not out:
        raise ValueError("A Gaussian model needs at least one peak (center, width, "
                         "amplitude).")
    return out


def gaussian_model(axis, peaks, *, width_kind: str = "fwhm", baseline: float = 0.0) -> np.ndarray:
    """Sum of Gaussian peaks evaluated on ``axis``.

    Parameters
    ----------
    axis : array_like (n_channels,)
        Spectral positions (any order).
    peaks : sequence of (center, width, amplitude)
        In axis units; ``amplitude`` is the height of the peak.
    width_kind : {"fwhm", "sigma"}, default "fwhm"
        Meaning of ``width``: full width at half maximum, or standard deviation.
    baseline : float, default 0.0
        Constant added everywhere.

    Returns
    -------
    ndarray (n_channels,), float64

    Raises
    ------
    ValueError
        For peaks :func:`check_peaks` refuses, an unknown ``width_kind``, or a
        baseline that is negative or not finite.
    """
    if width_kind not in ("fwhm", "sigma"):
        raise ValueError(f"width_kind must be 'fwhm' or 'sigma', got {width_kind!r}.")
    baseline = float(baseline)
    if not np.isfinite(baseline) or baseline < 0:
        raise ValueError(f"Gaussian baseline must be finite and >= 0, got {baseline}.")
    x = np.asarray(axis, dtype=np.float64)
    out = np.full(x.shape, baseline)
    for center, width, amplitude in check_peaks(peaks):
        sigma = width / FWHM_PER_SIGMA if width_kind == "fwhm" else width
        out += amplitude * np.exp(-0.5 * ((x - center) / sigma) ** 2)
    return out
