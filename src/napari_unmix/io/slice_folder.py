"""A folder of single-channel TIFF slices read as one stack.

Every ``*.tif``/``*.tiff`` file of the folder is one slice, in natural sort order;
tagged numbers in the names (``z``, ``t``, ``c``/``ch``, ``lambda``) that form a
complete grid arrange the slices on those axes.  Details:
:mod:`napari_unmix.io.readers`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from .lazy import check_declared_size, format_size, want_lazy
from .stack import TIFF_SUFFIXES, StackData
from .tiff_log import log_messages, tifffile_log
from .tiff_stacks import check_series_size

__all__ = ["natural_key", "read_slice_folder", "slice_files"]

# -- small helpers ------------------------------------------------------------------

def natural_key(name: str) -> tuple:
    """Sort key that orders the numbers inside names by value (``ch2`` < ``ch10``).

    Parameters
    ----------
    name : str

    Returns
    -------
    tuple
        Compares numbers by value and text case-insensitively, part by part.
    """
    parts = re.split(r"(\d+)", str(name))
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p.lower()) for p in parts)


# -- folders ------------------------------------------------------------------------

def slice_files(folder) -> list[Path]:
    """The TIFF slices of a folder in natural order (hidden files left out).

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    list of Path
        The ``*.tif``/``*.tiff`` files directly in ``folder``, sorted by
        :func:`natural_key` of their names.
    """
    folder = Path(folder)
    files = [p for p in folder.iterdir()
             if p.suffix.lower() in TIFF_SUFFIXES and not p.name.startswith(".")
             and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


_TAGS = {"z": "Z", "slice": "Z", "t": "T", "tp": "T", "time": "T", "frame": "T",
         "c": "C", "ch": "C", "chan": "C", "channel": "C", "lambda": "C", "l": "C",
         "w": "C", "wl": "C", "band": "C", "em": "C", "ex": "C"}


def _name_grid(files):
    """Axes and index tuples from numbered file names, or None for one stacking axis.

    Returns ``(axes, positions, tagged)``: ``axes`` a string of the varying fields'
    letters (one letter = one axis; ``None`` when one number varies, ``"?"`` when
    several vary but do not form a tagged, complete grid), ``positions`` one index
    tuple per file and ``tagged`` whether the single axis carries a channel tag.
    """
    split = [re.split(r"(\d+)", p.stem) for p in files]
    if len({len(s) for s in split}) != 1:
        return None
    texts = {tuple(s[0::2]) for s in split}
    if len(texts) != 1:
        return None
    text = split[0][0::2]
    nums = np.array([[int(x) for x in s[1::2]] for s in split], dtype=np.int64)
    if nums.size == 0:
        return None
    varying = [j for j in range(nums.shape[1]) if len(set(nums[:, j])) > 1]
    if not varying:
        return None
    letters = []
    for j in varying:
        m = re.search(r"([A-Za-z]+)[_\-\s]*$", text[j])
        letters.append(_TAGS.get(m.group(1).lower()) if m else None)
    if len(varying) == 1:
        return None, None, letters[0] == "C"
    if None in letters or len(set(letters)) != len(letters):
        return "?", None, False
    order = sorted(range(len(varying)), key=lambda i: "TZC".index(letters[i]))
    axes = "".join(letters[i] for i in order)
    levels = [sorted(set(nums[:, varying[i]])) for i in order]
    if int(np.prod([len(v) for v in levels])) != len(files):
        return "?", None, False
    positions = [tuple(levels[a].index(nums[f, varying[i]]) for a, i in enumerate(order))
                 for f in range(len(files))]
    if len(set(positions)) != len(files):
        return "?", None, False
    return axes, positions, True


class SliceLoader:
    """Reads one slice file of a folder as a plane of the stack; picklable (paths only),
    so a lazy folder's dask graph reopens each file by path inside its task."""

    def __init__(self, folder, slice_shape, dtype):
        self.folder, self.slice_shape, self.dtype = str(folder), tuple(slice_shape), dtype

    def __call__(self, f):
        import tifffile

        f = Path(f)
        with tifffile_log() as records:
            try:
                plane = np.asarray(tifffile.imread(f, maxworkers=1)).reshape(self.slice_shape)
                errors = log_messages(records, logging.ERROR)
                if errors:
                    raise ValueError("; ".join(errors))
            except Exception as exc:  # noqa: BLE001 - tifffile raises many types on bad files
                raise ValueError(f"slice {f.name} of {self.folder} could not be read as a "
                                 f"TIFF file: {type(exc).__name__}: {exc}") from None
        return plane.astype(self.dtype, copy=False)


def read_slice_folder(folder, *, lazy: bool | None = None,
                      lazy_threshold: int | None = None) -> StackData:
    """Read a folder of TIFF slices (one file per channel) as one stack.

    Parameters
    ----------
    folder : str or Path
    lazy : bool, optional
        True: always return a dask array; False: never; None (default): when the
        stack is larger than ``lazy_threshold`` bytes.
    lazy_threshold : int, optional
        Defaults to :func:`lazy_threshold`.

    Returns
    -------
    StackData
        ``data`` has the slices on axis 0 (or on ``T``/``Z``/``C`` axes read from the
        file names, see the module docstring).  Spectral positions come from
        ``spectral_axis.csv`` / ``.json`` in the folder.

    Raises
    ------
    ValueError
        When the folder has no TIFF files, a slice cannot be read, or the slices
        differ in shape (the message names the first one that differs).
    """
    import tifffile

    folder = Path(folder)
    files = slice_files(folder)
    if not files:
        raise ValueError(f"{folder} holds no .tif/.tiff files; a folder is read as a stack of "
                         "TIFF slices, one file per channel.")
    shapes, dtypes, axes_list = [], [], []
    for f in files:
        with tifffile_log() as records:
            try:
                with tifffile.TiffFile(f) as tf:
                    if not tf.series:
                        raise ValueError("no image data")
                    s = tf.series[0]
                    check_series_size(f, s, in_memory=False)  # the whole stack: below
                    shapes.append(tuple(s.shape))
                    dtypes.append(s.dtype)
                    axes_list.append(s.axes)
                errors = log_messages(records, logging.ERROR)
                if errors:
                    raise ValueError("; ".join(errors))
            except Exception as exc:  # noqa: BLE001
                raise ValueError(f"slice {f.name} of {folder} could not be read as a TIFF "
                                 f"file: {type(exc).__name__}: {exc}") from None
        if shapes[-1] != shapes[0]:
            raise ValueError(
                f"the slices in {folder} differ in shape: {files[0].name} is {shapes[0]} but "
                f"{f.name} is {shapes[-1]}. Every file must be one channel of the same size; "
                "move other images out of the folder.")
    dtype = np.result_type(*dtypes)
    notes = [f"{len(files)} TIFF slices of {folder.name} read in natural order "
             f"({files[0].name} ... {files[-1].name})."]
    if len(set(dtypes)) > 1:
        kinds = ", ".join(sorted({str(d) for d in dtypes}))
        notes.append(f"the slices have different dtypes ({kinds}); they were converted to "
                     f"{dtype}, which holds all their values.")
    slice_shape = shapes[0]
    slice_axes = axes_list[0] if len(axes_list[0]) == len(slice_shape) else None
    grid = _name_grid(files)
    nbytes = len(files) * int(np.prod(slice_shape)) * dtype.itemsize
    is_lazy = want_lazy(lazy, nbytes, lazy_threshold)
    if not is_lazy:
        try:
            check_declared_size((len(files), *slice_shape), dtype)
        except ValueError as exc:
            raise ValueError(f"{folder}: {exc}") from None

    load = SliceLoader(str(folder), tuple(slice_shape), np.dtype(dtype))

    if is_lazy:
        import dask
        import dask.array as da

        planes = [da.from_delayed(dask.delayed(load)(f), shape=slice_shape, dtype=dtype)
                  for f in files]
        flat = da.stack(planes)
        notes.append(f"{folder.name} opened lazily ({format_size(nbytes)}).")
    else:
        flat = np.stack([load(f) for f in files])
    guessed = True
    if grid is not None and grid[0] == "?":
        notes.append("the file names differ in several numbers that do not form a complete "
                     "grid of tagged axes (z, t, c/ch); the slices were stacked along one axis "
                     "in natural order.")
    if grid is not None and grid[0] not in (None, "?"):
        grid_axes, positions, _ = grid
        sizes = tuple(max(p[a] for p in positions) + 1 for a in range(len(grid_axes)))
        order = np.ravel_multi_index(np.array(positions).T, sizes)
        flat = flat[np.argsort(order)]
        data = flat.reshape(*sizes, *slice_shape)
        stack_axes = grid_axes
        guessed = "C" not in grid_axes
        notes.append(f"file names give the axes {grid_axes} (shape {sizes}).")
    else:
        data = flat
        if grid is not None and grid[2]:
            stack_axes, guessed = "C", False
        else:
            stack_axes = "C"
    axes = stack_axes + slice_axes if slice_axes is not None else None
    if axes is not None and len(set(axes)) != len(axes):
        axes = None
    index = stack_axes.index("C") if "C" in stack_axes else 0
    return StackData(data=data, spectral_axis=index, axes=axes, guessed=guessed, path=folder,
                     notes=notes, lazy=is_lazy)
