"""Stopping rules of the iterative NNMF solvers, and which one stopped a run.

Every rule is evaluated at the error samples (iteration 0 and every ``every``
iterations, :class:`~._common.SampledErrorStopping`) and records ``stopped_by``,
the machine-readable name of what ended the run (``core.nmf`` puts it in the
summary, beside ``"max_iter"`` when none did).

``"tol"`` — the specification's rule (:class:`TolStopping`)
    The relative improvement of the objective since the previous sample is at most
    ``tol``.  Multiplicative updates (``solver="mu"``) keep this rule.

``"noise"`` — the default of random NNMF by HALS and FCLS (:class:`NoiseStopping`)
    A stop that does not fit noise.  The noise is estimated as what no
    k-component model can explain: the residual of the rank-k truncated SVD of the
    data, ``nu = sqrt(sum_{j > k} lambda_j)`` with ``lambda_j`` the eigenvalues of
    ``X^T X`` (:func:`noise_level`; a deterministic sample of at most
    :data:`NOISE_PIXELS` pixels, every ``ceil(n / NOISE_PIXELS)``-th one, scaled by
    ``n / n_sample``, in float64).  By Eckart-Young no rank-k factorisation, and so
    no NNMF, has an error below ``nu``: the converged error ``E*`` is at least
    ``nu`` (on the benchmark stack and the bundled sample it is within 0.03 % of
    it).  The run stops at the first sample where

    * ``E <= (1 + NOISE_GAP) nu``: the error is within ``NOISE_GAP`` (1 %) of the
      best any k-component model can reach, so within 1 % of the converged error,
      and what is left to gain is the noise (``stopped_by="noise"``); or
    * ``E_prev^2 - E^2 <= NOISE_STALL nu^2``: over the last ``every`` iterations the
      squared error fell by less than ``NOISE_STALL`` (3e-4) of the noise energy,
      for fits that cannot come near ``nu`` (a sum constraint, locked spectra, a
      poor local optimum; ``stopped_by="noise-stall"``); or
    * the ``"tol"`` rule above, with the caller's ``tol`` (``stopped_by="tol"``).

    On data without noise (``nu`` = 0) only an exact fit or a stall ends it early.
    ``tol=0`` keeps its meaning, run to ``max_iter``: ``stop="auto"`` then takes the
    ``"tol"`` rule.
    The objective the rule watches includes an anchor's penalty (it only makes the
    rule later).  Measured (``tests/core/test_stopping.py``, extrapolated HALS): the
    benchmark stack (16384 px x 64 ch, k = 5) stops at iteration 20, 0.64 % above
    the error of 1500 iterations, where the ``tol=1e-4`` rule ran 130 iterations;
    the bundled sample at iteration 10, 0.11 % above (plain HALS: 50 and 20
    iterations, 0.68 % and 0.54 % above).  The full 512 x 512 px stack stops at
    iteration 20 (plain HALS 40; the issue's default run took 670).
"""

from __future__ import annotations

import numpy as np

from ._common import SampledErrorStopping, chunk_slices
from .pooled import gram_sum

__all__ = ["NOISE_GAP", "NOISE_PIXELS", "NOISE_STALL", "STOP_RULES", "NoiseStopping",
           "TolStopping", "check_stop", "make_stop", "noise_level"]

#: Stop when the error is within this fraction of the rank-k SVD residual.
NOISE_GAP = 0.01
#: Stop when the squared error fell by less than this fraction of the noise energy
#: over one sampling interval.
NOISE_STALL = 3e-4
#: Pixels of the sample the noise level is estimated from.
NOISE_PIXELS = 16384

#: The rules a caller may ask for: name -> what it is.
STOP_RULES = {
    "auto": "noise for random NNMF by HALS and FCLS (tol > 0), tol for the others "
            "(seeded, MU, tol=0)",
    "noise": "within 1 % of the rank-k SVD residual (the noise), or stalled against it",
    "tol": "relative improvement of the objective <= tol between samples",
}


#: Rows of the noise sample per block of its Gram product.
NOISE_BLOCK_ROWS = 2048


def noise_level(X, k: int, *, max_pixels: int = NOISE_PIXELS, n_jobs=1) -> float:
    """The residual norm of the best rank-``k`` approximation of ``X``, estimated.

    ``sqrt(sum_{j > k} lambda_j)``, ``lambda`` the eigenvalues of ``Xs^T Xs`` for the
    sample ``Xs = X[::stride]`` (at most ``max_pixels`` rows), scaled by
    ``n / n_sample``; in float64.  0 for ``k >= n_channels``.  ``Xs^T Xs`` is summed
    over blocks of the sample in block order on ``n_jobs`` worker threads
    (``core.parallel``: the same value for every ``n_jobs``; BLAS at one thread per
    worker, so that none is left spinning for the solver that starts next).
    """
    from ..parallel import Workers

    n, m = X.shape
    if k >= m or n == 0:
        return 0.0
    stride = max(1, -(-n // max_pixels))
    sample = X[::stride]    # a view of a numpy X; a dask X computed once, below
    if not isinstance(sample, np.ndarray):   # the run's graph policy on a cluster
        from ..chunked.scheduler import compute

        sample = compute(sample)[0]
    sample = np.asarray(sample)
    n_s = sample.shape[0]
    blocks = chunk_slices(n_s, NOISE_BLOCK_ROWS)
    with Workers(n_jobs, len(blocks)) as workers:
        lam = np.linalg.eigvalsh(gram_sum(sample, blocks, workers))   # ascending
    tail = float(np.clip(lam[: m - k], 0.0, None).sum())
    return float(np.sqrt(tail * n / n_s))


class TolStopping(SampledErrorStopping):
    """The sampled relative-improvement rule, recording ``stopped_by="tol"``."""

    name = "tol"

    def __init__(self, tol, every, eps, **kwargs):
        super().__init__(tol, every, eps, **kwargs)
        self.stopped_by = None

    def update(self, iteration, error):
        done = super().update(iteration, error)
        if done:
            self.stopped_by = "tol"
        return done

    def describe(self, scale: float = 1.0) -> str:
        """The rule in words (``scale``: the data's units per unit the rule saw)."""
        return f"relative improvement of the objective <= tol={self.tol:g} between samples " \
               f"every {self.every} iterations"


class NoiseStopping(TolStopping):
    """The noise-scaled rule of the module documentation.

    Parameters
    ----------
    tol, every, eps, report, max_iter
        As for :class:`~._common.SampledErrorStopping` (the ``"tol"`` part).
    noise : float
        ``nu``, in the units of the errors the rule is given (:func:`noise_level`).
    gap, stall : float
        :data:`NOISE_GAP`, :data:`NOISE_STALL`.
    """

    name = "noise"

    def __init__(self, tol, every, eps, *, noise, gap=NOISE_GAP, stall=NOISE_STALL,
                 **kwargs):
        super().__init__(tol, every, eps, **kwargs)
        self.noise = float(noise)
        self.gap = float(gap)
        self.stall = float(stall)

    def update(self, iteration, error):
        previous = self.history[-1][1] if self.history else None
        done = super().update(iteration, error)
        if previous is None or done:
            return done
        error = float(error)
        if error <= (1.0 + self.gap) * self.noise:
            self.stopped_by = "noise"
        elif previous * previous - error * error <= self.stall * self.noise ** 2:
            self.stopped_by = "noise-stall"
        return self.stopped_by is not None

    def describe(self, scale: float = 1.0) -> str:
        return (f"noise-scaled: error <= (1 + {self.gap:g}) x the rank-k SVD residual "
                f"{self.noise * scale:.6g} (the noise), or the squared error falling by <= "
                f"{self.stall:g} x the noise's square between samples, or the relative "
                f"improvement <= tol={self.tol:g}; samples every {self.every} iterations")


def check_stop(stop) -> str:
    """``stop`` if it names a rule of :data:`STOP_RULES`; a ``ValueError`` otherwise."""
    if not isinstance(stop, str) or stop not in STOP_RULES:
        raise ValueError(f"Unknown stop {stop!r}; choose one of {', '.join(STOP_RULES)}.")
    return stop


def make_stop(stop, spec, X, k, *, tol, every, report=None, max_iter=None,
              loss="frobenius", seeded=False, n_jobs=1, data_scale=1.0):
    """The rule object a solver of ``spec`` stops by, or ``None`` (scikit-learn's own).

    ``stop="auto"``: :class:`NoiseStopping` for random NNMF (not ``seeded``) by HALS
    or FCLS on least squares with ``tol > 0``, :class:`TolStopping` for the others
    (seeded runs keep the rule their anchors and drift reports were measured with;
    ``tol=0`` asks for every iteration up to ``max_iter``); ``"noise"``
    refuses the Poisson loss (its objective is not a squared error) and
    scikit-learn (its own rule).  ``data_scale``: the power of two ``X`` is at when
    the solver fits it unscaled (``core.nmf``); the guard of the relative
    improvement (``eps``) scales with it, so that tiny data stop where their scaled
    copy would (an absolute ``eps`` above errors of 1e-9 stopped them at once).
    """
    check_stop(stop)
    if spec.backend == "sklearn":
        if stop == "noise":
            raise ValueError(f"stop='noise' needs one of the project's solvers; "
                             f"{spec.algorithm}/sklearn stops by scikit-learn's own rule.")
        return None
    if stop == "noise" and loss != "frobenius":
        raise ValueError("stop='noise' watches a squared error; the Poisson loss stops by "
                         "stop='tol' (or 'auto').")
    # the guard of the relative improvement, at the power of two ``X`` is at (the
    # data's own when a solver fits it unscaled): the same decisions at any scale
    eps = float(np.finfo(X.dtype).eps) * float(data_scale)
    kwargs = {"report": report, "max_iter": max_iter}
    if stop == "noise" or (stop == "auto" and not seeded and tol > 0
                           and spec.algorithm in ("hals", "fcls") and loss == "frobenius"):
        return NoiseStopping(tol, every, eps, noise=noise_level(X, k, n_jobs=n_jobs),
                             **kwargs)
    return TolStopping(tol, every, eps, **kwargs)
