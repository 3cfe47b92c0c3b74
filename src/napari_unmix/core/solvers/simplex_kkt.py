"""Passive sets of the abundance problems: closed forms and the KKT certificate.

The machinery behind :mod:`.simplex`.  For fixed spectra ``H`` (k x m),
:class:`ReducedProblem` holds the reduced coordinates of the problem (the thin SVD
``H_a = C Q`` of the augmented spectra of the sum-to-one problem, or of ``H``
itself for plain NNLS), and for every passive set ``F`` (the components allowed
to be non-zero) the closed form of the least-squares solution on ``F``, with
``sum(w) = 1`` when constrained.  :func:`solve_on_sets` evaluates it for every
pixel at once (pixels grouped by passive set, one small product per set) and
checks the KKT conditions of the constrained problem, which certify the optimum:
``w_F >= 0``, and a non-negative gradient of the Lagrangian off ``F``.

Rounding
    The closed forms use the pseudo-inverse of ``C_F^T`` (times a null-space
    basis of the constraint), never a Gram matrix, so their accuracy follows the
    conditioning of the spectra, not its square; singular values below
    ``16 k eps`` of the largest of the spectra count as zero (linearly dependent
    spectra).  The
    gradient is formed from the reduced residual ``w C - y``, so its rounding
    error is ``~ k eps ||y|| ||C||`` whatever the conditioning: the certificate
    allows ``64 k eps`` times that scale off ``F``, and ``64 k eps kappa`` (at most
    1e-8) below zero on ``F`` (``kappa`` the condition number of the set's
    system).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["ReducedProblem", "rowmax", "rowsum", "solve_on_sets", "to_simplex"]

_EPS = float(np.finfo(np.float64).eps)
#: singular values below _RCOND * k * eps of the largest count as zero
_RCOND = 16.0
#: safety factor on the rounding bounds of the KKT certificate
_TOL = 64.0
#: loosest bound on negative values on F, whatever the conditioning
_TOL_MAX = 1e-8
#: rows of X converted to float64 at a time
_ROWS = 4096


def rowsum(A):
    """Row sums (a matrix-vector product: much faster than ``sum(axis=1)`` on thin rows)."""
    return A @ np.ones(A.shape[1], dtype=A.dtype)


def rowmax(A):
    """Row maxima of a thin matrix, column by column."""
    return functools.reduce(np.maximum, (A[:, j] for j in range(A.shape[1])))


def _rowany(B):
    """Rows of a boolean matrix with any True entry."""
    return rowsum(B.astype(np.int32)) > 0


class ReducedProblem:
    """The reduced problem of one ``H`` (:mod:`.simplex`, steps 1-2).

    Parameters
    ----------
    H : ndarray (k, m)
        The spectra.
    constrained : bool, default True
        The sum-to-one problem, on the augmented spectra ``H_a = [H, c 1]``
        (``c^2`` the mean squared norm of the spectra; 1 if they are all zero);
        else plain NNLS on ``H``.

    Attributes
    ----------
    C : ndarray (k, r)
        The spectra in reduced coordinates (``H_a = C Q``, ``Q`` orthonormal rows).
    v : ndarray (r,)
        ``C v = 1``: the direction a pixel is shifted along by the multiplier.
    G, gmax : ndarray
        ``H_a H_a^T`` and its row maxima (the a-priori bracket).
    """

    def __init__(self, H, constrained: bool = True):
        H = np.asarray(H, dtype=np.float64)
        k, m = H.shape
        self.k = k
        self.constrained = constrained
        G = H @ H.T
        self.c2 = 0.0
        if constrained:                       # the extra channel (1.); 1 for all-zero H
            c2 = float(np.trace(G)) / k
            self.c2 = c2 if c2 > 0 and np.isfinite(c2) else 1.0
        self.G = G + self.c2
        Ha = np.hstack([H, np.full((k, 1), np.sqrt(self.c2))])
        U, S, Vt = np.linalg.svd(Ha, full_matrices=False)
        r = max(1, int((S > _RCOND * k * _EPS * S[0]).sum()))
        self.smax = float(S[0])                            # the scale of "zero" below
        self.C = np.ascontiguousarray(U[:, :r] * S[:r])    # (k, r): H_a = C Q
        self.Q = Vt[:r]                                    # (r, m + 1)
        self.v = np.linalg.lstsq(self.C, np.ones(k), rcond=None)[0]   # C v = 1
        self.gmax = self.G.max(axis=1)
        self.cmax = float(np.sqrt(np.einsum("ij,ij->i", self.C, self.C).max()))
        self._sets: dict[int, tuple] = {}

    def reduce(self, X):
        """The pixels in reduced coordinates, ``x_a Q^T`` (n, r), float64."""
        n, m = X.shape
        Xr = np.empty((n, self.C.shape[1]))
        QT = np.ascontiguousarray(self.Q[:, :m].T)
        last = np.sqrt(self.c2) * self.Q[:, m]
        for r in range(0, n, _ROWS):
            Xr[r:r + _ROWS] = np.asarray(X[r:r + _ROWS], dtype=np.float64) @ QT + last
        return Xr

    def on_set(self, code: int, idx):
        """``(T^T, c, rounding bound of w)``: ``w_F = c + T y`` is the least-squares
        solution (with ``sum(w_F) = 1`` when constrained) on the passive set ``idx``
        for the reduced pixel ``y``.

        Constrained, the null-space method: ``w_F = 1 / |F| + Z z`` with ``Z`` an
        orthonormal basis of the vectors that sum to zero, and ``z`` the
        least-squares solution of ``(C_F^T Z) z = y - C_F^T 1 / |F|`` through the
        pseudo-inverse of ``C_F^T Z``; plain, ``w_F = (C_F^T)^+ y``.  Singular
        values below ``16 k eps`` of the largest are dropped.  No Gram matrix is
        formed, so the conditioning is that of the spectra, not its square.
        """
        got = self._sets.get(code)
        if got is None:
            kf = idx.size
            A = self.C[idx].T                                   # (r, kf)
            T = np.zeros((self.k, A.shape[0]))                  # zero rows off F
            c = np.zeros(self.k)
            kappa = 1.0
            if self.constrained:
                w0 = np.full(kf, 1.0 / kf)
                Z = np.linalg.qr(np.ones((kf, 1)), mode="complete")[0][:, 1:]
            else:
                w0, Z = np.zeros(kf), np.eye(kf)
            if Z.shape[1]:
                U, S, Vt = np.linalg.svd(A @ Z, full_matrices=False)
                # relative to the spectra's scale, not to A Z's own: A Z is all
                # rounding noise when the set's spectra are duplicates
                keep = S > _RCOND * self.k * _EPS * self.smax
                T[idx] = Z @ ((Vt[keep].T / S[keep]) @ U[:, keep].T)
                kappa = S[0] / S[keep][-1] if keep.any() else 1.0
            c[idx] = w0 - T[idx] @ (A @ w0)
            got = np.ascontiguousarray(T.T), c, min(_TOL * self.k * _EPS * kappa, _TOL_MAX)
            self._sets[code] = got
        return got


def _on_sets(P: ReducedProblem, Xr, F):
    """Closed-form (sum-to-one, if ``P.constrained``) least squares on every pixel's
    passive set.

    Returns ``w`` (n, k), ``mu`` (n,) (0 unconstrained; NaN where the set is empty),
    the gradient ``g = (w C - y) C^T + mu`` of the Lagrangian (n, k), and the
    rounding bound of each pixel's ``w`` (n,).
    """
    n, k = F.shape
    codes = F.astype(np.int64) @ (np.int64(1) << np.arange(k, dtype=np.int64))
    # a counting-friendly key for the sort when the codes are small
    order = np.argsort(codes.astype(np.int16) if k < 16 else codes, kind="stable")
    cuts = np.flatnonzero(np.diff(codes[order])) + 1
    w = np.zeros((n, k))
    tol = np.ones(n)
    empty = np.zeros(n, dtype=bool)
    for rows in np.split(order, cuts):
        if rows.size == 0:
            continue
        idx = np.flatnonzero(F[rows[0]])
        if idx.size == 0:
            empty[rows] = True                # w = 0: no sum-to-one solution
            continue
        TT, c, t = P.on_set(int(codes[rows[0]]), idx)
        w[rows] = Xr[rows] @ TT + c
        tol[rows] = t
    g = (w @ P.C - Xr) @ P.C.T
    if not P.constrained:
        return w, np.zeros(n), g, tol
    # on F the gradient of the objective is -mu 1 at the optimum
    with np.errstate(invalid="ignore"):
        mu = -rowsum(np.where(F, g, 0.0)) / rowsum(F.astype(np.float64))
    mu[empty] = np.nan
    g += mu[:, None]
    return w, mu, g, tol


def _certified(P: ReducedProblem, Xr, w, mu, g, F, tol):
    """Whether the KKT conditions of the (sum-to-one) problem hold to rounding (per
    pixel), and the components that break them (negative on ``F``, a negative
    gradient off ``F``).  Constrained, the sum must be one too."""
    y = np.sqrt(rowsum(Xr * Xr))
    scale = P.cmax * (2.0 * y + P.cmax * rowsum(np.abs(w))) + np.abs(np.nan_to_num(mu))
    bad = (w < -tol[:, None]) | (~F & (g < -(_TOL * P.k * _EPS * scale)[:, None]))
    ok = np.isfinite(mu) & ~_rowany(bad)
    if P.constrained:                         # feasible (the closed form's own check)
        ok &= np.abs(rowsum(w) - 1.0) <= P.k * (tol + _TOL * _EPS)
    return ok, bad


def solve_on_sets(P: ReducedProblem, Xr, F):
    """The closed form on the passive sets ``F``, certified, with one exchange.

    Pixels whose closed form fails the certificate try once more with the
    components that break it moved to the other side (a block-pivoting exchange):
    this finds the optimum when the NNLS step's passive set is off by components
    at the NNLS solver's rounding level (nearly collinear spectra).

    Returns
    -------
    w, mu : ndarray (n, k), (n,)
        The solution on the set that was certified (else on ``F``).
    ok : ndarray of bool (n,)
        Certified.
    newton : ndarray (n,)
        The multiplier of the closed form on ``F`` itself (the Newton point).
    """
    w, mu, g, tol = _on_sets(P, Xr, F)
    ok, bad = _certified(P, Xr, w, mu, g, F, tol)
    newton = mu.copy()
    redo = np.flatnonzero(~ok & _rowany(bad))
    if redo.size:
        F2 = F[redo] ^ bad[redo]
        w2, mu2, g2, tol2 = _on_sets(P, Xr[redo], F2)
        ok2, _ = _certified(P, Xr[redo], w2, mu2, g2, F2, tol2)
        good = redo[ok2]
        w[good], mu[good], ok[good] = w2[ok2], mu2[ok2], True
    return w, mu, ok, newton


def to_simplex(w):
    """Clip at 0 and divide by the sum (rows of a float64 array)."""
    w = np.maximum(w, 0.0)
    s = rowsum(w)[:, None]
    return w / np.where(s > 0, s, 1.0)
