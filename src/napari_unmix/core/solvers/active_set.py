"""Exact fixed-H NNLS by block principal pivoting, vectorised over pixels.

Every pixel ``x_p`` asks for ``w_p = argmin_{w >= 0} ||x_p - w H||``.  With
``G = H H^T`` (k x k) and ``B = X H^T`` (n x k), computed once per chunk, that is
the small quadratic programme ``min 1/2 w G w^T - b_p w^T`` over ``w >= 0``, whose
optimum is characterised by the KKT conditions: with ``F`` the *passive* set
(the components allowed to be non-zero), ``w_F = b_F G_FF^{-1} >= 0`` and the
gradient ``y = w G - b`` is ``>= 0`` outside ``F``.

Block principal pivoting (Kim & Park 2011) guesses ``F``, solves that one linear
system, and exchanges every component that breaks a KKT condition; a backup rule
(after three exchanges that do not reduce the number of violations, exchange only
the violating component with the largest index) rules out cycling.  Here every
pixel runs its own pivoting sequence, but all pixels are advanced together: the
solve for a passive set ``F`` is the fixed k x k matrix ``G_FF^{-1}`` (embedded
in k x k), so one step for a block of pixels is a batched matrix-vector product
with the matrix of each pixel's set.  For ``k <= 8`` the matrices of all ``2^k``
passive sets are tabulated once (a set is a bit pattern and indexes the table);
for larger ``k`` the pixels are grouped by their passive set and each distinct
set is solved with one matrix product.  Pixels leave the block as soon as they
meet the KKT conditions.  The iteration starts from the full set, so the first
exchange lands on the positive part of the unconstrained least-squares solution;
on typical data most pixels are then done after one or two exchanges.

Exhaustive enumeration of the ``2^k`` passive sets is an alternative for small
``k``; it was measured slower than pivoting for every ``k >= 2`` on the
512 x 512 x 64 benchmark (``benchmarks/nnls_speed.py``) and is not used.

Numerical choices
-----------------
* Each spectrum is scaled to unit norm before ``G`` is formed (spectra whose
  scales differ by many orders of magnitude then give a well-scaled ``G``) and
  the abundances are scaled back at the end.  All-zero spectra are left out and
  get abundance 0 (any value fits equally well; 0 is the natural choice).
* ``G``, ``B`` and every solve are computed in float64, also for float32 input:
  an error ``dB`` in ``B`` changes the objective by about ``dB G^{-1} dB^T``, which
  for overlapping spectra (small eigenvalues of ``G``) exceeds the 1e-6
  relative accuracy asked of an exact solver when ``B`` is accumulated in float32.
  ``B`` is computed block by block (a float64 copy of a few thousand rows of
  ``X`` at a time) so the temporaries stay ``O(block x n_channels)``.  The result
  is returned in the dtype of ``X``.
* A passive set whose spectra are linearly dependent (duplicates, a spectrum
  that is a combination of others) has a singular ``G_FF``; its solve uses the
  pseudo-inverse (eigen-decomposition with small eigenvalues dropped), which
  still gives a least-squares solution on ``F``, so the KKT test stays valid.
* KKT tests use small tolerances scaled by each pixel's ``max |b|`` and by the
  conditioning of ``G_FF``, so rounding noise on a degenerate optimum (a
  component that is zero with zero gradient) cannot make the pivoting cycle.
  The objective then matches SciPy's Lawson-Hanson solver to ~1e-10 relative
  for condition numbers of ``G`` (after scaling) up to about 1e10, i.e. spectra
  that are not numerically collinear.
* Pixels still infeasible after ``max_iter`` exchanges are flagged in
  ``NNLSFit.capped`` and get NaN abundances (as the SciPy backend does), so a
  capped pixel is visible instead of silently wrong.

References
----------
Jingu Kim and Haesun Park, "Fast nonnegative matrix factorization: an
active-set-like method and comparisons", SIAM J. Sci. Comput. 33(6), 3261-3281,
2011.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from ._common import NNLSFit

__all__ = ["fit_nnls_active_set_numpy", "fit_nnls_active_set_torch"]

_EPS = float(np.finfo(np.float64).eps)
#: largest k for which the matrices of all 2^k passive sets are tabulated
_TABLE_MAX_K = 8
#: pixels advanced together (numpy / torch CPU); bounds the temporaries
_BLOCK_CPU = 8192
#: pixels advanced together on a CUDA device
_BLOCK_CUDA = 1 << 17
#: rows of X converted to float64 at a time while forming B
_RHS_ROWS = 512
#: number of non-improving full exchanges allowed before the backup rule
_FULL_EXCHANGES = 3
#: eigenvalues of G_FF below _RCOND * k * eps * lambda_max are treated as zero
_RCOND = 16.0
#: safety factor on the rounding bound used in the KKT tests
_TOL = 4.0
#: passive-set inverses kept per call when k is too large for the table
_CACHE_MAX = 4096


# --------------------------------------------------------------------------- #
# basis preparation (numpy, float64, k x k sized)
# --------------------------------------------------------------------------- #


class _Basis:
    """The scaled basis of one call: unit-norm spectra, their Gram matrix, test maps."""

    def __init__(self, H: np.ndarray):
        H = np.asarray(H, dtype=np.float64)
        peak = np.abs(H).max(axis=1) if H.shape[1] else np.zeros(H.shape[0])
        self.active = peak > 0
        Ha = H[self.active] / peak[self.active, None]       # first to max 1: no overflow
        norms = np.sqrt(np.einsum("ij,ij->i", Ha, Ha))
        self.norms = norms * peak[self.active]               # ||h_j|| without underflow
        self.Hn = Ha / norms[:, None]                        # unit-norm rows
        self.k = k = int(self.active.sum())
        self.G = self.Hn @ self.Hn.T
        self._inverse_cache: dict[bytes, np.ndarray] = {}
        self.table = None
        if 0 < k <= _TABLE_MAX_K:
            codes = np.arange(1 << k)
            Q = self.inverses(((codes[:, None] >> np.arange(k)) & 1).astype(bool))
            M = np.empty_like(Q)
            for j in range(k):
                M[:, :, j] = Q[codes | (1 << j), :, j]
            self.table = (M, self._thresholds(M))

    def _thresholds(self, M):
        """Rounding bound of ``z = b @ M`` for ``max |b| = 1``: one value per column."""
        return _TOL * self.k * _EPS * np.abs(M).sum(axis=1)

    def inverses(self, sets: np.ndarray) -> np.ndarray:
        """``G_FF^+`` embedded in k x k (zero outside F) for each row ``F`` of ``sets``.

        The pseudo-inverse drops eigenvalues below ``_RCOND * k * eps`` times the
        largest; for linearly independent spectra it is the inverse.
        """
        u, k = sets.shape
        Q = np.zeros((u, k, k))
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
        return Q

    def maps(self, sets: np.ndarray):
        """Test maps and thresholds of the passive sets ``sets`` (u, k), untabulated k."""
        u, k = sets.shape
        grown = np.repeat(sets[:, None, :], k, axis=1)        # (u, k, k): F | {j}
        grown[:, np.arange(k), np.arange(k)] = True
        keys = [row.tobytes() for row in np.packbits(grown.reshape(u * k, k), axis=1)]
        missing = sorted({i for i, key in enumerate(keys) if key not in self._inverse_cache},
                         key=keys.__getitem__)
        if len(self._inverse_cache) + len(missing) > _CACHE_MAX:
            self._inverse_cache.clear()
            missing = sorted(set(range(len(keys))), key=keys.__getitem__)
        if missing:
            first = {}
            for i in missing:
                first.setdefault(keys[i], i)
            todo = list(first.values())
            for i, Q in zip(todo, self.inverses(grown.reshape(u * k, k)[todo])):
                self._inverse_cache[keys[i]] = Q
        M = np.empty((u, k, k))
        for i in range(u):
            for j in range(k):
                M[i, :, j] = self._inverse_cache[keys[i * k + j]][:, j]
        return M, self._thresholds(M)


# --------------------------------------------------------------------------- #
# array-library shims: the pivoting below is written once for numpy and torch
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

    def gather_matvec(self, b, M):
        return np.einsum("nj,njl->nl", b, M)

    def row_absmax(self, b):
        return np.abs(b).max(axis=1)

    def encode(self, F, pow2):
        return (F.astype(np.float64) @ pow2).astype(np.int64)

    def last_true(self, V):
        return V.shape[1] - 1 - V[:, ::-1].argmax(axis=1)

    def group(self, F):
        """Distinct rows of ``F`` and the rows of each: ``(keys, order, bounds)``."""
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

    def gather_matvec(self, b, M):
        return self.torch.bmm(b.unsqueeze(1), M).squeeze(1)

    def row_absmax(self, b):
        return b.abs().amax(dim=1)

    def encode(self, F, pow2):
        return (F.to(pow2.dtype) @ pow2).long()

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
# passive sets: bit codes with tables (k <= 8) or boolean rows grouped per set
# --------------------------------------------------------------------------- #


class _CodedSets:
    """Passive sets as integer bit codes; test maps, bit counts and top bits tabulated."""

    def __init__(self, basis: _Basis, ops):
        k = basis.k
        codes = np.arange(1 << k)
        self.ops = ops
        self.M, self.T = (ops.asarray(a) for a in basis.table)
        self.full_set = (1 << k) - 1
        self.pow2 = ops.asarray(2.0 ** np.arange(k))
        bits = ((codes[:, None] >> np.arange(k)) & 1).astype(bool)
        top = np.array([1 << (int(c).bit_length() - 1) if c else 0 for c in codes])
        self.bits = ops.asarray(bits)
        self.popcount = ops.asarray(bits.sum(axis=1))
        self.topbit = ops.asarray(top)

    def start(self, n):
        return self.ops.full_int(n, self.full_set)

    def test(self, b, S, first):
        """``z`` and the set the KKT tests ask for, for every row of ``b``."""
        if first:                      # every row has the full set: one matrix product
            z = b @ self.M[self.full_set]
            want = z > self.T[self.full_set]
        else:
            z = self.ops.gather_matvec(b, self.M[S])
            want = z > self.T[S]
        return z, self._encode(want)

    def _encode(self, F):
        return self.ops.encode(F, self.pow2)

    def n_bad(self, S, want):
        return self.popcount[S ^ want]

    def advance(self, S, want, full):
        """Exchange every violating component (``full``) or only the highest one."""
        return self.ops.where(full, want, S ^ self.topbit[S ^ want])

    def mask(self, S):
        return self.bits[S]


class _GroupedSets:
    """Passive sets as boolean rows; each distinct set is solved with one product."""

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
            M, T = self.basis.maps(keys[missing])
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
    """Block principal pivoting for the rows of ``b`` (normalised, float64).

    Every row runs its own exchange sequence: all components that break a KKT
    test change sides; after ``_FULL_EXCHANGES`` such steps that do not lower the
    number of violations, only the violating component with the largest index
    does (the backup rule), until the count drops again.  Rows leave as soon as
    their passive set passes every test.  Returns ``(w, n_exchanges, capped)``;
    capped rows of ``w`` are NaN.
    """
    n, k = b.shape
    w = ops.zeros((n, k))
    exchanges = ops.full_int(n, 0)
    capped = ops.zeros_bool(n)
    idx = ops.arange(n)
    S = sets.start(n)                              # every component passive
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
# drivers
# --------------------------------------------------------------------------- #


def _check_shapes(X, H):
    X = np.asarray(X)
    H = np.asarray(H)
    if X.ndim != 2 or H.ndim != 2:
        raise ValueError(f"X and H must be 2-D, got shapes {X.shape} and {H.shape}.")
    if X.shape[1] != H.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} channel(s) but H has {H.shape[1]}; the spectra in H must "
            "be sampled on the channels of X.")
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    return X, H


def _solve(X, basis: _Basis, ops, rhs, *, max_iter: int, block: int) -> NNLSFit:
    n = X.shape[0]
    W = np.zeros((n, basis.active.size), dtype=X.dtype)
    capped = np.zeros(n, dtype=bool)
    if n == 0 or basis.k == 0:       # no pixels, or every spectrum is zero: w = 0 fits
        return NNLSFit(W=W, n_iter=0, converged=True, capped=capped)
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}.")
    sets = (_CodedSets if basis.table is not None else _GroupedSets)(basis, ops)
    norms = ops.asarray(basis.norms)
    n_iter = 0
    for start in range(0, n, block):
        stop = min(start + block, n)
        b = rhs(X[start:stop])
        peak = ops.row_absmax(b)
        peak = ops.where(peak > 0, peak, 1.0)
        w, exchanges, cap = _pivot(b / peak[:, None], sets, int(max_iter), ops)
        w = w * (peak[:, None] / norms)
        W[start:stop, basis.active] = ops.to_numpy(w)
        capped[start:stop] = ops.to_numpy(cap)
        n_iter = max(n_iter, int(exchanges.max()))
    return NNLSFit(W=W, n_iter=n_iter, converged=not capped.any(), capped=capped)


def fit_nnls_active_set_numpy(X, H, *, max_iter: int = 1000, tol=None, block_size=None,
                              **_ignored) -> NNLSFit:
    """Exact fixed-H NNLS for the pixels of ``X`` (one chunk), in numpy.

    Parameters
    ----------
    X : ndarray, shape (n_pixels, n_channels)
        Pixel spectra (float32 or float64; the result has the same dtype).
    H : ndarray, shape (k, n_channels)
        Fixed spectra.
    max_iter : int, default 1000
        Cap on the passive-set exchanges per pixel; pixels not optimal by then are
        flagged in ``capped`` and set to NaN.
    tol : float, optional
        Ignored: the solver stops at the KKT optimum, not at a tolerance.
    block_size : int, optional
        Pixels advanced together (default 8192); temporaries are
        ``O(block_size x max(k^2, n_channels))``.

    Returns
    -------
    NNLSFit
        ``W`` (n_pixels, k); ``n_iter`` the largest number of exchanges any pixel
        needed; ``converged`` False when a pixel hit ``max_iter``.
    """
    X, H = _check_shapes(X, H)
    basis = _Basis(H)
    HnT = np.ascontiguousarray(basis.Hn.T)

    def rhs(Xb):
        if Xb.dtype == np.float64:
            return Xb @ HnT
        out = np.empty((Xb.shape[0], HnT.shape[1]))
        for r in range(0, Xb.shape[0], _RHS_ROWS):
            np.matmul(Xb[r:r + _RHS_ROWS].astype(np.float64), HnT, out=out[r:r + _RHS_ROWS])
        return out

    return _solve(X, basis, _NumpyOps(), rhs, max_iter=max_iter,
                  block=int(block_size or _BLOCK_CPU))


def fit_nnls_active_set_torch(X, H, *, max_iter: int = 1000, tol=None, device: str = "auto",
                              block_size=None, **_ignored) -> NNLSFit:
    """Exact fixed-H NNLS for the pixels of ``X`` (one chunk), in PyTorch.

    The same algorithm and tables as :func:`fit_nnls_active_set_numpy`, run on
    ``device`` (CPU or CUDA; ``"auto"`` picks CUDA when available) in float64; the
    data moves to the device one block at a time and only ``W`` comes back.
    Parameters and result as for the numpy version.
    """
    from ..device import get_torch, resolve_device

    torch = get_torch()
    device = resolve_device(device)
    X, H = _check_shapes(X, H)
    basis = _Basis(H)
    ops = _TorchOps(torch, device)
    on_cuda = str(device).startswith("cuda")
    HnT = ops.asarray(np.ascontiguousarray(basis.Hn.T))
    rows = _BLOCK_CUDA if on_cuda else _RHS_ROWS

    def rhs(Xb):
        Xt = torch.as_tensor(np.ascontiguousarray(Xb)).to(device)
        if Xt.dtype == torch.float64:
            return Xt @ HnT
        out = torch.empty((Xt.shape[0], HnT.shape[1]), dtype=torch.float64, device=device)
        for r in range(0, Xt.shape[0], rows):
            torch.matmul(Xt[r:r + rows].to(torch.float64), HnT, out=out[r:r + rows])
        return out

    with torch.no_grad():
        return _solve(X, basis, ops, rhs, max_iter=max_iter,
                      block=int(block_size or (_BLOCK_CUDA if on_cuda else _BLOCK_CPU)))
