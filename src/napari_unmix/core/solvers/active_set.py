"""Exact fixed-H NNLS for many pixels at once: passive-set enumeration and pivoting.

Every pixel ``x_p`` asks for ``w_p = argmin_{w >= 0} ||x_p - w H||``.  With
``G = H H^T`` (k x k) and ``B = X H^T`` (n x k), formed once per block of pixels,
that is the small quadratic programme ``min 1/2 w G w^T - b_p w^T`` over
``w >= 0``.  Its optimum is characterised by a *passive set* ``F`` (the components
allowed to be non-zero) that passes the KKT tests: the least-squares solution on
``F``, ``w_F = b_F G_FF^{-1}``, is positive, and every component outside ``F`` has
a non-negative gradient ``y = w G - b``.

One number decides both tests for a component ``j``
------------------------------------------------------
Let ``v_j(F')`` be the value of ``w_j`` in the least-squares solution on
``F' = F | {j}``.  For ``j`` in ``F`` that is ``w_j`` itself; for ``j`` outside
``F`` it equals ``-y_j / S_j`` with the Schur complement ``S_j > 0``, so
``y_j < 0`` exactly when ``v_j(F | {j}) > 0``.  Both tests therefore read the same
linear functional ``b @ q`` (``q`` a column of ``G_F'F'^{-1}``): ``F`` is optimal
when ``j in F  <=>  v_j(F | {j}) > 0`` for every ``j``.  The functional is
evaluated once per pixel, so rounding can never make a component look wrong both
inside and outside ``F``; a component whose value is zero within rounding (a
degenerate optimum, e.g. noise-free data with zero abundances) is consistently
kept out.  The bound used for "within rounding" is ``4 k eps sum_i |q_i|``
times the pixel's ``||b||_1``.

Two ways to find ``F``
----------------------
* **Enumeration** (``k <= 6``): there are ``k 2^(k-1)`` functionals (80 for
  k = 5, 192 for k = 6).  One matrix product evaluates all of them for a block of
  pixels, their signs are packed into bytes, and precomputed tables turn each
  byte into the mask of the passive sets a component agrees with (a set is a bit
  of an int64, hence k <= 6); OR over a component's bytes and AND over the
  components leaves the optimal set.  No iteration and no per-pixel branching;
  faster than pivoting for every k it covers (``benchmarks/nnls_speed.py``).
* **Block principal pivoting** (Kim & Park 2011), for larger ``k`` and for the
  rare pixels the enumeration leaves without a consistent set (values at
  rounding level).  Every pixel runs its own exchange sequence, all advanced
  together: each component that fails its test changes sides; after three full
  exchanges that do not lower the number of failures, only the failing component
  with the largest index does (the backup rule that rules out cycling), until
  the count drops again.  The iteration starts from the full set, so the first
  exchange lands on the positive part of the unconstrained solution.  For
  ``k <= 10`` the test matrices of all ``2^k`` sets are tabulated and indexed by
  the set's bit code; beyond, pixels are grouped by passive set and each distinct
  set is one matrix product.  Pixels leave as soon as they pass.

Numerical choices
-----------------
* Each spectrum is scaled to unit norm before ``G`` is formed, so spectra whose
  scales differ by many orders of magnitude give a well-scaled ``G``; the
  abundances are scaled back at the end.  All-zero spectra are left out and get
  abundance 0 (every value fits equally well).
* ``G``, ``B`` and every solve are in float64, also for float32 input.  An error
  ``dB`` in ``B`` moves the objective by about ``dB G^{-1} dB^T``; with
  overlapping spectra (small eigenvalues of ``G``) float32 accumulation of ``B``
  would exceed the 1e-6 relative accuracy asked of an exact solver.  ``B`` is
  formed a few hundred rows at a time (a float64 copy of those rows of ``X``), so
  temporaries stay ``O(block x n_channels)`` and ``O(block x k 2^k)``, never
  ``O(n_pixels)``.  The result comes back in the dtype of ``X``.
* Linearly dependent spectra (duplicates, a spectrum that is a combination of
  others, more spectra than channels) make some ``G_FF`` singular; those solves
  use the pseudo-inverse (eigenvalues below ``16 k eps`` of the largest are
  dropped), which still gives a least-squares solution on ``F``.
* Solutions on passive sets with ``lambda_min(G_FF) < 1e-6`` get two steps of
  iterative refinement with the float64 gradient (see :class:`_Refinement`);
  on better conditioned bases nothing runs.
* Accuracy limit: with that, the objective matches SciPy's Lawson-Hanson
  ``nnls`` to ~1e-13 relative (noisy data) or ~1e-15 of ``||x||^2`` (exact fits)
  down to ``lambda_min`` of about 1e-12 of the scaled ``G`` (condition number of
  the scaled ``H`` about 1e6).  Spectra closer to collinear than that are treated
  as linearly dependent; SciPy, which works on ``H`` itself, still separates them.
* Pixels the pivoting has not solved after ``max_iter`` exchanges are flagged in
  ``NNLSFit.capped`` and get NaN abundances (as the SciPy backend does), so a
  capped pixel is visible instead of silently wrong.
* The numpy version runs in the calling thread by default (``n_threads`` can
  share the blocks over threads); torch uses its own intra-op threads.

References
----------
Jingu Kim and Haesun Park, "Fast nonnegative matrix factorization: an
active-set-like method and comparisons", SIAM J. Sci. Comput. 33(6), 3261-3281,
2011.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._common import NNLSFit, one_blas_thread

__all__ = ["fit_nnls_active_set_numpy", "fit_nnls_active_set_torch"]

_EPS = float(np.finfo(np.float64).eps)
#: largest k solved by enumerating the passive sets (2^k sets fit an int64 mask)
_ENUM_MAX_K = 6
#: largest k for which the pivoting tabulates the test matrices of all 2^k sets
_TABLE_MAX_K = 10
#: pixels handled together on the CPU (numpy and torch) by the enumeration and the
#: pivoting (whose rounds have a fixed cost), and on a CUDA device
_BLOCK_ENUM_VALUES = 1 << 18      # the enumeration's values per block (2 MB)
_BLOCK_PIVOT = 16384
_BLOCK_CUDA = 1 << 16
#: rows of X converted to float64 at a time while forming B on the CPU
_RHS_ROWS = 512
#: full exchanges allowed without progress before the backup rule (Kim & Park)
_FULL_EXCHANGES = 3
#: eigenvalues of G_FF below _RCOND * k * eps * lambda_max count as zero
_RCOND = 16.0
#: safety factor on the rounding bound of the KKT tests
_TOL = 4.0
#: passive-set matrices kept per call when k is too large to tabulate
_CACHE_MAX = 4096
#: solutions on passive sets with lambda_min(G_FF) below this get refinement steps
_REFINE_BELOW = 1e-6
_REFINE_STEPS = 2

_METHODS = ("auto", "enumerate", "pivot")
_ONES = np.ones(8)
_TINY = float(np.finfo(np.float64).tiny)


# --------------------------------------------------------------------------- #
# the scaled basis and its tables (numpy, float64, independent of the pixels)
# --------------------------------------------------------------------------- #


def _subsets(k: int) -> np.ndarray:
    """All 2^k subsets of range(k) as boolean rows; row ``c`` is the set with bit code c."""
    return ((np.arange(1 << k)[:, None] >> np.arange(k)) & 1).astype(bool)


class _Basis:
    """Unit-norm spectra, their Gram matrix and the test tables of one call."""

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
        self._enum = None
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
            Q, lam_min = self.inverses(_subsets(self.k), with_lambda=True)
            self._refine = (Q, lam_min < _REFINE_BELOW)
        return self._refine

    def _bound(self, Q: np.ndarray) -> np.ndarray:
        """Rounding bound of ``b @ Q[..., j]`` for ``||b||_1 = 1``, per column ``j``."""
        return _TOL * self.k * _EPS * np.abs(Q).sum(axis=-2)

    # -- tables of the pivoting (k <= _TABLE_MAX_K) ------------------------- #

    def pivot_table(self):
        """``M`` (2^k, k, k) and ``T`` (2^k, k): column j of ``M[F]`` gives v_j(F | {j})."""
        if self._table is None:
            k = self.k
            codes = np.arange(1 << k)
            Q = self.inverses(_subsets(k))
            M = np.empty_like(Q)
            for j in range(k):
                M[:, :, j] = Q[codes | (1 << j), :, j]
            self._table = (M, self._bound(M))
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
            if len(cache) + len(todo) > _CACHE_MAX:
                cache.clear()
            for key, Q in zip(todo, self.inverses(flat[list(todo.values())]), strict=True):
                found[key] = cache[key] = Q
        M = np.empty((u, k, k))
        for i in range(u):
            for j in range(k):
                M[i, :, j] = found[keys[i * k + j]][:, j]
        return M, self._bound(M)

    # -- tables of the enumeration (k <= _ENUM_MAX_K) ----------------------- #

    def enum_tables(self):
        """``Mx`` and ``T`` (k*hp + 1 columns): every functional of the enumeration.

        Column ``j * hp + g`` holds ``v_j(F')`` for the set ``F'`` made of ``j`` and
        the other components coded by ``g`` (see :func:`_enum_structure`), with
        threshold ``T[j * hp + g]``.  The last column is zero: the abundance of a
        component outside the optimal set is read from there.  It and the padding
        columns have an infinite threshold, so they never read positive.
        """
        if self._enum is None:
            k = self.k
            sets, hp = _enum_structure(k)[:2]
            Q = self.inverses(_subsets(k))
            bound = self._bound(Q)
            Mx = np.zeros((k, k * hp + 1))
            T = np.full(k * hp + 1, np.inf)
            for j in range(k):
                cols = j * hp + np.arange(sets.shape[1])
                Mx[:, cols] = Q[sets[j], :, j].T
                T[cols] = bound[sets[j], j]
            self._enum = (Mx, T)
        return self._enum


@functools.cache
def _enum_structure(k: int):
    """The k-only part of the enumeration tables: ``(sets, hp, L, wcol)``.

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


# --------------------------------------------------------------------------- #
# array-library shims: the algorithms below are written once for numpy and torch
# --------------------------------------------------------------------------- #


class _NumpyOps:
    device = "cpu"

    def asarray(self, a):
        return np.asarray(a)

    def ones_bool(self, n, k):
        return np.ones((n, k), dtype=bool)

    def zeros_bool(self, n):
        return np.zeros(n, dtype=bool)

    def zeros(self, shape):
        return np.zeros(shape)

    def full_int(self, n, value):
        return np.full(n, value, dtype=np.int64)

    def arange(self, n):
        return np.arange(n)

    def where(self, cond, a, b):
        return np.where(cond, a, b)

    def minimum(self, a, b):
        return np.minimum(a, b)

    def maximum(self, a, b):
        return np.maximum(a, b)

    def store(self, out, a):
        out[...] = a

    def take(self, table, index):
        return table.take(index, axis=0)

    def take_along(self, a, cols):
        n, m = a.shape
        cols += np.arange(0, n * m, m)[:, None]
        return a.reshape(-1).take(cols)

    def gather_matvec(self, b, M):
        return np.einsum("nj,njl->nl", b, M)

    def row_abssum(self, b):
        return np.abs(b).sum(axis=1) if b.shape[1] > 8 else np.abs(b) @ _ONES[:b.shape[1]]

    def encode(self, F, pow2):
        return (F.astype(np.float64) @ pow2).astype(np.int64)

    def pack(self, P):
        """Little-endian bytes of every 8 columns (the last byte zero-padded)."""
        return np.packbits(P, axis=1, bitorder="little")

    def top_bit(self, mask, n_bits):
        """Index of the highest set bit of each int64 mask (-1 for 0), exactly."""
        if n_bits <= 32:
            return np.frexp(mask.astype(np.float64))[1] - 1
        high = (mask >> 32) & 0xFFFFFFFF
        low = mask & 0xFFFFFFFF
        return np.where(high > 0, 31 + np.frexp(high.astype(np.float64))[1],
                        np.frexp(low.astype(np.float64))[1] - 1)

    def last_true(self, V):
        return V.shape[1] - 1 - V[:, ::-1].argmax(axis=1)

    def group(self, F):
        """Distinct rows of ``F`` and the rows holding each: ``(keys, order, bounds)``."""
        keys, inv = np.unique(F, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        order = np.argsort(inv, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=len(keys)))])
        return keys, order, bounds.tolist()

    def to_numpy(self, a):
        return a


class _TorchOps:
    def __init__(self, torch, device):
        self.torch = torch
        self.device = device

    def asarray(self, a):
        return self.torch.as_tensor(np.ascontiguousarray(a), device=self.device)

    def ones_bool(self, n, k):
        return self.torch.ones((n, k), dtype=self.torch.bool, device=self.device)

    def zeros_bool(self, n):
        return self.torch.zeros(n, dtype=self.torch.bool, device=self.device)

    def zeros(self, shape):
        return self.torch.zeros(shape, dtype=self.torch.float64, device=self.device)

    def full_int(self, n, value):
        return self.torch.full((n,), value, dtype=self.torch.int64, device=self.device)

    def arange(self, n):
        return self.torch.arange(n, device=self.device)

    def where(self, cond, a, b):
        return self.torch.where(cond, a, b)

    def minimum(self, a, b):
        return self.torch.minimum(a, b)

    def maximum(self, a, b):
        return self.torch.clamp_min(a, b)

    def store(self, out, a):
        out[...] = self.to_numpy(a)

    def take(self, table, index):
        return table[index.long()]

    def take_along(self, a, cols):
        return self.torch.gather(a, 1, cols)

    def gather_matvec(self, b, M):
        return self.torch.bmm(b.unsqueeze(1), M).squeeze(1)

    def row_abssum(self, b):
        return b.abs().sum(dim=1)

    def encode(self, F, pow2):
        return (F.to(pow2.dtype) @ pow2).long()

    def pack(self, P):
        """Little-endian bytes of every 8 columns (a partial last byte is dropped)."""
        torch = self.torch
        n, m = P.shape
        weights = 2.0 ** torch.arange(8, device=self.device, dtype=torch.float32)
        return (P[:, :m - m % 8].reshape(n, -1, 8).to(torch.float32) @ weights).long()

    def top_bit(self, mask, n_bits):
        torch = self.torch

        def top(m):
            return torch.frexp(m.to(torch.float64)).exponent.long() - 1
        if n_bits <= 32:
            return top(mask)
        high = (mask >> 32) & 0xFFFFFFFF
        return torch.where(high > 0, 32 + top(high), top(mask & 0xFFFFFFFF))

    def last_true(self, V):
        return V.shape[1] - 1 - V.flip(1).to(self.torch.uint8).argmax(dim=1)

    def group(self, F):
        torch = self.torch
        keys, inv = torch.unique(F.to(torch.uint8), dim=0, return_inverse=True)
        order = torch.argsort(inv, stable=True)
        counts = torch.bincount(inv, minlength=keys.shape[0])
        return keys.bool(), order, [0] + torch.cumsum(counts, 0).tolist()

    def to_numpy(self, a):
        return a.detach().cpu().numpy()


# --------------------------------------------------------------------------- #
# enumeration (k <= _ENUM_MAX_K)
# --------------------------------------------------------------------------- #


class _Enumeration:
    def __init__(self, basis: _Basis, ops):
        Mx, T = basis.enum_tables()
        _, self.hp, L, wcol = _enum_structure(basis.k)
        self.ops = ops
        self.k = basis.k
        self.nb = self.hp // 8
        self.Mx, self.T, self.L, self.wcol = (ops.asarray(a) for a in (Mx, T, L, wcol))

    def __call__(self, b):
        """Optimal ``w`` of every row of ``b``, and the rows left undecided."""
        ops = self.ops
        nb = self.nb
        Z = b @ self.Mx                        # every functional v_j(F'), all pixels
        signs = ops.pack(Z > self.T)           # (n, k * nb + 1) bytes, the last unused
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


# --------------------------------------------------------------------------- #
# block principal pivoting
# --------------------------------------------------------------------------- #


class _CodedSets:
    """Passive sets as integer bit codes (k <= _TABLE_MAX_K), with tabulated tests."""

    def __init__(self, basis: _Basis, ops):
        k = basis.k
        codes = np.arange(1 << k)
        bits = _subsets(k)
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


class _GroupedSets:
    """Passive sets as boolean rows; each distinct set is one matrix product."""

    def __init__(self, basis: _Basis, ops):
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
            if len(self.maps) + len(missing) > _CACHE_MAX:
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


def _pivot(b, sets, max_iter: int, ops):
    """Block principal pivoting for the rows of ``b`` (scaled, float64).

    Returns ``(w, n_exchanges, capped)``; capped rows of ``w`` are NaN.
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


# --------------------------------------------------------------------------- #
# refinement on ill-conditioned passive sets
# --------------------------------------------------------------------------- #


class _Refinement:
    """Iterative refinement ``w_F += (b - w G)_F G_FF^+`` where ``G_FF`` is ill-conditioned.

    ``w`` comes from explicit inverses; on a passive set with a small eigenvalue
    ``lambda`` its rounding error is of order ``eps / lambda`` in every direction,
    which on exact-fit data costs ``(eps / lambda)^2 ||x||^2`` of objective.  Two
    refinement steps with the float64 gradient bring that to rounding level.  Sets
    with ``lambda_min(G_FF) >= _REFINE_BELOW`` are left alone; when ``G`` itself is
    that well conditioned no set can need it and nothing runs.
    """

    def __init__(self, basis: _Basis, ops):
        self.ops = ops
        self.basis = basis
        self.G = ops.asarray(basis.G)
        self.pow2 = ops.asarray(2.0 ** np.arange(basis.k))
        self.table = None
        if basis.k <= _TABLE_MAX_K:
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


# --------------------------------------------------------------------------- #
# drivers
# --------------------------------------------------------------------------- #


def _check_inputs(X, H, max_iter, method):
    X = np.asarray(X)
    H = np.asarray(H)
    if X.ndim != 2 or H.ndim != 2:
        raise ValueError(f"X and H must be 2-D, got shapes {X.shape} and {H.shape}.")
    if X.shape[1] != H.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} channel(s) but H has {H.shape[1]}; the spectra in H must "
            "be sampled on the channels of X.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) \
            or max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0, got {max_iter!r}.")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}; got {method!r}.")
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    return X, H


def _solve(X, basis: _Basis, ops, rhs, *, max_iter: int, block: int | None, method: str,
           n_threads: int = 1, cuda: bool = False) -> NNLSFit:
    n = X.shape[0]
    W = np.zeros((n, basis.active.size), dtype=X.dtype)
    capped = np.zeros(n, dtype=bool)
    if n == 0 or basis.k == 0:        # no pixels, or every spectrum is zero: w = 0 fits
        return NNLSFit(W=W, n_iter=0, converged=True, capped=capped)
    k = basis.k
    if method == "auto":
        method = "enumerate" if k <= _ENUM_MAX_K else "pivot"
    if method == "enumerate" and k > _ENUM_MAX_K:
        raise ValueError(f"method='enumerate' supports up to {_ENUM_MAX_K} non-zero "
                         f"spectra, got {k}; use method='pivot' or 'auto'.")
    enumeration = _Enumeration(basis, ops) if method == "enumerate" else None
    if block is None and cuda:
        block = _BLOCK_CUDA
    elif block is None and enumeration is not None:
        block = min(8192, max(256, _BLOCK_ENUM_VALUES // enumeration.Mx.shape[1]))
    elif block is None:
        block = _BLOCK_PIVOT
    block = max(1, int(block))
    if k <= _TABLE_MAX_K:
        basis.pivot_table()                       # build once, before any worker
    refine = _Refinement(basis, ops) if basis.needs_refine else None
    norms = ops.asarray(basis.norms)
    max_iter = int(max_iter)

    def run(first: int, last: int) -> int:
        """Solve the pixels first:last block by block; return the most exchanges used."""
        sets = (_CodedSets if k <= _TABLE_MAX_K else _GroupedSets)(basis, ops)
        most = 0
        for start in range(first, last, block):
            stop = min(start + block, last)
            b = rhs(X[start:stop])
            # ||b||_1 sets the scale of the KKT tests' rounding bounds; an all-zero
            # row stays zero (0 / tiny = 0) and gets w = 0
            scale = ops.maximum(ops.row_abssum(b), _TINY)
            b = b / scale[:, None]
            cap = None
            if enumeration is not None:
                w, undecided = enumeration(b)
                if bool(undecided.any()):         # values at rounding level: pivot those
                    rows = ops.arange(b.shape[0])[undecided]
                    w_rows, exchanges, cap_rows = _pivot(b[rows], sets, max_iter, ops)
                    w[rows] = w_rows
                    cap = ops.zeros_bool(b.shape[0])
                    cap[rows] = cap_rows
                    most = max(most, int(exchanges.max()))
            else:
                w, exchanges, cap = _pivot(b, sets, max_iter, ops)
                most = max(most, int(exchanges.max()))
            if refine is not None:
                w = refine(b, w)
            w = w * (scale[:, None] / norms)
            if k == basis.active.size:
                ops.store(W[start:stop], w)
            else:
                W[start:stop, basis.active] = ops.to_numpy(w)
            if cap is not None:
                capped[start:stop] = ops.to_numpy(cap)
        return most

    n_blocks = -(-n // block)
    n_threads = max(1, min(int(n_threads), n_blocks))
    if n_threads == 1:
        n_iter = run(0, n)
    else:                                         # contiguous runs of blocks per thread
        cuts = [block * (n_blocks * i // n_threads) for i in range(n_threads)] + [n]
        with ThreadPoolExecutor(n_threads) as pool:
            n_iter = max(pool.map(run, cuts[:-1], cuts[1:]))
    return NNLSFit(W=W, n_iter=n_iter, converged=not capped.any(), capped=capped)


def fit_nnls_active_set_numpy(X, H, *, max_iter: int = 1000, tol=None, method: str = "auto",
                              block_size: int | None = None, n_threads: int = 1,
                              **_ignored) -> NNLSFit:
    """Exact fixed-H NNLS for the pixels of ``X`` (one chunk), in numpy.

    Parameters
    ----------
    X : ndarray, shape (n_pixels, n_channels)
        Pixel spectra (float32 or float64; ``W`` comes back in the same dtype).
    H : ndarray, shape (k, n_channels)
        Fixed spectra.
    max_iter : int, default 1000
        Cap on the passive-set exchanges of a pixel in the pivoting.  Pixels not
        optimal by then are flagged in ``capped`` and set to NaN.  The enumeration
        (``k <= 6`` non-zero spectra) does not iterate; only the rare pixels it
        leaves undecided are pivoted.
    tol : float, optional
        Ignored: the solver stops at the KKT optimum, not at a tolerance.
    method : {"auto", "enumerate", "pivot"}, default "auto"
        ``"auto"`` enumerates the passive sets for ``k <= 6`` non-zero spectra and
        pivots otherwise; both give the same optimum.  ``"enumerate"`` refuses more
        than 6 non-zero spectra.
    block_size : int, optional
        Pixels handled together.  By default, for the enumeration, as many as
        keep its ``k max(2^(k-1), 8) + 1`` values per pixel within ``2^18`` values
        (2 MB, so that they stay in cache), clamped to 256 .. 8192: 8192 pixels
        for ``k <= 3``, 7943 for k = 4, 3236 for k = 5, 1358 for k = 6; 16384 for
        the pivoting.  Temporaries are ``O(n_threads x block_size x max(k 2^k,
        n_channels))``, independent of the number of pixels.
    n_threads : int, default 1
        Threads sharing the blocks (numpy releases the GIL in its kernels).  Most of
        the work is in small numpy calls, so threads gain little: measured ~10 %
        with 2-4 threads on an idle 16-core machine, and a loss on a busy one.

    Returns
    -------
    NNLSFit
        ``W`` (n_pixels, k); ``n_iter`` the largest number of exchanges a pixel
        needed (0 when the enumeration decided every pixel); ``converged`` False
        when a pixel hit ``max_iter``.
    """
    X, H = _check_inputs(X, H, max_iter, method)
    basis = _Basis(H)
    HnT = np.ascontiguousarray(basis.Hn.T)

    def rhs(Xb):
        if Xb.dtype == np.float64:
            return Xb @ HnT
        out = np.empty((Xb.shape[0], HnT.shape[1]))
        for r in range(0, Xb.shape[0], _RHS_ROWS):
            np.matmul(Xb[r:r + _RHS_ROWS].astype(np.float64), HnT, out=out[r:r + _RHS_ROWS])
        return out

    with one_blas_thread():  # small products: BLAS threads only compete (see _common)
        return _solve(X, basis, _NumpyOps(), rhs, max_iter=max_iter, method=method,
                      block=block_size, n_threads=n_threads)


def fit_nnls_active_set_torch(X, H, *, max_iter: int = 1000, tol=None, device: str = "auto",
                              method: str = "auto", block_size: int | None = None,
                              **_ignored) -> NNLSFit:
    """Exact fixed-H NNLS for the pixels of ``X`` (one chunk), in PyTorch.

    The algorithm and tables of :func:`fit_nnls_active_set_numpy`, run on
    ``device`` (CPU or CUDA; ``"auto"`` picks CUDA when available) in float64.  The
    data moves to the device one block at a time (default 65536 pixels on CUDA; on
    the CPU the block sizes of the numpy version) and only ``W`` comes back.
    Parameters and result as for the numpy version; torch runs its own threads, so
    there is no ``n_threads``.
    """
    from ..device import get_torch, resolve_device

    X, H = _check_inputs(X, H, max_iter, method)
    torch = get_torch()
    device = resolve_device(device)
    basis = _Basis(H)
    ops = _TorchOps(torch, device)
    on_cuda = str(device).startswith("cuda")
    HnT = ops.asarray(basis.Hn.T)
    rows = _BLOCK_CUDA if on_cuda else _RHS_ROWS

    def rhs(Xb):
        Xb = np.ascontiguousarray(Xb)
        # torch warns when it wraps a read-only array (a memory map...): copy those
        Xt = (torch.from_numpy(Xb) if Xb.flags.writeable else torch.tensor(Xb)).to(device)
        if Xt.dtype == torch.float64:
            return Xt @ HnT
        out = torch.empty((Xt.shape[0], HnT.shape[1]), dtype=torch.float64, device=device)
        for r in range(0, Xt.shape[0], rows):
            torch.matmul(Xt[r:r + rows].to(torch.float64), HnT, out=out[r:r + rows])
        return out

    with torch.no_grad():
        return _solve(X, basis, ops, rhs, max_iter=max_iter, method=method,
                      block=block_size, cuda=on_cuda)
