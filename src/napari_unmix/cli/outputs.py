"""The output folder of a CLI run: created before the fit, filled with the output set.

Both ``run`` and ``demo`` write the same set of files per analysis (maps, spectra,
composite, ``result.json``, ``result.npz``) through
:func:`napari_unmix.io.write_analysis_outputs`; this module prepares the folder so
that a bad ``--out`` fails before a long computation, and names what was written
for the closing message.
"""

from __future__ import annotations

from pathlib import Path

from ..io import write_analysis_outputs
from .console import CLIError

__all__ = ["OUTPUT_KINDS", "prepare_out", "write_outputs"]

#: The kinds of file :func:`~napari_unmix.io.write_analysis_outputs` returns, in the
#: order they are named.
OUTPUT_KINDS = ("maps", "spectra", "composite", "json", "bundle")


def prepare_out(out) -> Path:
    """Create the output folder before any long computation, or say why it cannot be.

    Parameters
    ----------
    out : str or Path
        The folder; created with its parents when missing.

    Returns
    -------
    Path

    Raises
    ------
    CLIError
        ``out`` is a file, or the folder cannot be created.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file; give a folder (it is created if missing).")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create the output folder {out}: {exc.strerror or exc}.") \
            from None
    return out


def write_outputs(out_dir, res, spatial_shape, *, colors=None, extra=None) -> list[str]:
    """Write the output set of one result and name the files written.

    Parameters
    ----------
    out_dir : str or Path
    res : UnmixResult
    spatial_shape : tuple of int
        Spatial shape of the analysed stack.
    colors : list of str, optional
        Composite colours, one per component.
    extra : dict, optional
        Added to ``result.json``.

    Returns
    -------
    list of str
        File names, in :data:`OUTPUT_KINDS` order (the per-plane composites of a
        z series as ``"N x composite_z*.png"``).
    """
    files = write_analysis_outputs(out_dir, res, spatial_shape, colors=colors, extra=extra)
    names = []
    for key in OUTPUT_KINDS:
        v = files.get(key)
        if isinstance(v, list):
            if len(v) == 1:
                names.append(v[0].name)
            elif v:
                names.append(f"{len(v)} x composite_z*.png")
        elif v is not None:
            names.append(v.name)
    return names
