"""Would another start give the same spectra? :func:`stability` over random starts.

Random NNMF is run from ``n_starts`` random initialisations (``init="random"``,
seeds ``random_state, random_state + 1, ...``).  The starts' components are matched
one-to-one by spectral angle (:func:`~napari_unmix.core.metrics.match_components`)
to the start with the lowest error, the matched spectra (each scaled to unit norm)
are averaged into a consensus, and the matching is repeated against the consensus.
A component's **spread** is the mean angle between the starts' spectra and its
consensus spectrum: a component the data determine comes back at the same place
from every start (spread near 0), one they do not (a component beyond the real
number, or a rotation the data leave free) lands somewhere else every time.
``reproducible`` is ``spread < threshold`` (0.1 rad, about 6 degrees).

What it measures (``benchmarks/diagnostics.py``): on an image with pure pixels of
four components, every one of them is reproducible to below 0.01 rad, and a fifth,
spurious component spreads by 0.95 rad (the true ones then 0.02-0.08: the extra
component borrows from its neighbours).  On the bundled CRS sample, whose water and
background are nowhere pure, random NNMF is not unique: every component moves 0.13
to 0.30 rad between starts although the error is the same to three digits.  There
only seeds pin the components down.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from .data import stack_to_matrix
from .metrics import match_components, spectral_angle

__all__ = ["StabilityReport", "stability"]


@dataclass
class StabilityReport:
    """Reproducibility of every component over random starts.

    Attributes
    ----------
    spectra : list of list of float, (k, n_channels)
        Consensus spectra (the mean of the matched, unit-norm spectra, scaled to a
        maximum of 1).
    spread : list of float
        Per component, the mean angle (rad) of the starts' spectra to the consensus.
    max_angle : list of float
        Per component, the largest such angle.
    angles : list of list of float, (n_starts, k)
        Every start's angle to the consensus.
    reproducible : list of bool
        ``spread < threshold``.
    threshold : float
    relative_errors : list of float
        Every start's ``||X - W H|| / ||X||``.
    random_states : list of int
    reference : int
        The start with the lowest error (the first matching's reference).
    order : list of list of int, (n_starts, k)
        For every start, its component matched to each consensus component.
    """

    spectra: list
    spread: list
    max_angle: list
    angles: list
    reproducible: list
    threshold: float
    relative_errors: list
    random_states: list
    reference: int
    order: list = field(default_factory=list)

    @property
    def n_components(self) -> int:
        return len(self.spread)

    @property
    def n_starts(self) -> int:
        return len(self.random_states)

    @property
    def n_reproducible(self) -> int:
        return int(sum(self.reproducible))

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> StabilityReport:
        return cls(**d)

    def table(self) -> list[dict]:
        """One row per component (the dock's stability table, the CLI's printout)."""
        return [{"component": j + 1, "spread": self.spread[j], "max_angle": self.max_angle[j],
                 "reproducible": self.reproducible[j]} for j in range(self.n_components)]


def _aligned(Hs, ref):
    """Every start's unit spectra in the order of ``ref`` and the orders."""
    out, orders = [], []
    for H in Hs:
        m = match_components(ref, H)
        order = np.empty(ref.shape[0], dtype=int)
        order[m.true_index] = m.est_index
        out.append(H[order])
        orders.append(order)
    return np.array(out), orders


def _unit(H):
    n = np.linalg.norm(H, axis=-1, keepdims=True)
    return H / np.where(n > 0, n, 1.0)


def stability(X, n_components: int, *, n_starts: int = 10, spectral_axis: int | None = None,
              threshold: float = 0.1, solver: str = "auto", backend: str = "auto",
              max_iter: int = 2000, tol: float = 1e-6, random_state=0,
              callback=None) -> StabilityReport:
    """Run random NNMF from ``n_starts`` starts and report each component's spread.

    Parameters
    ----------
    X : array_like
        ``(n_pixels, n_channels)`` matrix, or a stack with ``spectral_axis``.
    n_components : int
    n_starts : int, default 10
        At least 2.
    threshold : float, default 0.1
        Spread (rad) below which a component counts as reproducible.
    solver, backend, max_iter, tol
        Passed to :func:`~napari_unmix.core.nmf.nmf`.
    random_state : int, numpy Generator or RandomState, or None, default 0
        The first start's seed (the others follow it); a Generator, a RandomState
        or None is first turned into one int seed, recorded in ``random_states``.
    callback : callable, optional
        ``callback(i_start, n_starts) -> bool | None`` after every start; False stops
        early (the report then covers the starts so far, at least 2).

    Returns
    -------
    StabilityReport
    """
    from .init import resolve_random_state
    from .nmf import nmf

    first = resolve_random_state(random_state)   # refuses what is no seed, by name
    n_starts = int(n_starts)
    if n_starts < 2:
        raise ValueError(f"n_starts must be at least 2 to compare starts, got {n_starts}.")
    if spectral_axis is not None:
        X, _ = stack_to_matrix(np.asarray(X), spectral_axis)
    X = np.asarray(X)
    Hs, errs, seeds = [], [], []
    for i in range(n_starts):
        seed = (first + i) % 2**32               # the range every seed must be in
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # caps and drift notes: every start alike
            r = nmf(X, n_components, init="random", random_state=seed, solver=solver,
                    backend=backend, max_iter=max_iter, tol=tol)
        Hs.append(_unit(np.asarray(r.H, dtype=np.float64)))
        errs.append(float(r.summary.relative_error))
        seeds.append(seed)
        if callback is not None and callback(i + 1, n_starts) is False and len(Hs) >= 2:
            break
    best = int(np.argmin(errs))
    aligned, orders = _aligned(Hs, Hs[best])
    consensus = _unit(aligned.mean(axis=0))
    aligned, orders = _aligned(Hs, consensus)  # once more, against the consensus
    consensus = _unit(aligned.mean(axis=0))
    ang = np.nan_to_num(spectral_angle(aligned, consensus[None]), nan=np.pi / 2)
    spread = ang.mean(axis=0)
    peak = consensus.max(axis=1, keepdims=True)
    spectra = consensus / np.where(peak > 0, peak, 1.0)
    return StabilityReport(
        spectra=spectra.tolist(), spread=spread.tolist(), max_angle=ang.max(axis=0).tolist(),
        angles=ang.tolist(), reproducible=[bool(s < threshold) for s in spread],
        threshold=float(threshold), relative_errors=errs, random_states=seeds,
        reference=best, order=[o.tolist() for o in orders])
