"""The scaled basis of one active-set call: unit-norm spectra, float64 solves, refinement.

:class:`Basis` holds what the exact NNLS of :mod:`.active_set` needs from the
spectra alone, independent of the pixels: the scaled spectra, their Gram matrix
``G``, the pseudo-inverses ``G_FF^+`` of passive sets ``F`` with the rounding
bounds of the KKT tests, and the test tables of the pivoting.  :class:`Refinement`
polishes solutions on ill-conditioned passive sets.

Numerical choices
-----------------
* Each spectrum is scaled to unit norm before ``G`` is formed, so spectra whose
  scales differ by many orders of magnitude give a well-scaled ``G``; the
  abundances are scaled back at the end.  All-zero spectra are left out and get
  abundance 0 (every value fits equally well).
* Linearly dependent spectra (duplicates, a spectrum that is a combination of
  others, more spectra than channels) make some ``G_FF`` singular; those solves
  use the pseudo-inverse (eigenvalues below ``16 k eps`` of the largest are
  dropped), which still gives a least-squares solution on ``F``.
* Solutions on passive sets with ``lambda_min(G_FF) < 1e-6`` get two steps of
  iterative refinement with the float64 gradient (see :class:`Refinement`);
  on better conditioned bases nothing runs.
* Accuracy limit: with that, the objective matches SciPy's Lawson-Hanson
  ``nnls`` to ~1e-13 relative (noisy data) or ~1e-15 of ``||x||^2`` (exact fits)
  down to ``lambda_min`` of about 1e-12 of the scaled ``G`` (condition number of
  the scaled ``H`` about 1e6).  Spectra closer to collinear than that are treated
  as linearly dependent; SciPy, which works on ``H`` itself, still separates them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CACHE_MAX", "TABLE_MAX_K", "Basis", "Refinement", "subsets"]

_EPS = float(np.finfo(np.float64).eps)
#: largest k for which the pivoting tabulates the test matrices of all 2^k sets
TABLE_MAX_K = 10
#: eigenvalues of G_FF below _RCOND * k * eps * lambda_max count as zero
_RCOND = 16.0
#: safety factor on the rounding bound of the KKT tests
_TOL = 4.0
#: passive-set matrices kept per call when k is too large to tabulate
CACHE_MAX = 4096
#: solutions on passive sets with lambda_min(G_FF) below this get refinement steps
_REFINE_BELOW = 1e-6
_REFINE_STEPS = 2


def subsets(k: int) -> np.ndarray:
    """All 2^k subsets of range(k) as boolean rows; row ``c`` is the set with bit code c."""
    return ((np.arange(1 << k)[:, None] >> np.arange(k)) & 1).astype(bool)


class Basis:
    """Unit-norm spectra, their Gram matrix and the test tables of one call.

    Parameters
    ----------
    H : ndarray, shape (n_spectra, n_channels)
        The fixed spectra; all-zero ones are left out (``active`` False), the
        others scaled to unit norm (``Hn``, ``norms``), ``k`` of them.
    """

    def __init__(self, H: np.ndarray):
        H = np.asarray(H, dtype=np.float64)
        peak = np.abs(H).max(axis=1) if H.shape[1] else np.zeros(H.shape[0])
        self.active = peak > 0
        Ha = H[self.active] / peak[self.active, None]        # max 1 first: no underflow
        norms = np.sqrt(np.einsum("ij,ij->i", Ha, Ha))
        self.norms = norms * peak[self.active]                # ||h_j||
        self.Hn = Ha / norms[:, None]
        self.k = int(self.active.sum())
        self.G = self.Hn @ self.Hn.T
        self._inverse_cache: dict[bytes, np.ndarray] = {}
        self._table = None
        self._refine = None
        lam = np.linalg.eigvalsh(self.G) if self.k else np.ones(1)
        # lambda_min(G_FF) >= lambda_min(G) (interlacing): if G is well conditioned,
        # no passive set needs refinement and the check is skipped
        self.needs_refine = bool(lam[0] < _REFINE_BELOW)

    # -- solves ------------------------------------------------------------- #

    def inverses(self, sets: np.ndarray, *, with_lambda: bool = False):
        """``G_FF^+`` embedded in k x k (zero outside F) for every row ``F`` of ``sets``.

        The pseudo-inverse drops eigenvalues below ``_RCOND * k * eps`` times the
        largest; for linearly independent spectra it is the inverse.  With
        ``with_lambda`` the smallest kept eigenvalue of each ``G_FF`` is returned too
        (infinite for the empty set).
        """
        u, k = sets.shape
        Q = np.zeros((u, k, k))
        lam_min = np.full(u, np.inf)
        sizes = sets.sum(axis=1)
        for size in np.unique(sizes):
            if size == 0:
                continue
            rows = np.flatnonzero(sizes == size)
            cols = np.nonzero(sets[rows])[1].reshape(rows.size, size)
            lam, V = np.linalg.eigh(self.G[cols[:, :, None], cols[:, None, :]])
            keep = lam > lam[:, -1:] * (_RCOND * k * _EPS)
            inv = np.where(keep, 1.0 / np.where(keep, lam, 1.0), 0.0)
            Q[rows[:, None, None], cols[:, :, None], cols[:, None, :]] = (
                (V * inv[:, None, :]) @ V.transpose(0, 2, 1))
            lam_min[rows] = np.where(keep, lam, np.inf).min(axis=1)
        return (Q, lam_min) if with_lambda else Q

    def refine_table(self):
        """``Q`` (2^k, k, k) and which sets are ill-conditioned enough to refine."""
        if self._refine is None:
            Q, lam_min = self.inverses(subsets(self.k), with_lambda=True)
            self._refine = (Q, lam_min < _REFINE_BELOW)
        return self._refine

    def bound(self, Q: np.ndarray) -> np.ndarray:
        """Rounding bound of ``b @ Q[..., j]`` for ``||b||_1 = 1``, per column ``j``."""
        return _TOL * self.k * _EPS * np.abs(Q).sum(axis=-2)

    # -- tables of the pivoting (k <= TABLE_MAX_K) -------------------------- #

    def pivot_table(self):
        """``M`` (2^k, k, k) and ``T`` (2^k, k): column j of ``M[F]`` gives v_j(F | {j})."""
        if self._table is None:
            k = self.k
            codes = np.arange(1 << k)
            Q = self.inverses(subsets(k))
            M = np.empty_like(Q)
            for j in range(k):
                M[:, :, j] = Q[codes | (1 << j), :, j]
            self._table = (M, self.bound(M))
        return self._table

    def pivot_maps(self, sets: np.ndarray):
        """``M`` and ``T`` for the passive sets ``sets`` (u, k) when k is not tabulated."""
        u, k = sets.shape
        grown = np.repeat(sets[:, None, :], k, axis=1)          # (u, k, k): F | {j}
        grown[:, np.arange(k), np.arange(k)] = True
        flat = grown.reshape(u * k, k)
        keys = [row.tobytes() for row in np.packbits(flat, axis=1)]
        cache = self._inverse_cache
        found = {}
        for key in set(keys):                     # .get: another thread may clear the cache
            Q = cache.get(key)
            if Q is not None:
                found[key] = Q
        todo = {key: i for i, key in enumerate(keys) if key not in found}
        if todo:
            if len(cache) + len(todo) > CACHE_MAX:
                cache.clear()
            for key, Q in zip(todo, self.inverses(flat[list(todo.values())]), strict=True):
                found[key] = cache[key] = Q
        M = np.empty((u, k, k))
        for i in range(u):
            for j in range(k):
                M[i, :, j] = found[keys[i * k + j]][:, j]
        return M, self.bound(M)


class Refinement:
    """Iterative refinement ``w_F += (b - w G)_F G_FF^+`` where ``G_FF`` is ill-conditioned.

    ``w`` comes from explicit inverses; on a passive set with a small eigenvalue
    ``lambda`` its rounding error is of order ``eps / lambda`` in every direction,
    which on exact-fit data costs ``(eps / lambda)^2 ||x||^2`` of objective.  Two
    refinement steps with the float64 gradient bring that to rounding level.  Sets
    with ``lambda_min(G_FF) >= _REFINE_BELOW`` are left alone; when ``G`` itself is
    that well conditioned no set can need it and nothing runs.

    Parameters
    ----------
    basis : Basis
        The scaled spectra of the call.
    ops : NumpyOps or TorchOps
        The array library of the blocks; calling the instance with a block's
        scaled ``b`` and its solution ``w`` returns the refined ``w``.
    """

    def __init__(self, basis: Basis, ops):
        self.ops = ops
        self.basis = basis
        self.G = ops.asarray(basis.G)
        self.pow2 = ops.asarray(2.0 ** np.arange(basis.k))
        self.table = None
        if basis.k <= TABLE_MAX_K:
            self.table = tuple(ops.asarray(a) for a in basis.refine_table())

    def __call__(self, b, w):
        ops = self.ops
        F = w > 0                                 # the passive set of every solved row
        if self.table is not None:
            Q, flagged = self.table
            code = ops.encode(F, self.pow2)
            rows = ops.arange(w.shape[0])[ops.take(flagged, code)]
            if rows.shape[0]:
                w[rows] = self._steps(b[rows], w[rows], ops.take(Q, code[rows]))
            return w
        keys, order, bounds = ops.group(F)
        keys = np.asarray(ops.to_numpy(keys), dtype=bool)
        Q, lam_min = self.basis.inverses(keys, with_lambda=True)
        for i in np.flatnonzero(lam_min < _REFINE_BELOW):
            rows = order[bounds[i]:bounds[i + 1]]
            w[rows] = self._steps(b[rows], w[rows], ops.asarray(Q[i]))
        return w

    def _steps(self, b, w, Q):
        ops = self.ops
        for _ in range(_REFINE_STEPS):
            r = b - w @ self.G
            w = w + (ops.gather_matvec(r, Q) if Q.ndim == 3 else r @ Q)
        return ops.where(w > 0, w, 0.0)
