"""What the Poisson loss adds to a fit: the deviance, and the anchor weights it calls for.

Under ``loss="poisson"`` (``core.nmf``, ``core.nnls``; the solvers are in
:mod:`~napari_unmix.core.solvers.kl`) a fit minimises the generalised
Kullback-Leibler divergence ``D(X || WH)``, the Poisson negative log-likelihood of the
counts up to a constant.  Its natural measure of fit is the **deviance**, ``2 D``: per
pixel, ``2 sum_c x_c log(x_c / y_c) - x_c + y_c`` with ``y = w H``.  For counts that
the model explains, a pixel's deviance is about its number of channels minus the
number of components (a chi-square) when the counts are large, and less at a few
counts per channel; a deviance image shows where the spectra do not explain the
data (a missing component, a saturated pixel).  It is in the
units of the data: on data that are not counts (a gain, an offset) it is a relative
measure only.

Anchoring.  ``core.nmf`` makes ``anchor`` scale-free by giving the penalty
``lambda_j ||H_j - H0_j||^2`` the weight of the data's own evidence about spectrum
``j``.  Under least squares that evidence is ``||W_j||^2``; under the Poisson loss the
data term near the fit is ``sum (x - y)^2 / (2 y)``, so a move ``d`` of spectrum ``j``
costs ``1/2 sum_c d_c^2 sum_i W_ij^2 / y_ic``, about ``||d||^2 ||W_j||^2 / (2 mu_j)``
with ``mu_j`` the mean count where the component is (the pixels' mean counts
weighted by ``W_ij^2``).  Hence :func:`poisson_anchor_weights`
``lambda_j = anchor_j ||W_j||^2 / (2 mu_j)``: multiplying the counts by ``c`` (``W``
or ``H`` by ``c``) multiplies both the divergence and the penalty by ``c``.
"""

from __future__ import annotations

import numpy as np

from .solvers._common import kl_divergence

__all__ = ["poisson_anchor_weights", "poisson_deviance"]


def poisson_deviance(X, W, H) -> np.ndarray:
    """Per-pixel Poisson deviance ``2 D(x_p || w_p H)``, float64 (n_pixels,).

    Parameters
    ----------
    X : ndarray (n_pixels, n_channels)
        Non-negative data (counts).
    W : ndarray (n_pixels, k)
    H : ndarray (k, n_channels)

    Returns
    -------
    ndarray (n_pixels,)
        ``w H`` below ``eps * max(x_p)`` counts as that floor (as in the solvers), so
        the deviance is finite where no spectrum covers a channel with counts.
    """
    X = np.asarray(X)
    dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float64)
    top = X.max(axis=1, keepdims=True).astype(np.float64) if X.size else np.ones((len(X), 1))
    floor = float(np.finfo(dtype).eps) * np.where(top > 0, top, 1.0)
    return 2.0 * kl_divergence(X, W, H, floor=floor, per_row=True)


def poisson_anchor_weights(strength, W, X) -> np.ndarray:
    """The anchor weights ``lambda_j = strength_j ||W_j||^2 / (2 mu_j)`` (module docstring).

    Parameters
    ----------
    strength : ndarray (k,)
        The relative anchor strengths (finite, >= 0; 0 leaves a row free).
    W : ndarray (n_pixels, k)
        The start of the abundances (the balanced seed maps).
    X : ndarray (n_pixels, n_channels)
        The data the solver fits (scaled like it).

    Returns
    -------
    ndarray (k,), float64
    """
    W2 = np.square(W, dtype=np.float64)
    w2 = W2.sum(axis=0)
    xbar = X.mean(axis=1, dtype=np.float64)
    floor = float(np.finfo(np.float64).eps) * max(float(xbar.max(initial=0.0)), 1e-300)
    mu = np.maximum(xbar @ W2 / np.where(w2 > 0, w2, 1.0), floor)
    return np.asarray(strength, dtype=np.float64) * w2 / (2.0 * mu)
