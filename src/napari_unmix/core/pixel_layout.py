"""Which image pixel each row of a pixel matrix holds: C order, or block by block.

``stack_to_matrix`` puts the pixels in C order of the spatial axes.  A chunked
(dask) stack whose chunks split a trailing spatial axis cannot be read that way
without gathering whole image rows: a 512 x 512-tiled 4096 x 4096 x 64 stack makes
512 MiB blocks of C-ordered rows, eight times its tiles.  Its matrix is therefore
built block by block (:func:`napari_unmix.core.chunked.blocks.block_pixel_matrix`):
the blocks of the spatial grid in C order, and the pixels of each block in C order
inside it, so that every block of rows is one tile of the stack.

A :class:`PixelLayout` records that order and converts between it and the C order
that users, label images, masks and maps speak: :meth:`~PixelLayout.to_rows`
reorders an image (or a flat C-ordered array) into the rows' order,
:meth:`~PixelLayout.rows_of` and :meth:`~PixelLayout.c_indices` map pixel indices
both ways.  A pixel mask (:func:`check_pixel_mask`) says which pixels of the image
are rows at all.  Nothing here needs dask.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

__all__ = ["PixelLayout", "check_pixel_mask"]


@dataclass(frozen=True)
class PixelLayout:
    """The order of the pixel rows of a matrix made from a stack.

    Parameters
    ----------
    spatial_shape : tuple of int
        The stack's spatial shape.
    chunks : tuple of tuple of int, optional
        The sizes of the blocks along each spatial axis (dask's ``chunks``) when the
        rows go block by block; None for C order.
    """

    spatial_shape: tuple
    chunks: tuple | None = None

    def __post_init__(self):
        shape = tuple(int(s) for s in self.spatial_shape)
        object.__setattr__(self, "spatial_shape", shape)
        if self.chunks is None:
            return
        chunks = tuple(tuple(int(c) for c in axis) for axis in self.chunks)
        if len(chunks) != len(shape) or any(sum(c) != s for c, s in zip(chunks, shape,
                                                                          strict=True)):
            raise ValueError(f"Block sizes {chunks} do not tile the spatial shape {shape}.")
        # rows in block order equal C order when only the first axis is split
        object.__setattr__(self, "chunks", None if all(len(c) == 1 for c in chunks[1:])
                           else chunks)

    @property
    def n_pixels(self) -> int:
        return int(np.prod(self.spatial_shape))

    @property
    def is_c_order(self) -> bool:
        """Whether the rows are in C order of the spatial axes (``stack_to_matrix``'s)."""
        return self.chunks is None

    def block_slices(self):
        """``(row_start, spatial slices)`` of every block, in row order."""
        if self.chunks is None:
            yield 0, tuple(slice(0, s) for s in self.spatial_shape)
            return
        bounds = [np.cumsum((0, *c)) for c in self.chunks]
        start = 0
        for idx in itertools.product(*(range(len(c)) for c in self.chunks)):
            sl = tuple(slice(int(b[i]), int(b[i + 1])) for b, i in zip(bounds, idx,
                                                                      strict=True))
            yield start, sl
            start += int(np.prod([s.stop - s.start for s in sl]))

    def to_rows(self, image) -> np.ndarray:
        """``image`` (the spatial shape, or flat ``(n_pixels,)`` in C order, optionally
        with trailing axes) reordered into the rows' order: flat ``(n_pixels, ...)``."""
        a = np.asarray(image)
        n = self.n_pixels
        if a.shape[:len(self.spatial_shape)] == self.spatial_shape:
            trailing = a.shape[len(self.spatial_shape):]
        elif a.shape[:1] == (n,):
            trailing = a.shape[1:]
            a = a.reshape(self.spatial_shape + trailing)
        else:
            raise ValueError(f"An array of shape {a.shape} is not an image of spatial shape "
                             f"{self.spatial_shape} ({n} pixels).")
        if self.chunks is None:
            return a.reshape((n, *trailing))
        return np.concatenate([a[sl].reshape((-1, *trailing))
                               for _, sl in self.block_slices()])

    def rows_of(self, c_indices) -> np.ndarray:
        """The row of each pixel given by its flat C-order index."""
        c = np.asarray(c_indices, dtype=np.intp)
        if self.chunks is None:
            return c
        coords = np.unravel_index(c, self.spatial_shape)
        return self._rows_from_coords(coords)

    def _grid(self):
        bounds = [np.cumsum((0, *ch)) for ch in self.chunks]
        sizes = [np.asarray(ch, dtype=np.intp) for ch in self.chunks]
        return bounds, sizes

    def _rows_from_coords(self, coords) -> np.ndarray:
        bounds, sizes = self._grid()
        block = [np.searchsorted(b, x, side="right") - 1 for b, x in zip(bounds, coords,
                                                                          strict=True)]
        local = [x - b[i] for x, b, i in zip(coords, bounds, block, strict=True)]
        shape = [s[i] for s, i in zip(sizes, block, strict=True)]
        # the row where each block starts: the pixels of every block before it
        starts = np.array([s for s, _ in self.block_slices()], dtype=np.intp)
        grid = tuple(len(c) for c in self.chunks)
        first = starts[np.ravel_multi_index(tuple(block), grid)]
        offset = np.zeros_like(first)
        for x, s in zip(local, shape, strict=True):
            offset = offset * s + x
        return first + offset

    def c_indices(self, rows) -> np.ndarray:
        """The flat C-order index of the pixel on each row."""
        r = np.asarray(rows, dtype=np.intp)
        if self.chunks is None:
            return r
        starts = np.array([s for s, _ in self.block_slices()], dtype=np.intp)
        slices = [sl for _, sl in self.block_slices()]
        block = np.searchsorted(starts, r, side="right") - 1
        out = np.empty_like(r)
        for b in np.unique(block):
            sel = block == b
            sl = slices[b]
            local = np.unravel_index(r[sel] - starts[b], tuple(s.stop - s.start for s in sl))
            out[sel] = np.ravel_multi_index(tuple(x + s.start for x, s in zip(local, sl,
                                                                              strict=True)),
                                            self.spatial_shape)
        return out


def check_pixel_mask(mask, spatial_shape, n_rows: int, *, name: str = "mask",
                     rows: str = "X has") -> np.ndarray:
    """``mask`` as the bool array of ``spatial_shape`` that selects ``n_rows`` pixels.

    Raises
    ------
    ValueError
        Naming ``name``, the shapes, or the counts (``rows``: whose rows, in words).
    """
    mask = np.asarray(mask)
    shape = tuple(int(s) for s in spatial_shape)
    if mask.dtype != bool or mask.shape != shape:
        raise ValueError(f"{name} must be a bool array of shape {shape}, got {mask.dtype} "
                         f"{mask.shape}.")
    if int(mask.sum()) != n_rows:
        raise ValueError(f"{name} selects {int(mask.sum())} pixels but {rows} {n_rows} rows.")
    return mask
