"""Zeiss LSM files (LSM 510 META, 710, 880 ...): the emission wavelengths of a lambda stack.

An ``.lsm`` file is a TIFF file whose first page carries Zeiss's ``CZ_LSMINFO``
tag (34412); tifffile parses it (``TiffFile.is_lsm``, ``lsm_metadata``) and gives
the image as one series whose axes come from the scan type: ``CYX``, ``ZCYX``,
``TCYX``, ``TZCYX`` ... (the thumbnails, one after every image page, are a second
series).  It is read like any TIFF (:func:`~napari_unmix.io.tiff_stacks.read_tiff`:
axes, lazy loading, corruption checks); this module gives what only the LSM
metadata hold:

* the spectral positions: in lambda mode every channel is one emission wavelength
  bin, and the ``ChannelWavelength`` block gives each channel's range ``[start,
  end]`` in metres.  The position of a channel is the centre of its range, in nm,
  converted in decimal from the numbers the file holds (a bin from 4.155e-07 to
  4.252e-07 m is centred on 420.35 nm, not 420.34999999999997).  They are used only
  when there is one range per channel of the ``C`` axis and every range reads as a
  wavelength (both ends between 10 nm and 100 µm); otherwise the channels keep
  their numbers (0, 1, ...) and a note says why;
* the pixel sizes (``VoxelSizeX`` / ``Y`` / ``Z``, metres):
  :func:`~napari_unmix.io.pixel_sizes.lsm_pixel_sizes`.

The acquisition settings (``ScanInformation``: channel names, each detector's
wavelength range) are not used; ``ChannelWavelength`` is the record per image
channel.  A file named ``.lsm`` without LSM metadata is read as a plain TIFF, with
a note.

This module imports no reader module; :mod:`~napari_unmix.io.tiff_stacks` calls it.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np

from .spectral_sidecar import find_sidecar

__all__ = ["LSM_SOURCE", "lsm_spectral_values"]

#: Where the spectral positions of an LSM file come from (``values_source``).
LSM_SOURCE = "LSM metadata"

#: The ends of a channel's range, in metres, that read as a wavelength.
_METRES = (1e-8, 1e-4)


def _centre_nm(start: float, end: float) -> float:
    """The centre of ``[start, end]`` (metres) in nm, in decimal: no float noise from the
    change of unit."""
    total = Decimal(repr(float(start))) + Decimal(repr(float(end)))
    return float((total / 2).scaleb(9))


def _where_to_enter(path: Path) -> str:
    return (f"enter the wavelengths in the dock or a sidecar file "
            f"({path.with_suffix('.spectral.csv').name})")


def lsm_spectral_values(tf, n: int, notes: list):
    """The emission wavelengths of the ``n`` channels of an open LSM file, in nm.

    Parameters
    ----------
    tf : tifffile.TiffFile
        The open file (LSM or not: a file named ``.lsm`` without LSM metadata gets
        a note).
    n : int
        Length of the channel (``C``) axis.
    notes : list of str
        Why no wavelengths were used, when they were not (not when a sidecar file
        beside the stack gives the positions instead).

    Returns
    -------
    values : ndarray of float64, shape (n,), or None
        The centre of every channel's ``ChannelWavelength`` range, in nm.
    unit : str or None
        ``"nm"`` with values, else None.
    """
    path = Path(tf.filehandle.path)
    meta = tf.lsm_metadata if tf.is_lsm else None
    said = find_sidecar(path) is not None  # a sidecar file gives the positions instead
    if meta is None:
        if not said:
            notes.append(f"{path.name} has no Zeiss LSM metadata (no CZ_LSMINFO tag) and "
                         f"was read as a plain TIFF: its {n} channels are numbered 0 to "
                         f"{n - 1}; {_where_to_enter(path)}.")
        return None, None
    ranges = meta.get("ChannelWavelength")
    why = None
    if ranges is None:
        why = "hold no emission wavelength ranges (no ChannelWavelength block)"
    else:
        ranges = np.asarray(ranges, dtype=np.float64)
        if ranges.ndim != 2 or ranges.shape[1] != 2 or len(ranges) != n:
            count = len(ranges) if ranges.ndim == 2 else ranges.size
            why = (f"give {count} emission wavelength ranges (ChannelWavelength) "
                   f"for {n} channels; none were used (there must be one per channel)")
        elif not (np.isfinite(ranges).all() and (ranges >= _METRES[0]).all()
                  and (ranges <= _METRES[1]).all()):
            shown = ", ".join(f"[{a:g}, {b:g}]" for a, b in ranges[:3])
            why = (f"give emission wavelength ranges (ChannelWavelength: {shown}"
                   f"{' ...' if n > 3 else ''}) that do not read as wavelengths in metres, "
                   "as the LSM format stores them; none were used")
    if why is not None:
        if not said:
            notes.append(f"{path.name}: the LSM metadata {why}; its {n} channels are "
                         f"numbered 0 to {n - 1}; {_where_to_enter(path)}.")
        return None, None
    return np.array([_centre_nm(a, b) for a, b in ranges]), "nm"
