"""Fixed-H NNLS by projected gradient with FISTA acceleration, in PyTorch.

Works in the Gram form: with ``G = H H^T`` and ``B = X H^T`` (computed once per
chunk) each pixel's objective is ``f(w) = 1/2 w G w^T - B_p w^T``, minimised over
``w >= 0`` with step ``1/L``, ``L`` the largest eigenvalue of ``G`` (Beck & Teboulle
2009).  Every ``check_every`` = 10 iterations the chunk stops when

    ||a_(k+1) - a_k||_2 / (||a_k||_2 + eps) <= tol,

norms taken over the whole chunk.  A chunk that does not meet it within
``max_iter`` returns its last iterate and ``converged=False``.

Before iterating, every spectrum (row of ``H``) is scaled to unit norm and the
coefficients are scaled back at the end (diagonal, Jacobi preconditioning).  The
objective is unchanged by this, but spectra on very different scales (1e-5 next to
1e12) then converge at the same rate; without it the step ``1/L`` set by the
largest spectrum freezes the coefficients of the small ones.  The stopping rule
above is evaluated on these scaled coefficients, which makes it independent of the
spectra's units.

``restart=True`` adds a per-pixel function-value restart (O'Donoghue & Candes 2015):
when a pixel's objective would increase, its momentum is reset and it takes a plain
projected-gradient step instead, which cannot increase it.  The iteration is then
monotone in every pixel's objective and needs far fewer iterations on ill-conditioned
bases.  The increase is computed from the step ``d`` itself, ``d . grad f(a) +
1/2 d G d``, not as a difference of two objective values: those are dominated by
``-B a`` and in float32 their rounding alone triggered restarts at random, which
stalled the iteration (``benchmarks/peers.py``: objective gap 5e-2 after 4500
iterations at ``tol=1e-5``, against 1.5e-6 after 2140 with this test).  The
stopping rule is the same as without restart.

Scale: the right-hand side ``B`` is divided by the power of two that brings its
largest entry into ``[1, 2)`` (exact; ``W`` is scaled back at the end) and the
spectra's norms and the stopping rule's norms are taken in float64.  The
iteration then runs on the same numbers whatever the data's or the spectra's
units: float32 spectra times 1e20 or 1e-25 no longer normalise to zero (W = 0),
data times 1e30 no longer gives an infinite norm (a false cap), and data times
1e-25 no longer a zero norm (a false "converged").
"""

from __future__ import annotations

import numpy as np

from ..device import get_torch, resolve_device, to_numpy, to_torch
from ._common import NNLSFit

__all__ = ["fit_nnls_fista"]


def _power_of_two(value: float) -> float:
    """The power of two ``2**e`` with ``value / 2**e`` in ``[1, 2)`` (1.0 for 0)."""
    return float(np.ldexp(1.0, int(np.frexp(value)[1]) - 1)) if value > 0 else 1.0


def _scaled_rhs(torch, Xt, Ht):
    """``(B / s, s)`` with ``B = X H^T`` and ``s`` the power of two that brings the
    largest ``|B|`` into ``[1, 2)``: exact, and the iterates are then near 1 whatever
    the data's units, so no norm of them under- or overflows and the step, the
    restart test and the stopping rule see the same numbers at every scale.

    Where ``B`` itself would leave the dtype's normal range (data near its largest
    or smallest numbers), ``X`` is divided by the power of two of its maximum first.
    """
    B = Xt @ Ht.T
    top = float(B.abs().max()) if B.numel() else 0.0
    tiny = float(torch.finfo(B.dtype).tiny)
    if not np.isfinite(top) or 0.0 < top < tiny * 2.0**24:
        x_scale = _power_of_two(float(Xt.abs().max()))
        B = (Xt / x_scale) @ Ht.T
        top = float(B.abs().max())
    else:
        x_scale = 1.0
    s = _power_of_two(top)
    return (B if s == 1.0 else B / s), s * x_scale


def _objective(torch, A, G, B):
    # per-row 1/2 a G a^T - b a^T
    return 0.5 * ((A @ G) * A).sum(dim=1) - (B * A).sum(dim=1)


def fit_nnls_fista(X, H, *, max_iter: int, tol: float, device: str = "auto",
                   restart: bool = False, check_every: int = 10, trace=None,
                   **_ignored) -> NNLSFit:
    """Solve fixed-H NNLS for the pixels of ``X`` (one chunk) by (restarted) FISTA.

    Parameters
    ----------
    X : ndarray (n, m) or a torch tensor on the device; H : ndarray (k, m)
    max_iter, tol : iteration cap and the relative-change tolerance.
    device : torch device, ``"auto"`` for CUDA when available.
    restart : bool, default False
        Per-pixel function-value adaptive restart (monotone).
    check_every : int, default 10
        Iterations between convergence checks.
    trace : list, optional
        If given, the per-pixel objective after every iteration is appended (as a
        numpy array); used by tests to check monotonicity.
    """
    torch = get_torch()
    device = str(X.device) if type(X).__module__.split(".")[0] == "torch" else \
        resolve_device(device)
    with torch.no_grad():
        Xt = to_torch(X, device)  # a tensor already on the device is used as it is
        eps = float(torch.finfo(Xt.dtype).eps)
        Ht = to_torch(H, device)
        # the spectra's norms in float64: their squares leave float32 beyond 1e19 / 1e-19
        norms = torch.linalg.vector_norm(Ht, dim=1, dtype=torch.float64)
        scale = torch.where(norms > 0, norms, torch.ones_like(norms))
        Ht = (Ht.double() / scale[:, None]).to(Xt.dtype)
        G = Ht @ Ht.T
        B, b_scale = _scaled_rhs(torch, Xt, Ht)
        n, k = B.shape
        L = float(torch.linalg.eigvalsh(G.double()).max()) if k else 0.0
        if L <= 0.0:  # every spectrum is zero: any w gives the same fit; take 0
            return NNLSFit(W=np.zeros((n, k), to_numpy(Xt[:0]).dtype), n_iter=0, converged=True,
                           capped=np.zeros(n, bool))
        step = 1.0 / L
        A = torch.zeros_like(B)
        Y = A.clone()
        if restart:
            t = torch.ones(n, 1, dtype=B.dtype, device=B.device)
            AG = torch.zeros_like(B)  # A @ G, kept exact (recomputed from A each step)
            YG = AG.clone()  # Y @ G, a linear combination of the last two A @ G
        else:
            t = 1.0
        converged = False
        n_iter = 0
        for it in range(1, max_iter + 1):
            if restart:
                A_new = torch.clamp_min(Y - (YG - B) * step, 0.0)
                AG_new = A_new @ G
                # f(a_new) - f(a) from the step d = a_new - a, without cancellation:
                # d . (1/2 (a + a_new) G - b)  (f itself is dominated by -B a, and its
                # float32 rounding alone would trigger restarts at random)
                D = A_new - A
                bad = ((D * (0.5 * (AG + AG_new) - B)).sum(dim=1) > 0)[:, None]
                # a pixel whose objective would rise takes a plain projected-gradient
                # step from a instead and restarts its momentum; dense selects, no
                # boolean indexing: no device sync, no gathers
                A_pg = torch.clamp_min(A - (AG - B) * step, 0.0)
                A_new = torch.where(bad, A_pg, A_new)
                AG_new = torch.where(bad, A_pg @ G, AG_new)
                t = torch.where(bad, 1.0, t)
                t_new = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * t * t))
                beta = (t - 1.0) / t_new
                Y = A_new + beta * (A_new - A)
                YG = AG_new + beta * (AG_new - AG)
                AG = AG_new
            else:
                A_new = torch.clamp_min(Y - (Y @ G - B) * step, 0.0)
                t_new = 0.5 * (1.0 + (1.0 + 4.0 * t * t) ** 0.5)
                Y = A_new + ((t - 1.0) / t_new) * (A_new - A)
            t = t_new
            if trace is not None:  # in the data's units (float64: no overflow)
                trace.append(to_numpy(_objective(torch, A_new, G, B).double()) * b_scale**2)
            n_iter = it
            if it % check_every == 0:
                change = float(torch.linalg.vector_norm(A_new - A, dtype=torch.float64))
                crit = change / (float(torch.linalg.vector_norm(A, dtype=torch.float64)) + eps)
                if crit <= tol:
                    A = A_new
                    converged = True
                    break
            A = A_new
        capped = np.full(n, not converged)
        W = (A.double() * (b_scale / scale)).to(A.dtype)  # back to the data's units
        return NNLSFit(W=to_numpy(W), n_iter=n_iter, converged=converged, capped=capped)
