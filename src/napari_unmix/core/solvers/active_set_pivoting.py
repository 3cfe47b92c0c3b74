"""Exact fixed-H NNLS by block principal pivoting (Kim & Park 2011), for :mod:`.active_set`.

Used for larger ``k`` and for the rare pixels the enumeration
(:mod:`.active_set_enumeration`) leaves without a consistent set (values at
rounding level).  Every pixel runs its own exchange sequence, all advanced
together: each component that fails its test changes sides; after three full
exchanges that do not lower the number of failures, only the failing component
with the largest index does (the backup rule that rules out cycling), until
the count drops again.  The iteration starts from the full set, so the first
exchange lands on the positive part of the unconstrained solution.  For
``k <= 10`` the test matrices of all ``2^k`` sets are tabulated and indexed by
the set's bit code (:class:`CodedSets`); beyond, pixels are grouped by passive
set and each distinct set is one matrix product (:class:`GroupedSets`).  Pixels
leave as soon as they pass.

References
----------
Jingu Kim and Haesun Park, "Fast nonnegative matrix factorization: an
active-set-like method and comparisons", SIAM J. Sci. Comput. 33(6), 3261-3281,
2011.
"""

from __future__ import annotations

import numpy as np

from .active_set_basis import CACHE_MAX, Basis, subsets

__all__ = ["CodedSets", "GroupedSets", "pivot"]

#: full exchanges allowed without progress before the backup rule (Kim & Park)
_FULL_EXCHANGES = 3


class CodedSets:
    """Passive sets as integer bit codes (k <= TABLE_MAX_K), with tabulated tests.

    Parameters
    ----------
    basis : Basis
        The scaled spectra of the call.
    ops : NumpyOps or TorchOps
        The array library of the blocks.
    """

    def __init__(self, basis: Basis, ops):
        k = basis.k
        codes = np.arange(1 << k)
        bits = subsets(k)
        top = np.array([1 << (int(c).bit_length() - 1) if c else 0 for c in codes])
        self.ops = ops
        self.M, self.T = (ops.asarray(a) for a in basis.pivot_table())
        self.full_set = (1 << k) - 1
        self.pow2 = ops.asarray(2.0 ** np.arange(k))
        self.bits = ops.asarray(bits)
        self.popcount = ops.asarray(bits.sum(axis=1))
        self.topbit = ops.asarray(top)

    def start(self, n):
        return self.ops.full_int(n, self.full_set)

    def test(self, b, S, first):
        """``z`` and the set the tests ask for, for every row of ``b``."""
        ops = self.ops
        if first:                               # every row has the full set
            z = b @ self.M[self.full_set]
            want = z > self.T[self.full_set]
        else:
            z = ops.gather_matvec(b, ops.take(self.M, S))
            want = z > ops.take(self.T, S)
        return z, ops.encode(want, self.pow2)

    def n_bad(self, S, want):
        return self.ops.take(self.popcount, S ^ want)

    def advance(self, S, want, full):
        """Exchange every failing component (``full``) or only the highest one."""
        return self.ops.where(full, want, S ^ self.ops.take(self.topbit, S ^ want))

    def mask(self, S):
        return self.ops.take(self.bits, S)


class GroupedSets:
    """Passive sets as boolean rows; each distinct set is one matrix product (any k).

    Parameters
    ----------
    basis : Basis
        The scaled spectra of the call.
    ops : NumpyOps or TorchOps
        The array library of the blocks.
    """

    def __init__(self, basis: Basis, ops):
        self.ops = ops
        self.basis = basis
        self.k = basis.k
        self.maps: dict[bytes, tuple] = {}

    def start(self, n):
        return self.ops.ones_bool(n, self.k)

    def test(self, b, S, first):
        ops = self.ops
        keys, order, bounds = ops.group(S)
        keys = np.asarray(ops.to_numpy(keys), dtype=bool)
        missing = [i for i, key in enumerate(keys) if key.tobytes() not in self.maps]
        if missing:
            if len(self.maps) + len(missing) > CACHE_MAX:
                self.maps.clear()
                missing = list(range(len(keys)))
            M, T = self.basis.pivot_maps(keys[missing])
            for j, i in enumerate(missing):
                self.maps[keys[i].tobytes()] = (ops.asarray(M[j]), ops.asarray(T[j]))
        z = ops.zeros(b.shape)
        thr = ops.zeros(b.shape)
        for i, key in enumerate(keys):
            rows = order[bounds[i]:bounds[i + 1]]
            Mi, Ti = self.maps[key.tobytes()]
            z[rows] = b[rows] @ Mi
            thr[rows] = Ti
        return z, z > thr

    def n_bad(self, S, want):
        return (S ^ want).sum(1)

    def advance(self, S, want, full):
        ops = self.ops
        V = S ^ want
        one = ops.arange(self.k)[None, :] == ops.last_true(V)[:, None]
        return S ^ (V & (full[:, None] | one))

    def mask(self, S):
        return S


def pivot(b, sets, max_iter: int, ops):
    """Block principal pivoting for the rows of ``b`` (scaled, float64).

    Parameters
    ----------
    b : array, shape (n, k)
        ``X H^T`` of the pixels with the scaled spectra, each row scaled to
        ``||b||_1 = 1`` (or zero).
    sets : CodedSets or GroupedSets
        The passive sets' representation and tests.
    max_iter : int
        Exchanges allowed per row.
    ops : NumpyOps or TorchOps
        The array library of ``b``.

    Returns
    -------
    tuple
        ``(w, n_exchanges, capped)``; capped rows of ``w`` are NaN.
    """
    n, k = b.shape
    w = ops.zeros((n, k))
    exchanges = ops.full_int(n, 0)
    capped = ops.zeros_bool(n)
    idx = ops.arange(n)
    S = sets.start(n)
    alpha = ops.full_int(n, _FULL_EXCHANGES)
    beta = ops.full_int(n, k + 1)
    it = 0
    while True:
        z, want = sets.test(b, S, it == 0)
        n_bad = sets.n_bad(S, want)
        ok = n_bad == 0
        n_ok = int(ok.sum())
        if n_ok:
            rows = idx[ok]
            w[rows] = z[ok] * sets.mask(S[ok])
            exchanges[rows] = it
            if n_ok == idx.shape[0]:
                break
        if it >= max_iter:
            rest = idx[~ok]
            w[rest] = float("nan")
            exchanges[rest] = it
            capped[rest] = True
            break
        it += 1
        fewer = n_bad < beta
        full = fewer | (alpha >= 1)
        alpha = ops.where(fewer, _FULL_EXCHANGES, ops.where(full, alpha - 1, alpha))
        beta = ops.minimum(beta, n_bad)
        S = sets.advance(S, want, full)
        if n_ok:
            keep = ~ok
            idx, b, S, alpha, beta = idx[keep], b[keep], S[keep], alpha[keep], beta[keep]
    return w, exchanges, capped
