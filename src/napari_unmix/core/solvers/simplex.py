"""Abundances that are fractions: exact fixed-H least squares with a sum constraint.

Every pixel spectrum ``x`` (one row of ``X``) asks, for fixed spectra ``H`` (k x m),

* ``"sum-to-one"`` (the abundance sum constraint, *fully constrained least squares*,
  FCLS): ``min ||x - w H||^2`` over ``w >= 0`` with ``sum(w) = 1``;
* ``"sum-le-one"``: the same with ``sum(w) <= 1`` (a pixel may hold less than
  everything: a dark or empty part);
* ``"free"``: plain NNLS, ``w >= 0`` only.

:func:`fit_simplex` solves them exactly (to rounding, certified by the KKT
conditions of the constrained problem) on top of an exact batched NNLS solver of
the registry (the active-set solvers in numpy or torch, SciPy's Lawson-Hanson).

Algorithm
---------
1. *Augmentation.*  With ``c^2 = trace(H H^T) / k`` (the mean squared norm of the
   spectra) every spectrum gets one more channel of value ``c`` and the pixel one
   of value ``c``: ``H_a = [H, c 1]``, ``x_a = [x, c]``.  Then
   ``||x_a - w H_a||^2 = ||x - w H||^2 + c^2 (1 - sum(w))^2``, which equals the
   original objective on the constraint set, so the FCLS problems of ``(x, H)``
   and ``(x_a, H_a)`` have the same optimum.  The point of the extra channel:
   the ones vector is always in the range of ``G = H_a H_a^T = H H^T + c^2 1 1^T``
   (also for duplicate, scaled or all-zero spectra and for more spectra than
   channels), and the NNLS problems below are already pulled towards sum one.
2. *The Lagrangian problem is an NNLS of a shifted pixel.*  With ``v`` in the row
   space of ``H_a`` and ``v H_a^T = 1``,
   ``||(x_a - mu v) - w H_a||^2 = ||x_a - w H_a||^2 + 2 mu sum(w) + const``: for
   a fixed multiplier ``mu`` the Lagrangian of the equality constraint is
   minimised over ``w >= 0`` by the NNLS solution ``w(mu)`` of the pixel
   ``x_a - mu v``.  The NNLS steps run in the reduced coordinates of the thin SVD
   ``H_a = C Q`` (``Q`` orthonormal rows, ``C`` k x r, ``r = rank(H_a) <= k``):
   the pixel ``x_a Q^T - mu v Q^T`` against the spectra ``C`` is the same NNLS
   problem up to a constant, with r <= k channels instead of m.
3. *The multiplier.*  ``s(mu) = sum(w(mu))`` is non-increasing (monotonicity of
   the optimality map of a convex problem in its linear term) and piecewise
   linear (linear while the passive set ``F``, the non-zero components, stays the
   same).  A bracket is known before any solve: ``w(mu) = 0`` for
   ``mu >= max_j b_j`` (``b = x_a H_a^T``), and the KKT conditions give
   ``s(mu) >= 1`` for ``mu <= max_j (b_j - max_l G_jl)``.
4. *Newton on the passive set, with a certificate.*  On a passive set ``F`` the
   equality-constrained least squares has a closed form (``G_FF^+`` the
   pseudo-inverse, ``a = G_FF^+ 1``):
   ``mu = (1^T G_FF^+ b_F - 1) / (1^T a)``, ``w_F = G_FF^+ b_F - mu a``.  It is the
   FCLS optimum exactly when ``w_F >= 0`` and the gradient of the Lagrangian is
   non-negative off ``F``: ``(w G - b)_j + mu >= 0``.  Each step solves the batched
   NNLS at the current ``mu`` of every pixel not yet certified, takes the passive
   set of its solution, computes the closed form on it and checks the KKT
   conditions (:mod:`.simplex_kkt`, which computes the closed forms without
   forming ``G``: their accuracy follows the conditioning of the spectra, not its
   square).  Because ``s`` is linear on each piece this Newton step lands on the
   root as soon as one evaluated ``mu`` lies on a piece next to it, and the
   certificate needs no further solve.  A pixel that fails it tries once more
   with the offending components moved across (a block-pivoting exchange): that
   repairs passive sets that are off by components at the NNLS solver's rounding
   level (spectra collinear to 1e-6).  The start is ``mu = 0`` (or, warm, the
   passive sets and multipliers of an earlier solution: :func:`fit_simplex`'s
   ``start`` and ``mu0``), whose augmented NNLS is already close to sum one.
5. *Safeguards.*  The evaluated points shrink the bracket.  A Newton point
   outside the open bracket, and every third step, is replaced by a regula falsi
   step with the Illinois modification (bisection while one end's ``s`` is not
   known yet), so the bracket closes on the root; once its ends are on one linear
   piece the interpolation is exact.  A pixel whose bracket has shrunk to
   rounding level takes the NNLS solution there, scaled to sum one.  A pixel not
   done after :data:`MAX_STEPS` solves is flagged in ``capped`` and gets NaN, as
   the exact NNLS solvers do.
6. *Sum at most one.*  The plain NNLS solution is optimal when its sum is <= 1;
   otherwise the constraint is active at the optimum (the problem is convex), and
   the optimum is the sum-to-one solution.  ``SimplexFit.active`` marks those
   pixels.  The plain NNLS is the chosen exact solver's (warm-started, the old
   passive sets are certified first), so on the inactive pixels its accuracy
   limit applies (``active_set``: spectra collinear to about 1e-6).

The returned abundances are clipped at 0 (components at rounding level below) and
divided by their sum, so the constraint holds to the dtype's rounding
(``~1e-16`` in float64).  The multipliers are returned too (``SimplexFit.mu``, 0
where the constraint is inactive); they do not depend on ``c``.

Rank-deficient ``H``
    Duplicate spectra, a spectrum that is a combination of others, or more spectra
    than channels are handled, not refused: the optimum's objective is unique,
    the abundances of the dependent spectra are not (any split that fits equally
    well is an optimum).  The augmentation keeps the problem well posed, the
    closed form uses the pseudo-inverse (eigenvalues of ``G_FF`` below
    ``16 k eps`` of the largest are dropped) and the NNLS steps return a solution
    on independent spectra, as the exact solvers do.

Cost
    Forming the reduced pixels reads ``X`` once (one ``X H^T``-sized product);
    every NNLS step is on ``r <= k`` channels.  On the benchmark stack (512 x 512
    pixels, 64 channels, k = 5) the first NNLS step certifies 96 % of the pixels,
    and ``core.nnls`` with sum-to-one (sum <= 1) takes 1.8-2.0 (1.7-2.2) times as
    long as plain exact NNLS (``benchmarks/abundance.py --only speed``, paired
    ratios, several runs on a shared 2-core machine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import NNLSFit
from .simplex_kkt import ReducedProblem, rowmax, rowsum, solve_on_sets, to_simplex

__all__ = ["ABUNDANCES", "MAX_STEPS", "SimplexFit", "check_abundance", "fit_simplex"]

#: The abundance models: no sum constraint, sum equal to one, sum at most one.
ABUNDANCES = ("free", "sum-to-one", "sum-le-one")
#: Most batched NNLS solves per pixel in the search for its multiplier.
MAX_STEPS = 64

#: every this many steps the multiplier search takes an Illinois step
_FORCE_EVERY = 3
_EPS = float(np.finfo(np.float64).eps)


@dataclass
class SimplexFit(NNLSFit):
    """What :func:`fit_simplex` returns for one chunk of pixels.

    Attributes
    ----------
    W, n_iter, converged, capped
        As for :class:`~._common.NNLSFit`; ``n_iter`` is the number of batched
        NNLS solves the multiplier search needed (1 for ``"free"``).
    mu : ndarray (n_pixels,)
        The Lagrange multiplier of the sum constraint (0 where it is inactive).
    active : ndarray of bool (n_pixels,)
        Pixels where the sum constraint is active (``"sum-le-one"``: the plain
        NNLS solution summed to more than one; ``"sum-to-one"``: every pixel).
    """

    mu: np.ndarray | None = None
    active: np.ndarray | None = None


def check_abundance(abundance) -> str:
    """``abundance`` if it names an abundance model (:data:`ABUNDANCES`), else raise.

    Raises
    ------
    ValueError
        Naming the models.
    """
    if not isinstance(abundance, str) or abundance not in ABUNDANCES:
        raise ValueError(f"abundance must be one of {', '.join(map(repr, ABUNDANCES))}, got "
                         f"{abundance!r}.")
    return abundance


class _Bracket:
    """Per-pixel bracket ``lo <= mu* <= hi`` with ``s(lo) >= 1 >= s(hi)`` and Illinois weights."""

    def __init__(self, P: ReducedProblem, b):
        n = b.shape[0]
        self.hi = rowmax(b)                   # s = 0 from here on
        self.f_hi = np.full(n, -1.0)          # s - 1 at hi (Illinois-weighted)
        self.lo = rowmax(b - P.gmax)          # s >= 1 here, value unknown
        self.f_lo = np.full(n, np.nan)
        self.side = np.zeros(n, dtype=np.int8)   # +1: lo moved last, -1: hi moved last

    def update(self, t, mu, s):
        """Pixels ``t`` evaluated at ``mu`` with sums ``s``."""
        up = s >= 1.0
        for sel, end, f, own, other in ((up, self.lo, self.f_lo, 1, self.f_hi),
                                        (~up, self.hi, self.f_hi, -1, self.f_lo)):
            rows = t[sel]
            end[rows] = mu[sel]
            f[rows] = s[sel] - 1.0
            twice = self.side[rows] == own
            other[rows[twice]] *= 0.5          # Illinois: halve the end that stays
            self.side[rows] = own

    def next_mu(self, t, newton, force):
        """Newton where it lies inside the open bracket (and not ``force``),
        else regula falsi (Illinois), else bisection."""
        lo, hi, fl, fh = self.lo[t], self.hi[t], self.f_lo[t], self.f_hi[t]
        with np.errstate(invalid="ignore", divide="ignore"):
            rf = lo + fl / (fl - fh) * (hi - lo)
        mid = 0.5 * (lo + hi)
        rf = np.where(np.isfinite(rf) & (rf > lo) & (rf < hi), rf, mid)
        use_newton = np.isfinite(newton) & (newton > lo) & (newton < hi) & ~force
        return np.where(use_newton, newton, rf)

    def collapsed(self, t, scale):
        return self.hi[t] - self.lo[t] <= 8 * _EPS * (np.abs(self.lo[t]) + np.abs(self.hi[t])
                                                      + scale)


def _nnls(X, H, nnls, start, options):
    """Plain NNLS of every row: ``(W float64, capped, solves)``.

    With ``start``, the pixels whose old passive set (with one exchange) passes the
    KKT certificate of NNLS take its closed form and skip the solver.
    """
    n, k = X.shape[0], H.shape[0]
    W = np.zeros((n, k))
    capped = np.zeros(n, dtype=bool)
    rest = slice(None)
    if start is not None:
        P = ReducedProblem(H, constrained=False)
        w, _, ok, _ = solve_on_sets(P, P.reduce(X), np.asarray(start) > 0)
        W[ok] = np.maximum(w[ok], 0.0)
        rest = np.flatnonzero(~ok)
        if rest.size == 0:
            return W, capped, 0
    fit = nnls(X[rest], H, **options)
    W[rest] = fit.W
    if fit.capped is not None:
        capped[rest] = fit.capped
    return W, capped, 1


def _fcls(X, H, nnls, *, max_steps, start, mu0, options):
    """The sum-to-one solution of every row of ``X``; see the module documentation."""
    P = ReducedProblem(H)
    Xr = P.reduce(X)
    b = Xr @ P.C.T                            # x_a H_a^T
    n, k = b.shape
    W = np.full((n, k), np.nan)
    mu_out = np.full(n, np.nan)
    capped = np.zeros(n, dtype=bool)
    br = _Bracket(P, b)
    scale = rowmax(np.abs(b)) + P.gmax.max()
    mu = np.zeros(n) if mu0 is None else np.nan_to_num(np.asarray(mu0, dtype=np.float64))
    todo = np.arange(n)
    if start is not None:                     # warm start: certify the old passive sets
        wN, muN, ok, newton = solve_on_sets(P, Xr, np.asarray(start) > 0)
        W[ok], mu_out[ok] = to_simplex(wN[ok]), muN[ok]
        todo = np.flatnonzero(~ok)
        mu = np.where(np.isfinite(newton), newton, mu)
    mu = np.clip(mu, br.lo, br.hi)
    steps = 0
    while todo.size and steps < max_steps:
        m_t = mu[todo]
        fit = nnls(Xr[todo] - m_t[:, None] * P.v, P.C, **options)
        steps += 1
        w = np.asarray(fit.W, dtype=np.float64)
        s = rowsum(w)
        bad = ~np.isfinite(s)                 # capped by the NNLS solver (NaN)
        if bad.any():
            capped[todo[bad]] = True
            w[bad] = 0.0
            s[bad] = 0.0
        br.update(todo, m_t, s)
        wN, muN, ok, newton = solve_on_sets(P, Xr[todo], w > 0)
        ok &= ~bad
        # a bracket closed to rounding: the NNLS solution there is the answer
        flat = ~ok & ~bad & br.collapsed(todo, scale[todo])
        W[todo[ok]], mu_out[todo[ok]] = to_simplex(wN[ok]), muN[ok]
        W[todo[flat]], mu_out[todo[flat]] = to_simplex(w[flat]), m_t[flat]
        rest = ~(ok | flat | bad)
        t = todo[rest]
        force = np.full(t.size, steps % _FORCE_EVERY == 0)
        mu[t] = br.next_mu(t, newton[rest], force)
        todo = t
    capped[todo] = True
    W[capped] = np.nan
    mu_out[capped] = np.nan
    return W, mu_out, capped, steps


def fit_simplex(X, H, *, abundance: str = "sum-to-one", nnls=None, max_iter: int = 1000,
                max_steps: int = MAX_STEPS, start=None, mu0=None, **options) -> SimplexFit:
    """Exact fixed-H abundances of the pixels of ``X`` (one chunk) under an abundance model.

    Parameters
    ----------
    X : ndarray, shape (n_pixels, n_channels)
        Pixel spectra, float32 or float64 (``W`` comes back in the same dtype).
    H : ndarray, shape (k, n_channels)
        Fixed spectra (finite; non-negative for the a-priori bracket).
    abundance : {"sum-to-one", "sum-le-one", "free"}, default "sum-to-one"
        The abundance model (module documentation).
    nnls : callable, optional
        An exact NNLS solver of the registry, ``nnls(X, H, max_iter=..., **options)
        -> NNLSFit`` (``core.solvers.NNLS_SOLVERS[...].func``); default the numpy
        active-set solver.
    max_iter : int, default 1000
        Passed on to ``nnls`` (its exchange cap per pixel).
    max_steps : int, default :data:`MAX_STEPS`
        Cap on the NNLS solves of the multiplier search; pixels not certified by
        then are flagged in ``capped`` and set to NaN.
    start : ndarray (n_pixels, k), optional
        Warm start: abundances (e.g. of the previous iteration of an NNMF) whose
        passive sets are tried, and certified, before any NNLS solve.
    mu0 : ndarray (n_pixels,), optional
        Warm start: initial multipliers (e.g. ``SimplexFit.mu`` of an earlier call).
    **options
        Passed on to ``nnls`` (``device``, ``tol`` ...).

    Returns
    -------
    SimplexFit
        ``W`` (n_pixels, k); every row sums to one (``"sum-to-one"``, and the
        ``active`` rows of ``"sum-le-one"``) up to the dtype's rounding.

    Notes
    -----
    Most of the work is in products with k or fewer columns, which multi-threaded
    BLAS only slows down; the callers (``solve_nnls``, the NNMF solver) hold BLAS
    to one thread around their loops (``_common.one_blas_thread``), once, as
    entering that limit costs about a millisecond.
    """
    abundance = check_abundance(abundance)
    if nnls is None:
        from .active_set import fit_nnls_active_set_numpy as nnls
    X = np.asarray(X)
    H = np.asarray(H)
    if X.ndim != 2 or H.ndim != 2 or X.shape[1] != H.shape[1]:
        raise ValueError(f"X (n_pixels, n_channels) and H (k, n_channels) do not fit: "
                         f"{X.shape} and {H.shape}.")
    if not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}.")
    dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float64)
    n, k = X.shape[0], H.shape[0]
    options = dict(options, max_iter=max_iter)
    W = np.zeros((n, k), dtype=dtype)
    mu = np.zeros(n)
    capped = np.zeros(n, dtype=bool)
    solves = 0
    if abundance == "sum-to-one":
        active = np.ones(n, dtype=bool)
    else:
        w, capped, solves = _nnls(X, H, nnls, None if k == 0 else start, options)
        W[:] = w
        with np.errstate(invalid="ignore"):
            active = rowsum(w) > 1.0 if abundance == "sum-le-one" else np.zeros(n, bool)
    if k == 0 or n == 0:
        active[:] = False
    rows = np.flatnonzero(active)
    every = rows.size == n
    if rows.size:
        w, m_, cap, steps = _fcls(
            X if every else X[rows], H, nnls, max_steps=int(max_steps),
            start=start if start is None or every else np.asarray(start)[rows],
            mu0=mu0 if mu0 is None or every else np.asarray(mu0)[rows], options=options)
        if every:
            W[:], mu, capped = w, m_, capped | cap
        else:
            W[rows], mu[rows] = w, m_
            capped[rows] |= cap
        solves += steps
    return SimplexFit(W=W, n_iter=solves, converged=not capped.any(), capped=capped, mu=mu,
                      active=active)
