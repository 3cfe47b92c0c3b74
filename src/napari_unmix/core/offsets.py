"""Move the constant part of fitted spectra into a locked flat row.

An offset present in every pixel (the non-resonant background of CARS, an SRS or
detector offset) makes NNMF non-unique: adding ``c`` to every channel of a
component's spectrum ``h_j`` and removing ``c w_j / level`` from the map of a flat
row ``level * 1`` leaves ``W H`` unchanged.  The fit therefore keeps whatever
share of the offset its seeds carried, and ROI seeds carry all of it.

:func:`move_offsets_to_flat_row` picks one representative of that family: every
other fitted spectrum is lowered until it touches zero (its minimum over the
channels is moved into the flat row), which is the usual convention for
baseline-free Raman spectra.  ``W H`` does not change, only how it is split
between the flat row and the others; the maps of the other components do not
change at all.
"""

from __future__ import annotations

import numpy as np

__all__ = ["move_offsets_to_flat_row"]


def move_offsets_to_flat_row(W, H, *, flat, keep=()):
    """Lower every spectrum but the flat row's to zero minimum, the flat map taking it up.

    Parameters
    ----------
    W : ndarray (n_pixels, k)
    H : ndarray (k, n_channels)
        A non-negative factorisation whose row ``flat`` of ``H`` is constant.
    flat : int
        Index of the flat row.
    keep : sequence of int, optional
        Rows to leave as they are (locked spectra stay bit-identical).

    Returns
    -------
    W, H : ndarray
        New arrays of the input dtypes; ``W @ H`` is unchanged up to rounding.
    moved : ndarray (k,)
        The amount taken off each spectrum (0 for ``flat`` and ``keep``).

    Raises
    ------
    ValueError
        When row ``flat`` is not constant and positive.
    """
    W = np.asarray(W)
    H = np.asarray(H)
    level = float(H[flat, 0])
    if not (level > 0 and np.all(H[flat] == H[flat, 0])):
        raise ValueError(f"Row {flat} of H is not a positive constant spectrum; offsets can "
                         "only be moved into a flat row.")
    fixed = {int(flat), *(int(j) for j in keep)}
    rows = [j for j in range(H.shape[0]) if j not in fixed]
    moved = np.zeros(H.shape[0])
    if not rows:
        return W.copy(), H.copy(), moved
    moved[rows] = np.maximum(H[rows].min(axis=1), 0.0)
    H_new = H.astype(np.float64)
    H_new[rows] -= moved[rows, None]
    W_new = W.astype(np.float64)
    W_new[:, flat] += W_new[:, rows] @ (moved[rows] / level)
    # exact zeros where the minimum was (no -0.0 or rounding below zero)
    H_new[rows] = np.maximum(H_new[rows], 0.0)
    return W_new.astype(W.dtype), H_new.astype(H.dtype), moved
