"""Which folders are zarr stores: a ``.zarr`` suffix, or zarr metadata inside.

Kept apart from :mod:`~napari_unmix.io.zarr_stacks` (the reader, which needs zarr)
so that the path rules (:mod:`~napari_unmix.io.spectral_sidecar`, the CLI, the
napari reader rule) can tell a zarr store from a folder of slices, and an OME-Zarr
label image from an image, without importing the reader.

OME-Zarr labels (the spec's ``labels`` group beside an image's levels): the group
``img.ome.zarr/labels`` lists its label images in a ``labels`` attribute, and each
label image (``img.ome.zarr/labels/cells``) is a multiscale image of integer ids
marked by an ``image-label`` attribute.  OME-Zarr 0.4 (zarr v2) keeps the
attributes in ``.zattrs``, 0.5 (zarr v3) under ``"ome"`` in ``zarr.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["ZARR_META", "ZARR_SUFFIXES", "is_zarr_folder", "ome_labels_kind",
           "zarr_attributes"]

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


def zarr_attributes(path) -> dict:
    """The attributes of the zarr group or array at ``path`` (v3 ``zarr.json``, v2
    ``.zattrs``), the OME-Zarr 0.5 ``"ome"`` ones merged in; empty when there are none
    or they cannot be read.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
    """
    path = Path(path)
    for name, key in (("zarr.json", "attributes"), (".zattrs", None)):
        try:
            with open(path / name, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            continue
        attrs = doc.get(key) if key is not None and isinstance(doc, dict) else doc
        if isinstance(attrs, dict):
            ome = attrs.get("ome")
            return {**attrs, **ome} if isinstance(ome, dict) else dict(attrs)
    return {}


def ome_labels_kind(path) -> tuple[str, list[str]] | None:
    """Whether ``path`` is OME-Zarr labels: ``("image-label", [])`` for a label image,
    ``("labels", names)`` for the ``labels`` group (the label images it lists), None
    for anything else.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    tuple of (str, list of str) or None
    """
    attrs = zarr_attributes(path)
    if "image-label" in attrs:
        return "image-label", []
    names = attrs.get("labels")
    if isinstance(names, list) and "multiscales" not in attrs:
        return "labels", [str(n) for n in names]
    return None
