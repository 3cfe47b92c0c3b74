"""Extrapolated HALS: a momentum step on the spectra between iterations, with restarts.

Ang & Gillis (2019, "Accelerating nonnegative matrix factorization algorithms using
extrapolation", *Neural Computation* 31) accelerate alternating NNMF solvers by
starting each iteration not from the last spectra ``H_n`` but from a point beyond
them on the line through the previous ones,
``Hx = max(0, H_n + beta (H_n - H_{n-1}))``, and by adapting ``beta`` to what the
objective does:

* the iteration lowered the objective: keep its result and let ``beta`` grow
  (``beta <- min(beta_max, GAMMA beta)``, ``beta_max <- min(1, GAMMA_BAR beta_max)``);
* it raised it: throw the step away (``W`` and ``H`` go back to the iterate before
  it), shrink ``beta`` (``beta_max <- beta``, ``beta <- beta / ETA``) and take a
  plain HALS step from there.

Only ``H`` (k x m, small) is extrapolated; ``W`` follows it, since the W half-step's
8 sweeps nearly solve each pixel's abundances for the given spectra.  Plain steps
(the first, and every one after a restart) are always kept, and HALS never raises
the objective on those, so the accepted iterates have a non-increasing objective up
to rounding: the sampled stopping rules see the same kind of sequence as without
extrapolation.  Locked rows are never extrapolated (they stay bit-identical).

Deciding needs the objective after every iteration.  It comes almost for free from
what the half-steps formed: with ``C = W^T X`` and ``D = W^T W`` of the new ``W``,
``||X - W H||^2 = ||X||^2 - 2 <C, H> + <D, H H^T>`` (float64, ``O(k m + k^2 m)``),
plus the anchor's penalty.  It loses digits to cancellation when the fit is close,
so it only steers ``beta``; the errors a run reports and stops by are the exact
ones of the stopping rule.  Its decisions (undo a step; end at the resolution)
compare objectives whose differences come to a few ``eps32 ||X||^2``: with ``C``
and ``D`` summed in float32 their rounding alone is 1-5 ``eps32 ||X||^2``, so
float32 data took other decisions than the same data in float64 (maps 1.4e-2
apart at the noise stop, measured on the bundled sample).  So while it is on, a
solver on data below float64 sums ``C`` and ``D`` in float64
(:meth:`Extrapolation.needs_float64`; about 15 % of a float32 iteration, for the
few iterations it lasts) and the decisions are float64's.

Measured by ``benchmarks/extrapolation.py`` (2 cores, every default, errors sampled
every 10 iterations): from the nndsvda start (the default) the noise-scaled stop came
at iteration 20 instead of 40 on the benchmark stack (512 x 512 px x 64 ch, k = 5;
0.80 s against 1.55 s), 10 instead of 20 on Samson, 20 instead of 90 on Jasper Ridge,
and at the same or a lower error; from random starts 20-30 iterations instead of
30-190 on the bundled sample and the real scenes, but 240 instead of 170 on the
benchmark stack, where both end by the stall rule at the same error (7.9 s against
4.5 s).

It is the default (:data:`EXTRAPOLATE`) of the numpy, torch and chunked (dask)
HALS; ``extrapolate=False`` gives plain HALS.  Limits: on noise-free float64 data
the objective keeps improving far below float32's resolution, where extrapolation
has already ended, so a run there can end slower than plain HALS (the ``overlap``
fixture of the tests: 400 iterations to an error of 2.0e-2 against 9.8e-3); and a
random start sometimes reaches a saddle where both crawl and the noise stop's stall
rule ends the run 1-2 % above the best error (the bundled sample at k = 4: 6 of 20
starts, 4 of 20 with plain HALS).  On the torch backend the decision reads one
number back from the device per iteration.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["BETA0", "ETA", "EXTRAPOLATE", "GAMMA", "GAMMA_BAR", "Extrapolation"]

#: Extrapolate H between HALS iterations by default (numpy, torch and the chunked
#: HALS of ``core.chunked`` alike).
EXTRAPOLATE = True
#: The first extrapolation weight.
BETA0 = 0.5
#: ``beta`` is divided by this after a step that raised the objective.
ETA = 1.5
#: ``beta`` grows by this factor after each step that lowered it (up to ``beta_max``).
GAMMA = 1.05
#: ``beta_max`` grows by this factor after each step that lowered it (up to 1).
GAMMA_BAR = 1.01
#: Extrapolation ends for good once a kept step lowered the objective by less than
#: this many ``eps32 ||X||^2``, ``eps32`` float32's machine epsilon: the resolution of
#: the objective it steers by on float32 data (C = W^T X is summed in float32 there).
#: It is float32's for float64 data too, so that both switch to plain HALS at the
#: same point of a run and give the same factors up to rounding.
RESOLUTION = 10.0
_EPS32 = float(np.finfo(np.float32).eps)


class Extrapolation:
    """The state of the H extrapolation of one HALS run (module documentation).

    A solver makes each iteration through :meth:`run` (which calls :meth:`start`
    before it and :meth:`finish` after it, and makes an undone iteration again as
    a plain step), and calls :meth:`rescale` after a scale balance.  Works on numpy
    arrays and on torch tensors alike (``xp`` says which); ``W`` stays with the
    solver (an array, a tensor or a persisted dask array).

    Parameters
    ----------
    H : array (k, m)
        The spectra, updated in place by the solver (the accepted iterate between
        iterations).
    free : ndarray (k,) bool
        The rows that may move (locked rows are never extrapolated).
    xx : float, optional
        ``||X||^2`` in float64; a solver that learns it in its first pass gives it
        to :meth:`know_norm` before the first :meth:`finish`.
    xp : {"numpy", "torch"}
    """

    def __init__(self, H, free, xx: float | None = None, *, xp: str = "numpy"):
        self.xp = xp
        self.free = np.flatnonzero(np.asarray(free, dtype=bool)).tolist()
        self.xx = self.floor = None
        if xx is not None:
            self.know_norm(xx)
        self.off = False
        self.beta, self.beta_max = BETA0, 1.0
        self.previous = math.inf         # the objective of the accepted iterate
        self.H_prev = self._copy(H)      # the accepted iterate before the last step
        self.H_next = None               # the extrapolated start of the next step
        self.extrapolated = False        # the current step started from H_next
        self.n_restarts = 0
        self.n_kept = 0                  # steps kept so far
        self.ended_after = None          # kept steps when it ended (None: still on)

    def know_norm(self, xx: float) -> None:
        """``||X||^2``: the objective's reference and the resolution floor."""
        self.xx = float(xx)
        self.floor = RESOLUTION * _EPS32 * self.xx

    def needs_float64(self, dtype) -> bool:
        """Whether a solver on data of ``dtype`` (numpy's or torch's) must give
        :meth:`objective` float64 sums of ``C`` and ``D`` while this is on (below
        float64 the rounding of its own sums is as large as the margins it decides
        by)."""
        return str(dtype).removeprefix("torch.") != "float64"

    def _copy(self, A):
        return A.clone() if self.xp == "torch" else A.copy()

    def start(self, H) -> bool:
        """Before the W half-step: remember the accepted iterate and move ``H`` (in
        place) to the extrapolated start when there is one; True then (the solver
        keeps ``W`` to undo the step)."""
        self.H_prev[...] = H
        self.extrapolated = self.H_next is not None
        if self.extrapolated:
            H[...] = self.H_next
        return self.extrapolated

    def run(self, H, iterate, objective, save_w, restore_w):
        """One iteration of the solver, extrapolated: ``iterate()`` makes it from the
        current ``W`` and ``H`` (both in place) and returns what the solver needs of
        it, ``objective(out)`` the objective after it; ``save_w()`` keeps ``W`` before
        an extrapolated step, ``restore_w()`` puts it back when the step is undone.
        Returns what the kept iteration's ``iterate()`` returned."""
        if self.start(H):
            save_w()
        out = iterate()
        while not self.finish(H, objective(out)):
            restore_w()
            out = iterate()   # a plain step: always kept
        return out

    def objective(self, C, D, H, penalty: float = 0.0) -> float:
        """``||X - W H||^2`` (+ ``penalty``) from ``C = W^T X``, ``D = W^T W``."""
        if self.xp == "torch":
            Hd = H.double()
            cross = float((C.double() * Hd).sum())
            gram = float((D.double() * (Hd @ Hd.T)).sum())
        else:
            Hd = np.asarray(H, dtype=np.float64)
            cross = float(np.einsum("ij,ij->", np.asarray(C, dtype=np.float64), Hd))
            gram = float(np.einsum("ij,ij->", np.asarray(D, dtype=np.float64), Hd @ Hd.T))
        return self.xx - 2.0 * cross + gram + penalty

    def finish(self, H, objective: float) -> bool:
        """After the H half-step: keep the step, or undo it (``H`` back in place; the
        solver puts ``W`` back and makes the iteration again, as a plain step); adapt
        ``beta`` and prepare the next start.  True when the step is kept."""
        if self.extrapolated and not objective <= self.previous:
            H[...] = self.H_prev
            self.beta_max = self.beta
            self.beta /= ETA
            self.H_next = None
            self.extrapolated = False
            self.n_restarts += 1
            return False
        if self.extrapolated:
            self.beta = min(self.beta_max, GAMMA * self.beta)
            self.beta_max = min(1.0, GAMMA_BAR * self.beta_max)
        self.extrapolated = False
        self.n_kept += 1
        if not self.off and self.previous - objective <= self.floor:
            self.off = True  # progress below what the objective can resolve: plain HALS
            self.ended_after = self.n_kept
        self.previous = objective
        if self.off:
            self.H_next = None
            return True
        nxt = self._copy(H)
        for j in self.free:
            step = H[j] + self.beta * (H[j] - self.H_prev[j])
            if self.xp == "torch":
                nxt[j] = step.clamp_min_(0)
            else:
                np.maximum(step, 0, out=nxt[j])
        self.H_next = nxt
        return True

    def record(self) -> dict:
        """What the extrapolation did, for the fit summary: ``n_restarts`` (steps
        undone) and ``ended_after`` (the iteration after which it ended for good at
        the objective's resolution, None when it was still on)."""
        return {"n_restarts": int(self.n_restarts), "ended_after": self.ended_after}

    def rescale(self, factors) -> None:
        """The balance multiplied row ``j`` of ``H`` by ``factors[j]`` (powers of two):
        do the same to the remembered spectra, so that differences stay meaningful."""
        if factors is None:
            return
        for A in (self.H_prev, self.H_next):
            if A is not None:
                A *= factors[:, None]
