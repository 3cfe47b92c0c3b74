"""Which folders are zarr stores: a ``.zarr`` suffix, or zarr metadata inside.

Kept apart from :mod:`~napari_unmix.io.zarr_stacks` (the reader, which needs zarr)
so that the path rules (:mod:`~napari_unmix.io.spectral_sidecar`, the CLI) can tell
a zarr store from a folder of slices without importing the reader.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ZARR_META", "ZARR_SUFFIXES", "is_zarr_folder"]

#: Folder suffixes read as zarr.
ZARR_SUFFIXES = (".zarr",)
#: The metadata files that make a folder a zarr store (v3, v2 group, v2 array).
ZARR_META = ("zarr.json", ".zgroup", ".zarray")


def is_zarr_folder(path) -> bool:
    """Whether ``path`` is a folder to read as zarr (a ``.zarr`` suffix or zarr metadata).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    bool
    """
    path = Path(path)
    if not path.is_dir():
        return False
    return path.suffix.lower() in ZARR_SUFFIXES or any((path / n).is_file() for n in ZARR_META)
