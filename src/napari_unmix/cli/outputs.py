"""The output folder of a CLI run: checked before the fit, written as a whole set.

Both ``run`` and ``demo`` write the same set of files per analysis (maps, spectra,
composite, ``config.json``, ``result.json``, ``result.npz``) through
:func:`napari_unmix.io.write_analysis_outputs`, which writes the set into a
temporary folder and swaps it in whole.  :func:`check_out` refuses a bad ``--out``
before a long computation, without creating it (a failed run leaves no folder):
an empty path, a file, a folder holding or being one of the inputs, a folder with
files that are no part of an output set.  :func:`prepare_out` creates the demo's
top folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core._files import atomic_path
from ..io import StackLayout, check_output_folder, write_analysis_outputs
from .console import CLIError

__all__ = ["OUTPUT_KINDS", "check_out", "check_output_files", "prepare_out",
           "spatial_pixel_size", "write_output_file", "write_outputs"]

#: The kinds of file :func:`~napari_unmix.io.write_analysis_outputs` returns, in the
#: order they are named.
OUTPUT_KINDS = ("maps", "spectra", "composite", "config", "labels", "json", "bundle")


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
        ``out`` is empty or a file, or the folder cannot be created.
    """
    if not str(out).strip():
        raise CLIError("--out is empty; give the output folder (it is created if missing).")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file; give a folder (it is created if missing).")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create the output folder {out}: {exc.strerror or exc}.") \
            from None
    return out


def _where(out: Path, real_out: Path, what: str, given, real: Path) -> str | None:
    """How ``--out`` would overwrite the input ``given`` (None: it would not)."""
    if real == real_out:
        return f"--out {out} is {what} {given}"
    if real_out in real.parents:
        return f"--out {out} holds {what} {given}"
    if real.is_dir() and real in real_out.parents:
        return f"--out {out} is inside {what} {given}"
    return None


def check_out(out, inputs=()) -> Path:
    """Refuse an ``--out`` that cannot take the output set, before any computation.

    Nothing is created: the folder is made only when the outputs are written.

    Parameters
    ----------
    out : str or Path
        ``--out``.
    inputs : iterable of (str, path or None)
        What each input is (``"the input stack"``, ``"--spectra"`` ...) and its
        path; ``None`` paths are skipped.  Paths are compared resolved (symbolic
        links followed).

    Returns
    -------
    Path

    Raises
    ------
    CLIError
        ``out`` is empty, a file, is / holds / lies inside an input, holds files
        that are no part of an output set, or cannot be created.
    """
    if not str(out).strip():
        raise CLIError("--out is empty; give the output folder (it is created if missing), "
                       "e.g. --out results.")
    out = Path(out)
    real_out = out.resolve()
    for what, given in inputs:
        if given is None or not str(given).strip():
            continue
        real = Path(given).resolve()
        clash = _where(out, real_out, what, given, real)
        if clash:
            # beside the input when --out lies inside it (beside --out would be too)
            base = real if real in real_out.parents else real_out
            sibling = base.with_name(base.name + "-unmixed")
            raise CLIError(f"{clash}: the outputs would replace it. Give a folder that holds "
                           f"none of the inputs, e.g. --out {sibling}.")
    try:
        check_output_folder(out)
    except ValueError as exc:
        raise CLIError(f"--out {exc}") from None
    parent = next(p for p in (real_out, *real_out.parents) if p.exists())
    if not parent.is_dir():
        raise CLIError(f"cannot create the output folder {out}: {parent} is a file.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"cannot create the output folder {out}: {parent} is not writable.")
    return out


def check_output_files(outputs, inputs) -> None:
    """Refuse output files that would replace an input, or each other, before any work.

    Parameters
    ----------
    outputs : iterable of (str, path or None)
        Each output file's flag (``"--seeds"``, ``"--json"`` ...) and path; ``None``
        paths are skipped.
    inputs : iterable of (str, path or None)
        What each input is and its path.  An input file's spectral sidecar
        (``<stack>.spectral.csv`` / ``.json``) counts as an input; so does every file
        inside an input folder.

    Raises
    ------
    CLIError
        An output is an input, lies inside an input folder, or is another output; or
        it is a folder, or its folder is missing or not writable.
    """
    from ..io.spectral_sidecar import find_sidecar
    from ..io.zarr_folders import is_zarr_folder

    taken: list[tuple[str, Path]] = []
    for what, given in inputs:
        if given is None or not str(given).strip():
            continue
        real = Path(given).resolve()
        taken.append((f"{what} {given}", real))
        if real.is_file() or is_zarr_folder(real):  # a zarr store's sidecar lies beside it
            for suffix in (".spectral.csv", ".spectral.json"):
                taken.append((f"the spectral axis of {given}",
                              real.with_name(real.stem + suffix)))
            sidecar = find_sidecar(real)
            if sidecar is not None:
                taken.append((f"the spectral axis of {given}", sidecar.resolve()))
    for flag, path in outputs:
        if path is None or not str(path).strip():
            continue
        real = Path(path).resolve()
        for what, other in taken:
            if real == other or (other.is_dir() and other in real.parents):
                where = "is" if real == other else "lies inside"
                raise CLIError(f"{flag} {path} {where} {what}: writing it would replace "
                               f"that. Give another file name, e.g. {flag} "
                               f"{real.with_name(real.stem + '-suggested' + real.suffix)}.")
        taken.append((flag, real))
        _check_writable(flag, path, real)


def _check_writable(flag, path, real: Path) -> None:
    """Refuse, before any work, an output file that could not be written."""
    folder = real.parent
    if real.is_dir():
        raise CLIError(f"{flag} {path} is a folder; give a file name, e.g. {flag} "
                       f"{Path(path) / 'out'}.")
    if not folder.is_dir():
        raise CLIError(f"{flag} {path}: the folder {folder} does not exist; create it first "
                       "or give a file in an existing folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {path}: the folder {folder} is not writable; give a file in "
                       "a folder you can write to.")


def write_output_file(flag, path, write) -> Path:
    """Write one output file atomically, a failure named by its flag and file.

    Parameters
    ----------
    flag : str
        The option that names the file (``"--seeds"``, ``"--json"`` ...).
    path : str or Path
    write : callable
        ``write(tmp)`` writes the file's content to the path ``tmp``, a temporary
        file beside ``path`` that is renamed onto it when ``write`` returns.

    Returns
    -------
    Path

    Raises
    ------
    CLIError
        The write failed (no space left, no permission ...): ``path`` is left as it
        was, and no temporary file is left behind.
    """
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            write(tmp)
    except OSError as exc:
        raise CLIError(f"cannot write {flag} {path}: {exc.strerror or exc}; nothing was "
                       "written there (a file already there is kept). Free some space or "
                       "give a file in a folder you can write to.") from None
    return path


def spatial_pixel_size(stack):
    """The stack's pixel sizes over its spatial axes, as ``write_outputs`` takes them.

    Parameters
    ----------
    stack : StackData

    Returns
    -------
    tuple (scale, units) or None
        Both without the spectral axis; None when the stack has no pixel sizes.
    """
    if stack.scale is None:
        return None
    axis = stack.spectral_axis
    return tuple(tuple(v for i, v in enumerate(seq) if i != axis)
                 for seq in (stack.scale, stack.units))


def write_outputs(out_dir, res, spatial_shape, *, colors=None, extra=None, pixel_size=None,
                  maps_format="tiff", spectral_axis=None, labels=None) -> list[str]:
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
    pixel_size : tuple (scale, units), optional
        The stack's pixel sizes over the spatial axes, kept in the maps.
    maps_format : {"tiff", "ome-zarr"}, default "tiff"
        ``--out-format`` (:func:`~napari_unmix.io.write_analysis_outputs`).
    spectral_axis : int, optional
        The stack's spectral axis, kept in ``result.json`` (``stack_layout``): napari
        opens the maps of a ``(Z, C, Y, X)`` stack on its axes with it.
    labels : ndarray of int, optional
        The label image of a run seeded from label ids, kept as ``labels.tif`` and
        named in ``config.json``: ``--config`` of the folder reads it.

    Returns
    -------
    list of str
        File names, in :data:`OUTPUT_KINDS` order (the per-plane composites of a
        z series as ``"N x composite_z*.png"``).
    """
    layout = None if spectral_axis is None else StackLayout(spectral_axis=int(spectral_axis))
    files = write_analysis_outputs(out_dir, res, spatial_shape, colors=colors, extra=extra,
                                   pixel_size=pixel_size, maps_format=maps_format,
                                   stack_layout=layout, labels=labels)
    names = []
    for key in OUTPUT_KINDS:
        v = files.get(key)
        if isinstance(v, list):
            if len(v) == 1:
                names.append(v[0].name)
            elif v:
                names.append(f"{len(v)} x composite_z*.png")
        elif v is not None and Path(v) == Path(out_dir):
            names.append("the OME-Zarr maps (the folder itself)")
        elif v is not None:
            names.append(v.name)
    return names
