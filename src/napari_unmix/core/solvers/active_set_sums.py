"""The fit's squared norms, formed block by block by the numpy active set of :mod:`.active_set`.

``core.nnls`` reports ``||X - W H||_F`` and ``||X||_F``.  Summed afterwards they
cost a second pass over ``X``, as long as the solve's own; formed while a block of
pixels is in cache they cost a few small products.  With ``b = x Hn^T`` (the
right-hand side the solver forms anyway), ``D = diag(||h_j||)`` and the Gram matrix
``G`` of the unit-norm spectra ``Hn``::

    ||x - w H||^2 = ||x||^2 - 2 <w D, b> + <w D G D, w>

for the abundances ``w`` as stored (rounded to the dtype of ``X``), so the sums are
those of the returned ``W``.  The difference loses digits when the fit is close: the
terms' float64 rounding is about 1e-15 of ``||x||^2``, so the formula is trusted
down to :data:`CANCELLATION` of ``||x||^2`` (an error of at most ~1e-9 of the
result) and a closer block is summed from its residual ``w D Hn - x`` itself.
"""

from __future__ import annotations

import numpy as np

from .active_set_basis import Basis

__all__ = ["CANCELLATION", "BlockFitSums", "squares_of"]

#: a block's squared residual from the Gram formula is trusted down to this
#: fraction of its ``||x||^2``; below, it is summed from the residual itself
CANCELLATION = 1e-6
#: rows of the residual formed at a time when it is summed directly
_ROWS = 512


def squares_of(A) -> float:
    """``sum(A**2)`` of a float64 array, by BLAS (a few times faster than einsum)."""
    return float(np.vdot(A, A))


class BlockFitSums:
    """``(sum ||x - w H||^2, sum ||x||^2)`` of one block at a time.

    Parameters
    ----------
    basis : Basis
        The scaled spectra of the call.
    """

    def __init__(self, basis: Basis):
        self.basis = basis
        D = np.diag(basis.norms)
        self.D = D
        self.DGD = D @ basis.G @ D           # = H H^T of the active spectra
        self.DHn = D @ basis.Hn              # = the active spectra

    def __call__(self, b, x_squares: float, Wb, Xb) -> tuple[float, float]:
        """The block's sums from ``b = Xb Hn^T``, ``x_squares = sum(Xb**2)`` and its
        rows ``Wb`` of ``W`` as stored; the squared residual is never negative (below
        ``CANCELLATION x_squares`` it is summed from the residual itself)."""
        basis = self.basis
        w = (Wb if Wb.shape[1] == basis.k else Wb[:, basis.active]).astype(np.float64)
        # products with k x k matrices: faster than broadcasting over the k columns
        r2 = (x_squares - 2.0 * float(np.vdot(w @ self.D, b))
              + float(np.vdot(w @ self.DGD, w)))
        if not r2 >= CANCELLATION * x_squares:
            r2 = 0.0
            for r in range(0, Xb.shape[0], _ROWS):
                R = w[r:r + _ROWS] @ self.DHn
                R -= Xb[r:r + _ROWS]
                r2 += squares_of(R)
        return r2, x_squares
