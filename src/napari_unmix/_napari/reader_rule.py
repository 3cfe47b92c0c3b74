"""Which files the napari reader hook claims, and which it leaves to napari's own reader.

napari offers a file to every reader whose filename patterns match, so for a
``.tif`` or ``.npy`` it asks whether napari's builtins or napari-unmix should read
it (and remembers the answer when asked to).  napari-unmix claims a file only when
it is, or may be, a spectral stack; everything else is left to napari's reader,
which shows ordinary images better.  :func:`claim` says which, and why.

The rule
--------
Claimed (napari-unmix reads them):

* napari-unmix results (``.npz`` bundles, result folders);
* zarr and OME-Zarr stacks (``.zarr`` folders, or folders with zarr metadata): one
  layer with the spectral axis, where napari-ome-zarr would open one layer per
  channel;
* folders of TIFF slices (one file per channel): other files in the folder, such
  as a Leica ``03.txt`` metadata file or a spectral-axis sidecar, are fine
  (napari's builtins fail on them);
* ``.npz`` stacks (their arrays are read by name, see :mod:`napari_unmix.io`);
* TIFF files with *spectral evidence*: napari-unmix's own metadata, a
  spectral-axis sidecar file beside them (``name.spectral.csv`` / ``.json``), a
  lambda (``E``) axis, or a channel (``C``) axis with at least two channels that
  OME-XML, ImageJ or Zeiss LSM metadata name (also stored interleaved, which
  tifffile reads as a samples axis ``S`` of more than four samples); Zeiss ``.lsm``
  files (lambda stacks) are TIFF files and follow the same rule;
* ``.npy`` files with a spectral-axis sidecar file;
* files that look like ours but cannot be parsed (a damaged TIFF): the reader then
  says what is wrong instead of napari's generic failure.

Declined (left to napari's builtins):

* single 2-D images (one page, a single plane), and RGB / RGBA images;
* OME-Zarr labels (a label image such as ``img.ome.zarr/labels/cells``, or the
  ``labels`` group): integer ids, not spectra; napari-ome-zarr opens them as Labels
  layers, which the dock takes as seeds;
* TIFF files without spectral evidence: plain multi-page stacks whose axes
  nothing names (tifffile's ``Q`` / ``I`` axes), z-stacks and time series without
  a channel axis;
* ``.npy`` files without a sidecar (an array says nothing about its axes).

A declined stack can still be unmixed: napari's reader opens it, and the dock
offers every image with three or more axes (choose its spectral axis there, and
enter its spectral values in the dock).  When "napari-unmix" was remembered as the
reader for an extension, napari reports that it refused such a file and offers
its other readers.

Nothing here imports Qt or napari; only file headers are read.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["claim"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_MAGIC = {".tif": _TIFF_MAGIC, ".tiff": _TIFF_MAGIC, ".lsm": _TIFF_MAGIC,
          ".npy": (b"\x93NUMPY",),
          ".npz": (b"PK\x03\x04", b"PK\x05\x06")}


def _magic_ok(path: Path) -> bool:
    magic = _MAGIC.get(path.suffix.lower())
    if magic is None or not path.is_file():  # is_file: no FIFOs or devices (no hang)
        return False
    with open(path, "rb") as fh:
        head = fh.read(8)
    return head.startswith(magic)


def _tiff_evidence(path: Path) -> tuple[bool, str]:
    import tifffile

    from ..io.stack import META_KEY, SPATIAL_LETTERS

    try:
        with tifffile.TiffFile(path) as tf:
            if not tf.series:
                return True, "no image series: the reader says what is wrong"
            s = tf.series[0]
            axes, shape = s.get_axes(True), tuple(s.get_shape(True))
            rgb = axes.endswith("S") and shape[-1] in (3, 4)
            core = [a for a in (axes[:-1] if rgb else axes) if a not in SPATIAL_LETTERS]
            if not core:
                return False, "an RGB image" if rgb else "a single 2-D image"
            own = tf.is_imagej and META_KEY in ((tf.imagej_metadata or {}).get(
                "Properties") or {})
            if not own and tf.is_shaped:
                meta = tf.shaped_metadata
                own = bool(meta) and isinstance(meta[0], dict) and META_KEY in meta[0]
            if own:
                return True, "napari-unmix metadata"
            if "E" in axes:
                return True, "a lambda (E) axis"
            named = tf.is_ome or tf.is_imagej or tf.is_lsm
            if named and "C" in axes and shape[axes.index("C")] >= 2:
                return True, "a channel axis named by its metadata"
            if named and axes.endswith("S") and shape[-1] > 4:
                # channels stored interleaved ("contig"): tifffile calls them samples
                return True, "a channel axis stored as samples, named by its metadata"
    except Exception:  # noqa: BLE001 - damaged: the reader explains it
        return True, "a TIFF that cannot be parsed: the reader says what is wrong"
    return False, "no spectral evidence (no channel or lambda axis, metadata or sidecar)"


def claim(path) -> tuple[bool, str]:
    """Whether napari-unmix reads ``path`` (see the module's rule), and why.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    claimed : bool
    reason : str
    """
    from ..io import is_result_bundle
    from ..io.readers import find_sidecar, slice_files
    from ..io.zarr_folders import ome_labels_kind
    from ..io.zarr_stacks import is_zarr_folder

    path = Path(path)
    if path.is_dir():
        if is_result_bundle(path):
            return True, "a napari-unmix result folder"
        if is_zarr_folder(path):
            kind = ome_labels_kind(path)
            if kind is not None:
                return False, ("an OME-Zarr label image" if kind[0] == "image-label" else
                               "the labels group of an OME-Zarr image") + (
                    ": integer label ids, not a spectral stack; napari-ome-zarr opens it "
                    "as a Labels layer, which the unmixing dock takes as seeds")
            return True, "a zarr / OME-Zarr stack (one layer with its spectral axis)"
        if slice_files(path):
            return True, "a folder of TIFF slices"
        return False, "a folder without TIFF slices"
    if not _magic_ok(path):
        return False, "not a TIFF, LSM, .npy or .npz file"
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return True, "an .npz stack or result"
    if find_sidecar(path) is not None:
        if suffix == ".npy":
            return True, "a spectral-axis sidecar file"
        claimed, reason = _tiff_evidence(path)
        single = reason in ("an RGB image", "a single 2-D image")
        return (False, reason) if single else (True, "a spectral-axis sidecar file")
    if suffix == ".npy":
        return False, "an .npy array without a spectral-axis sidecar file"
    return _tiff_evidence(path)
