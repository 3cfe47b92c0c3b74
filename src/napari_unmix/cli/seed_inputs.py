"""The seeds of ``napari-unmix run`` from its files: ``--spectra``, ``--labels`` and
``--flat-background``.

Each function turns one input into :class:`~napari_unmix.core.ComponentSpec` rows (or
the label image they refer to) and refuses, as a :class:`~.console.CLIError` naming
the file, what would otherwise fail later or seed the wrong pixels: spectra that do
not fit the stack's axis, label images of another shape, float or negative ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import ComponentSpec, Flat, RoiLabel, components_from_spectra, read_spectra
from ..io.spectral_sidecar import normalise_unit, unit_of_header
from .console import CLIError, note

__all__ = ["flat_background_component", "label_components", "read_labels",
           "spectra_components"]


#: Exact conversions between spectral units: (from, to) -> the function.  Wavelengths
#: and Raman shifts (cm^-1) have none: a shift depends on the excitation wavelength.
_CONVERSIONS = {("nm", "um"): ("/ 1000", lambda a: a / 1000.0),
                ("um", "nm"): ("x 1000", lambda a: a * 1000.0)}


def spectra_components(path, n_channels, values, *, unit=None, quiet=True):
    """Components seeded by the spectra of a CSV, and the spectral values to use.

    With a known stack axis the spectra are resampled onto it by ``run_analysis``;
    without one, the file's axis must have one row per stack channel and then tells
    where the channels are.

    Parameters
    ----------
    path : str or Path
        ``--spectra``.
    n_channels : int
    values : ndarray or None
        The stack's spectral values, where known.
    unit : str or None, optional
        Their unit.  A file whose axis header names another unit is refused, or
        converted where the conversion is exact (nm <-> um, with a note).
    quiet : bool, default True
        ``--quiet`` (the note of a conversion).

    Returns
    -------
    components : list of ComponentSpec
    values : ndarray
        The spectral values of the channels.
    axis_name : str
        The header of the file's spectral column.
    """
    p = Path(path)
    if not p.exists():
        raise CLIError(f"spectra file {p} not found.")
    table = read_spectra(p)
    _check_names(table, p)
    convert = None if values is None else _conversion(table, normalise_unit(unit), p, quiet)
    if convert is not None:
        table.axis = convert(table.axis)
    if values is None and table.axis.size != n_channels:
        raise CLIError(
            f"{p} has {table.axis.size} spectral points per spectrum but the stack has "
            f"{n_channels} channels and no spectral axis of its own to resample onto. Give "
            "the stack's spectral axis (a sidecar <stack>.spectral.csv, see the docs) or "
            "spectra sampled on the stack's channels.")
    if values is not None:
        lo, hi = float(np.min(table.axis)), float(np.max(table.axis))
        s_lo, s_hi = float(np.min(values)), float(np.max(values))
        if hi < s_lo or lo > s_hi:
            raise CLIError(f"the spectra in {p} cover {lo:g} to {hi:g} but the stack covers "
                           f"{s_lo:g} to {s_hi:g}: the ranges do not overlap. Check the units "
                           "and the stack's spectral axis.")
    comps = components_from_spectra(p)
    if convert is not None:
        for c in comps:
            c.h_source.axis = convert(c.h_source.axis)
    return comps, (table.axis if values is None else values), table.axis_name


def _conversion(table, unit, path, quiet):
    """The function that takes the file's axis into the stack's unit ``unit`` (None when
    the units agree or either is unknown); refuse units with no exact conversion."""
    file_unit = unit_of_header(table.axis_name)
    if unit is None or file_unit is None or file_unit == unit:
        return None
    if (file_unit, unit) in _CONVERSIONS:
        how, convert = _CONVERSIONS[file_unit, unit]
        note(f"--spectra {path} gives its spectral axis in {file_unit} and the stack's is in "
             f"{unit}: the spectra's axis is converted to {unit} ({how}).", quiet)
        return convert
    if {file_unit, unit} <= {"nm", "um", "cm^-1"}:
        why = ("a wavelength has no fixed Raman shift (the shift depends on the excitation "
               "wavelength): convert the spectra's axis to the stack's unit yourself")
    else:
        why = "give both axes in one unit"
    raise CLIError(f"--spectra {path} gives its spectral axis in {file_unit} (header "
                   f"{table.axis_name!r}) but the stack's spectral axis is in {unit}; the "
                   f"spectra cannot be resampled onto it. {why[0].upper()}{why[1:]}, or give "
                   "the stack's axis in the spectra's unit (its sidecar "
                   "<stack>.spectral.csv).")


def _check_names(table, path) -> None:
    """Refuse spectrum columns the header leaves unnamed (``wavenumber,,lipid``): each
    spectrum names its component."""
    empty = [i + 2 for i, name in enumerate(table.names) if not str(name).strip()]
    if empty:  # names[i] is file column i + 2 (1-based; the axis is column 1)
        cols = ", ".join(map(str, empty))
        raise CLIError(f"--spectra {path}: the header gives no name to column {cols} (the "
                       "spectral axis is column 1); each spectrum column names its "
                       "component: write a name there (e.g. lipid) or remove the column.")


def read_labels(path, spatial_shape, *, plane_shape=None):
    """A label image (.tif, .npy or an OME-Zarr label image) of the stack's spatial shape
    (or, for a z / t series run plane by plane, of one plane's: used for every plane).

    An OME-Zarr label image (``img.ome.zarr/labels/cells``, what ome-zarr's
    ``write_labels`` and napari-ome-zarr make) is read at level 0.

    Parameters
    ----------
    path : str or Path
        ``--labels``.
    spatial_shape : tuple of int
    plane_shape : tuple of int, optional
        A series run's plane shape, also taken.

    Returns
    -------
    ndarray of int
    """
    p = Path(path)
    if not p.exists():
        raise CLIError(f"labels file {p} not found.")
    if p.is_dir():
        return _fit_spatial_shape(_zarr_labels(p), tuple(spatial_shape), p, plane_shape)
    try:
        if p.suffix.lower() == ".npy":  # mapped first: the file must hold what it declares
            labels = np.array(np.load(p, mmap_mode="r", allow_pickle=False))
        else:
            import tifffile

            labels = tifffile.imread(p)
    except Exception as exc:  # noqa: BLE001 - empty, truncated or foreign files
        raise CLIError(f"cannot read the label image {p} ({type(exc).__name__}: {exc}); give "
                       "a .tif or .npy image of integer label ids, of the stack's spatial "
                       "shape.") from None
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iub":
        raise CLIError(f"{p} holds {labels.dtype} values; a label image holds integer ids.")
    return _fit_spatial_shape(labels, tuple(spatial_shape), p, plane_shape)


def _zarr_labels(p: Path):
    from ..io.zarr_stacks import read_zarr_labels

    try:
        labels = read_zarr_labels(p)
    except (ValueError, ImportError) as exc:
        raise CLIError(f"--labels {p}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a damaged store
        raise CLIError(f"cannot read the OME-Zarr label image {p} ({type(exc).__name__}: "
                       f"{exc}).") from None
    if labels.dtype.kind not in "iub":
        raise CLIError(f"{p} holds {labels.dtype} values; a label image holds integer ids.")
    return labels


def _fit_spatial_shape(labels, spatial_shape, path, plane_shape=None):
    """``labels`` with the stack's spatial shape (or a series plane's): as read, or with
    only its length-1 axes differing (a (1, X) image for a (1, X) or (X,) stack, a TIFF's
    extra (1, Y, X) page axis); any other shape is refused with the true shapes."""
    for shape in (spatial_shape, *([tuple(plane_shape)] if plane_shape is not None else [])):
        if labels.shape == shape:
            return labels
        if tuple(s for s in labels.shape if s != 1) == tuple(s for s in shape if s != 1):
            return labels.reshape(shape)  # only axes of length 1 added or removed
    plane = "" if plane_shape is None else f" (or one plane's, {tuple(plane_shape)})"
    raise CLIError(f"the label image {path} has shape {labels.shape} but the stack's spatial "
                   f"shape is {spatial_shape}{plane}; give a label image of the stack's "
                   "spatial shape (one integer id per pixel).")


def label_components(labels, path) -> list:
    """One component per label id (> 0), seeded by the mean spectrum of its pixels.

    Parameters
    ----------
    labels : ndarray of int
    path : str or Path
        For the message when there is no label.

    Returns
    -------
    list of ComponentSpec
    """
    values = np.unique(labels)
    negative = values[values < 0]
    if negative.size:
        count = int((labels < 0).sum())
        shown = ", ".join(str(int(i)) for i in negative[:5]) + (", ..." if negative.size > 5
                                                                  else "")
        raise CLIError(f"the label image {path} holds negative label id(s) ({shown}; "
                       f"{count} pixel(s)); label ids are whole numbers >= 1, and 0 is "
                       "unlabelled. Give those pixels a positive id, or 0 to leave them "
                       "out.")
    ids = [int(i) for i in values if i > 0]
    if not ids:
        raise CLIError(f"the label image {path} holds no label (every pixel is 0).")
    return [ComponentSpec(f"label {i}", h_source=RoiLabel(i)) for i in ids]


def flat_background_component(comps):
    """A locked flat component for ``--flat-background`` (named so as not to clash).

    Parameters
    ----------
    comps : list of ComponentSpec
        The components so far.

    Returns
    -------
    ComponentSpec
    """
    taken = {c.name for c in comps}
    if any(isinstance(c.h_source, Flat) for c in comps):
        raise CLIError("the components already have a flat spectrum; leave out "
                       "--flat-background.")
    names = ("background", "flat background", "flat")
    extra = (f"flat background {i}" for i in range(2, len(taken) + 3))
    name = next(n for n in (*names, *extra) if n not in taken)
    return ComponentSpec(name, h_source=Flat(), background=True, locked=True)
