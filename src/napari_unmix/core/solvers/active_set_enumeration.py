"""Exact fixed-H NNLS by enumerating the passive sets (``k <= 6``), for :mod:`.active_set`.

There are ``k 2^(k-1)`` functionals (80 for k = 5, 192 for k = 6).  One matrix
product evaluates all of them for a block of pixels, their signs are packed into
bytes, and precomputed tables turn each byte into the mask of the passive sets a
component agrees with (a set is a bit of an int64, hence k <= 6); OR over a
component's bytes and AND over the components leaves the optimal set.  No
iteration and no per-pixel branching; faster than pivoting for every k it covers
(``benchmarks/nnls_speed.py``).  The rare pixels left without a consistent set
(values at rounding level) are handed to the pivoting
(:mod:`.active_set_pivoting`).
"""

from __future__ import annotations

import functools

import numpy as np

from .active_set_basis import Basis, subsets

__all__ = ["ENUM_MAX_K", "Enumeration", "enum_structure"]

#: largest k solved by enumerating the passive sets (2^k sets fit an int64 mask)
ENUM_MAX_K = 6


@functools.cache
def enum_structure(k: int):
    """The k-only part of the enumeration tables: ``(sets, hp, L, wcol)``, cached per k.

    ``sets[j, g]`` is the code of the set made of ``j`` and the other components
    whose ranks (among the k-1 others) are the bits of ``g``.  Each component has
    ``hp = max(2^(k-1), 8)`` sign columns, ``nb = hp / 8`` bytes once packed.
    Component ``j`` agrees with passive set ``F`` when ``j in F`` exactly matches
    sign bit ``g(F - {j})``; ``L[j * nb + c, v]`` is the mask (bit ``F`` set, 2^k
    bits in an int64) of the sets ``F`` whose bit lies in byte ``c`` and agrees
    with that byte's value ``v``.  OR over the bytes of a component gives every
    set it agrees with; AND over the components gives the optimal set.
    ``wcol[F, j]`` is the column of ``Mx`` that gives ``w_j`` when ``F`` is optimal
    (the last one, which is zero, when ``j`` is not in ``F``).
    """
    h = 1 << (k - 1)
    hp = max(h, 8)
    nb = hp // 8
    g = np.arange(h)
    sets = np.stack([(g & ((1 << j) - 1)) | ((g >> j) << (j + 1)) | (1 << j)
                     for j in range(k)])
    F = np.arange(1 << k)
    bit_of_F = np.uint64(1) << F.astype(np.uint64)
    values = np.arange(256)
    L = np.zeros((k * nb, 256), dtype=np.uint64)
    wcol = np.empty((1 << k, k), dtype=np.int64)
    for j in range(k):
        gF = (F & ((1 << j) - 1)) | ((F >> (j + 1)) << j)     # code of F - {j}
        inside = (F >> j) & 1
        wcol[:, j] = np.where(inside, j * hp + gF, k * hp)
        for c in range(nb):
            mine = (gF >> 3) == c                              # F whose bit is in byte c
            wants = (values[None, :] >> (gF[mine] & 7)[:, None]) & 1
            agree = wants == inside[mine][:, None]             # (sets in byte c, 256)
            L[j * nb + c] = np.bitwise_or.reduce(
                np.where(agree, bit_of_F[mine][:, None], np.uint64(0)), axis=0)
    return sets, hp, L.view(np.int64), wcol


def _enum_tables(basis: Basis):
    """``Mx`` and ``T`` (k*hp + 1 columns): every functional of the enumeration.

    Column ``j * hp + g`` holds ``v_j(F')`` for the set ``F'`` made of ``j`` and
    the other components coded by ``g`` (see :func:`enum_structure`), with
    threshold ``T[j * hp + g]``.  The last column is zero: the abundance of a
    component outside the optimal set is read from there.  It and the padding
    columns have an infinite threshold, so they never read positive.
    """
    k = basis.k
    sets, hp = enum_structure(k)[:2]
    Q = basis.inverses(subsets(k))
    bound = basis.bound(Q)
    Mx = np.zeros((k, k * hp + 1))
    T = np.full(k * hp + 1, np.inf)
    for j in range(k):
        cols = j * hp + np.arange(sets.shape[1])
        Mx[:, cols] = Q[sets[j], :, j].T
        T[cols] = bound[sets[j], j]
    return Mx, T


class Enumeration:
    """The enumeration pass of one call: the tables on the device of ``ops``.

    Parameters
    ----------
    basis : Basis
        The scaled spectra (at most :data:`ENUM_MAX_K` of them).
    ops : NumpyOps or TorchOps
        The array library the pixels' blocks come in.
    """

    def __init__(self, basis: Basis, ops):
        Mx, T = _enum_tables(basis)
        _, self.hp, L, wcol = enum_structure(basis.k)
        self.ops = ops
        self.k = basis.k
        self.nb = self.hp // 8
        self.Mx, self.T, self.L, self.wcol = (ops.asarray(a) for a in (Mx, T, L, wcol))

    def __call__(self, b):
        """Optimal ``w`` of every row of ``b``, and the rows left undecided."""
        ops = self.ops
        nb = self.nb
        Z = b @ self.Mx                        # every functional v_j(F'), all pixels
        n_sign = self.k * self.hp              # the zero column last is never positive
        signs = ops.pack(Z[:, :n_sign] > self.T[:n_sign])     # (n, k * nb) bytes
        agree = None
        for j in range(self.k):
            mask = ops.take(self.L[j * nb], signs[:, j * nb])
            for c in range(1, nb):
                mask |= ops.take(self.L[j * nb + c], signs[:, j * nb + c])
            if agree is None:
                agree = mask
            else:
                agree &= mask
        F = ops.top_bit(agree, 1 << self.k)    # an optimal set (one in exact arithmetic)
        # F = -1 (no consistent set) reads the last row of wcol; those rows are pivoted
        return ops.take_along(Z, ops.take(self.wcol, F)), F < 0
