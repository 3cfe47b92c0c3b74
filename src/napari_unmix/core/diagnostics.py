"""What a seeded fit did to its seeds: drift of each spectrum, and collapsed pairs.

After seeded NNMF every fitted spectrum is compared with its seed (the spectral
angle between ``H[j]`` and ``H0[j]``) and with every other fitted spectrum.  A
component that moved far from its seed (more than :data:`DRIFT_WARN_RAD`) may have
been pulled onto another material or onto a background; two components whose
spectra became indistinguishable (closer than :data:`COLLAPSE_WARN_RAD`: identical
seeds, two shapes over one region) make a rank-deficient fit whose two maps split
one material arbitrarily.  Both are reported in the fit summary
(:class:`SeedDrift`) and as warnings.
"""

from __future__ import annotations

import numpy as np

from .summaries import SeedDrift

__all__ = ["COLLAPSE_WARN_RAD", "DRIFT_WARN_RAD", "SeedDrift", "seed_drift"]

#: A fitted spectrum this far (radians) from its seed is reported as drifted (30 deg).
#: Seeds a little off (a shifted or blurred band) are corrected by 10-25 deg in the
#: tests and benchmarks; a spectrum taken over by another material moves 45-80 deg.
DRIFT_WARN_RAD = float(np.radians(30.0))
#: Two fitted spectra closer than this (radians) are reported as collapsed (2.9 deg).
COLLAPSE_WARN_RAD = 0.05


def _unit_rows(H):
    H = np.asarray(H, dtype=np.float64)
    n = np.linalg.norm(H, axis=1)
    return H / np.where(n > 0, n, 1.0)[:, None], n > 0


def seed_drift(H, H0, *, names=None, drift_limit=DRIFT_WARN_RAD,
               collapse_limit=COLLAPSE_WARN_RAD) -> tuple[SeedDrift, list[str]]:
    """Compare fitted spectra with their seeds and with each other.

    Parameters
    ----------
    H, H0 : array_like (k, n_channels)
        Fitted spectra and their seeds.
    names : sequence of str, optional
        Component names for the messages (default ``component 0`` ...).

    Returns
    -------
    SeedDrift
    messages : list of str
        One warning line per drifted component and per collapsed pair.
    """
    U, ok = _unit_rows(H)
    U0, ok0 = _unit_rows(H0)
    k = U.shape[0]
    names = [f"component {j}" for j in range(k)] if names is None else list(names)
    cos = np.clip(np.einsum("ij,ij->i", U, U0), -1.0, 1.0)
    angles = np.where(ok & ok0, np.arccos(cos), np.pi / 2)
    drifted = [int(j) for j in np.flatnonzero(angles > drift_limit)]
    pair_cos = np.clip(U @ U.T, -1.0, 1.0)
    pair = np.arccos(pair_cos)
    pair[~(ok[:, None] & ok[None, :])] = np.pi / 2
    iu = np.triu_indices(k, 1)
    collapsed, min_pair = [], None
    if iu[0].size:
        vals = pair[iu]
        best = int(np.argmin(vals))
        min_pair = [int(iu[0][best]), int(iu[1][best]), float(vals[best])]
        collapsed = [[int(i), int(j)] for i, j, v in zip(*iu, vals, strict=True)
                     if v < collapse_limit]
    messages = [f"{names[j]!r} moved {np.degrees(angles[j]):.0f} deg away from its seed "
                "spectrum: check that the fit did not turn it into another material or a "
                "background (trust the seed more, or seed that material)." for j in drifted]
    messages += [f"{names[i]!r} and {names[j]!r} have indistinguishable spectra "
                 f"({np.degrees(pair[i, j]):.1f} deg apart): their maps split one material "
                 "arbitrarily. Seed them from different regions, or remove one."
                 for i, j in collapsed]
    drift = SeedDrift(angles=[float(a) for a in angles], drifted=drifted, min_pair=min_pair,
                      collapsed=collapsed, drift_limit=float(drift_limit),
                      collapse_limit=float(collapse_limit))
    return drift, messages
