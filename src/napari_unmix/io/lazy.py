"""Lazy (dask) loading of large stacks: the size threshold and the chunked arrays.

A stack larger than :func:`lazy_threshold` bytes is opened as a dask array that
reads planes on demand: memory-mapped when the data are stored contiguously and
uncompressed, otherwise one TIFF page per chunk.

The arrays' graphs hold no memory map and no open file: every task reopens the
file by path (:class:`MappedFile` maps it anew; the TIFF page reader opens the file
in the process that runs the task), so a graph pickles to a few kB and runs on a
``dask.distributed`` cluster.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["LAZY_ENV", "MappedFile", "available_memory", "check_declared_size", "dask_name",
           "format_size", "from_mapped_file", "lazy_threshold", "plane_chunks", "want_lazy"]

#: Environment variable that sets the lazy-loading threshold in bytes.
LAZY_ENV = "NAPARI_UNMIX_LAZY_BYTES"

_GIB = 1 << 30


def _total_ram() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now, or None when unknown.

    ``MemAvailable`` of ``/proc/meminfo`` (Linux), else the free physical pages.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_AVPHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def check_declared_size(shape, dtype, *, stored_bytes=None, in_memory=True) -> int:
    """Check the size a file's header declares before anything of that size is allocated.

    A crafted or damaged header can declare any shape; reading it would allocate
    that much first and fail afterwards.

    Parameters
    ----------
    shape : tuple of int
    dtype : numpy dtype
        What the header declares.
    stored_bytes : int, optional
        For data stored uncompressed: the bytes the file holds, which the data must
        fit in.
    in_memory : bool, default True
        The data are to be read whole: they must fit in the available memory
        (:func:`available_memory`).

    Returns
    -------
    int
        The declared size in bytes.

    Raises
    ------
    ValueError
        When the declared data cannot be in the file, or cannot fit in memory; the
        message (without the file name: the caller adds it) gives both sizes.
    """
    shape = tuple(int(n) for n in shape)
    nbytes = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    declared = f"shape {shape} of {np.dtype(dtype)} ({format_size(nbytes)})"
    if stored_bytes is not None and nbytes > stored_bytes:
        raise ValueError(f"its header declares {declared}, but the file holds only "
                         f"{format_size(stored_bytes)}: it is truncated or its header is "
                         "damaged.")
    avail = available_memory() if in_memory else None
    if avail is not None and nbytes > avail:
        raise ValueError(f"it holds {declared}, more than the {format_size(avail)} of memory "
                         "available; free memory, crop the stack, or read it lazily "
                         "(open_stack(..., lazy=True); napari does so for large files).")
    return nbytes


def lazy_threshold() -> int:
    """Size in bytes above which stacks open lazily (as dask arrays).

    ``$NAPARI_UNMIX_LAZY_BYTES`` if set (e.g. ``2e9``), else 1 GiB or a quarter of
    the physical memory, whichever is smaller.

    Returns
    -------
    int
        The threshold in bytes.

    Raises
    ------
    ValueError
        When ``$NAPARI_UNMIX_LAZY_BYTES`` is not a number, or is negative.
    """
    env = os.environ.get(LAZY_ENV)
    if env:
        try:
            value = float(env)
        except ValueError:
            raise ValueError(f"${LAZY_ENV}={env!r} is not a number of bytes; set it to e.g. "
                             "2e9 or unset it.") from None
        if not value >= 0:
            raise ValueError(f"${LAZY_ENV}={env!r} must be >= 0 bytes.")
        return int(value)
    ram = _total_ram()
    return min(_GIB, ram // 4) if ram else _GIB


def want_lazy(lazy, nbytes, threshold) -> bool:
    """Whether a stack of ``nbytes`` bytes is to be read lazily.

    Parameters
    ----------
    lazy : bool or None
        The caller's choice; None lets the size decide.
    nbytes : int
        Size of the stack in bytes.
    threshold : int or None
        Size in bytes above which the stack is read lazily; None: :func:`lazy_threshold`.

    Returns
    -------
    bool
        ``bool(lazy)`` when ``lazy`` is given, else ``nbytes > threshold``.
    """
    if lazy is not None:
        return bool(lazy)
    threshold = lazy_threshold() if threshold is None else threshold
    return nbytes > threshold


def plane_chunks(shape, axes=None) -> tuple:
    """Dask chunks of one image plane each.

    Parameters
    ----------
    shape : tuple of int
        Shape of the array.
    axes : str, optional
        One letter per axis; when it names ``Y``, a plane spans ``Y`` and every
        axis after it, else the last two axes.

    Returns
    -------
    tuple of int
        1 for every axis before the plane, the full size for the plane's axes.
    """
    first = axes.index("Y") if axes and "Y" in axes and len(axes) == len(shape) else \
        max(0, len(shape) - 2)
    return tuple(1 for _ in shape[:first]) + tuple(shape[first:])


def dask_name(path, *parts) -> str:
    """A dask key for a lazily read file, from its identity (so dask never hashes the data).

    Parameters
    ----------
    path : str or Path
        The file; its resolved path, modification time and size enter the key.
    *parts
        Anything else that tells arrays of the same file apart (series, shape ...).

    Returns
    -------
    str
        ``"napari-unmix-<token>"``.
    """
    from dask.base import tokenize

    st = Path(path).stat()
    return "napari-unmix-" + tokenize(str(Path(path).resolve()), st.st_mtime_ns, st.st_size,
                                      *parts)


class MappedFile:
    """Read-only array-like over raw data in a file, mapped anew by path for every read.

    It holds the path, the byte offset, shape, dtype and order of the data, never a
    memory map or an open handle: pickled (to a ``dask.distributed`` worker) it is a
    few hundred bytes, and every read maps the file where it runs and returns an
    in-memory copy of what was asked for.  ``dask.array.from_array`` copies objects
    that have a ``copy`` method (a memory map would be read whole); this has none.

    Parameters
    ----------
    path : str or Path
    offset : int
        Byte offset of the first element.
    shape : tuple of int
    dtype : numpy dtype
        With the file's byte order.
    order : {"C", "F"}, default "C"
    """

    def __init__(self, path, offset, shape, dtype, order="C"):
        self.path = str(path)
        self.offset = int(offset)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self.order = order

    def __getitem__(self, key):
        mm = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset,
                       shape=self.shape, order=self.order)
        try:
            return np.array(mm[key])
        finally:
            del mm


def from_mapped_file(mapped, chunks, name):
    """A dask array over a :class:`MappedFile`, whose chunks are read as in-memory copies.

    Parameters
    ----------
    mapped : MappedFile
    chunks : tuple of int
        Dask chunks, e.g. from :func:`plane_chunks`.
    name : str
        Dask key, e.g. from :func:`dask_name`.

    Returns
    -------
    dask.array.Array
        Its graph pickles to a few kB whatever the size of the file.
    """
    import dask.array as da

    return da.from_array(mapped, chunks=chunks, asarray=True, name=name, lock=False,
                         meta=np.empty((0,) * mapped.ndim, dtype=mapped.dtype))


def format_size(nbytes: int) -> str:
    """A size for the notes: ``"1.23 GB"`` from 0.1 GB on, else ``"12.3 MB"``.

    Parameters
    ----------
    nbytes : int
        Size in bytes.

    Returns
    -------
    str
    """
    if nbytes < 1e5:
        return f"{nbytes} bytes"
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.1f} MB"
