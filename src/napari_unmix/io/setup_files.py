"""A saved setup: an analysis config file and, where it keeps label ids, its label image.

A setup is an :class:`~napari_unmix.core.config.AnalysisConfig` saved as JSON (what
``napari-unmix run --config`` reads).  Region seeds are kept in the file as masks,
except where a mask cannot say what a label says: labels painted plane by plane on a
z / t series seed every plane of a per-plane run from that plane's own labels, while
one mask seeds every plane alike.  Such a setup keeps its rows as label ids
(``RoiLabel``) and its label image goes beside the file, ``<name>.labels.tif`` (a
zlib-compressed TIFF of the integer ids, in the image's spatial shape), named in the
config's ``label_image`` with its checksum (:class:`~napari_unmix.core.config.LabelImageFile`).

:func:`write_setup` writes the label image first and then the config, each atomically
(a temporary file, then a rename), so a config never names a label image that is not
whole; a failed config write leaves the new label image beside the old config, whose
checksum then refuses it.  :func:`read_setup_labels` reads the label image a config
names and refuses a missing one, or one whose checksum is not the recorded one (its
ids would seed other pixels).  :func:`write_label_image` is the one writer of such a
label image: a result folder keeps the label image of a label-seeded run the same way
(:func:`napari_unmix.io.write_analysis_outputs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core._files import atomic_path, file_path
from ..core.analysis import labels_sha256
from ..core.config import AnalysisConfig, LabelImageFile

__all__ = ["LABELS_SUFFIX", "SavedSetup", "read_setup_labels", "setup_labels_path",
           "write_label_image", "write_setup"]

#: The label image of a setup ``<name>.json`` is ``<name>.labels.tif`` beside it.
LABELS_SUFFIX = ".labels.tif"


@dataclass(frozen=True)
class SavedSetup:
    """The files :func:`write_setup` wrote: the config, and its label image (or None)."""

    config: Path
    labels: Path | None = None


def setup_labels_path(path) -> Path:
    """Where the label image of the setup ``path`` goes: ``<name>.labels.tif`` beside it."""
    path = Path(path)
    return path.with_name(path.stem + LABELS_SUFFIX)


def write_setup(path, config: AnalysisConfig, *, labels=None) -> SavedSetup:
    """Write ``config`` to ``path`` (JSON) and, when given, its label image beside it.

    Parameters
    ----------
    path : str or Path
        The config file (``.json``).
    config : AnalysisConfig
    labels : array_like of int, optional
        The label image whose ids the config's ``RoiLabel`` sources name: written to
        :func:`setup_labels_path` and named in the config's ``label_image``.

    Returns
    -------
    SavedSetup

    Raises
    ------
    ValueError
        A label image that is not an integer array.
    OSError
        When a file cannot be written (nothing half-written is left).
    """
    path = file_path(path, example="setup.json")
    if labels is None:
        return SavedSetup(config.replace(label_image=None).save(path))
    beside = setup_labels_path(path)
    ref = write_label_image(beside, labels)
    return SavedSetup(config.replace(label_image=ref).save(path), beside)


def write_label_image(path, labels) -> LabelImageFile:
    """Write the label image ``labels`` to ``path`` (a zlib-compressed TIFF), atomically.

    The ids, dtype and shape are kept exactly (a 1-D line of labels is stored as one
    row, ``(1, N)``: its checksum is the same, and the readers fit length-1 axes).

    Parameters
    ----------
    path : str or Path
        The file, named in the config beside it by its name alone.
    labels : array_like of int (or bool)

    Returns
    -------
    LabelImageFile
        The file's name and the image's checksum
        (:func:`~napari_unmix.core.analysis.labels_sha256`), for the config's
        ``label_image``.

    Raises
    ------
    ValueError, OSError
        ``labels`` of another dtype than integers (or bool); a failed write, which
        leaves nothing at ``path``.
    """
    import tifffile

    path = Path(path)
    lab = np.ascontiguousarray(np.asarray(labels))
    if lab.dtype.kind not in "iub":
        raise ValueError(f"a label image holds integer ids, not {lab.dtype} values.")
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, lab if lab.ndim >= 2 else lab.reshape(1, -1),
                         photometric="minisblack", compression="zlib")
    return LabelImageFile(path.name, labels_sha256(lab))


def read_setup_labels(config: AnalysisConfig, path) -> np.ndarray | None:
    """The label image that ``config``, read from the file ``path``, names (None when it
    names none).

    Raises
    ------
    FileNotFoundError
        The label image is not beside the config.
    ValueError
        It cannot be read, or it is not the image the config was saved with (another
        checksum).
    """
    ref = config.label_image
    if ref is None:
        return None
    import tifffile

    where = ref.resolve(path)
    if not where.is_file():
        raise FileNotFoundError(f"{Path(path).name} takes its label ids from the label image "
                                f"{ref.path}, which is not beside it ({where.parent}); put it "
                                "back (the two files belong together)")
    try:
        lab = np.asarray(tifffile.imread(where))
    except Exception as exc:  # noqa: BLE001 - empty, truncated or foreign files
        raise ValueError(f"the label image {ref.path} of {Path(path).name} cannot be read "
                         f"({type(exc).__name__}: {exc})") from None
    if lab.dtype.kind not in "iub" or labels_sha256(lab) != ref.sha256:
        raise ValueError(f"the label image {ref.path} was changed since {Path(path).name} "
                         "was saved (its checksum is not the recorded one), so its label "
                         "ids would seed other pixels; put back the file saved with it, or "
                         "save the setup or result again")
    return lab
