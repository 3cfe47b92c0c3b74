"""What a seeded fit did to its seeds: drift of each spectrum, and collapsed pairs.

After seeded NNMF every fitted spectrum is compared with its seed (the spectral
angle between ``H[j]`` and ``H0[j]``) and with every other fitted spectrum.  A
component that moved far from its seed (more than :data:`DRIFT_WARN_RAD`) may have
been pulled onto another material or onto a background; two components whose
spectra became indistinguishable (closer than :data:`COLLAPSE_WARN_RAD`: identical
seeds, two shapes over one region) make a rank-deficient fit whose two maps split
one material arbitrarily.  Both are reported in the fit summary
(:class:`SeedDrift`) and as warnings, as are two seeds that are already
indistinguishable before the fit (the fit may pull them apart, but then the data
alone, not the seeds, decided what each became).
"""

from __future__ import annotations

import numpy as np

from .summaries import SeedDrift

__all__ = ["COLLAPSE_WARN_RAD", "CONDITION_WARN", "DRIFT_WARN_RAD", "SeedDrift",
           "identifiability", "seed_drift"]

#: Spectra (each at unit norm) with a condition number above this make abundances
#: ill-determined; it is also where the exact NNLS solver treats them as dependent.
CONDITION_WARN = 1e6

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
        One warning line per drifted component, per collapsed pair and per pair of
        alike seeds that the fit pulled apart.
    """
    U, ok = _unit_rows(H)
    U0, ok0 = _unit_rows(H0)
    k = U.shape[0]
    names = [f"component {j}" for j in range(k)] if names is None else list(names)
    cos = np.clip(np.einsum("ij,ij->i", U, U0), -1.0, 1.0)
    angles = np.where(ok & ok0, np.arccos(cos), np.pi / 2)
    drifted = [int(j) for j in np.flatnonzero(angles > drift_limit)]
    pair = _pair_angles(U, ok)
    iu = np.triu_indices(k, 1)
    collapsed, alike, min_pair = [], [], None
    if iu[0].size:
        vals = pair[iu]
        best = int(np.argmin(vals))
        min_pair = [int(iu[0][best]), int(iu[1][best]), float(vals[best])]
        collapsed = [[int(i), int(j)] for i, j, v in zip(*iu, vals, strict=True)
                     if v < collapse_limit]
        seed_pair = _pair_angles(U0, ok0)
        alike = [[int(i), int(j)] for i, j, v in zip(*iu, seed_pair[iu], strict=True)
                 if v < collapse_limit]
    messages = [f"{names[j]!r} moved {np.degrees(angles[j]):.0f} deg away from its seed "
                "spectrum: check that the fit did not turn it into another material or a "
                "background (trust the seed more, or seed that material)." for j in drifted]
    messages += [f"{names[i]!r} and {names[j]!r} have indistinguishable spectra "
                 f"({np.degrees(pair[i, j]):.1f} deg apart): their maps split one material "
                 "arbitrarily. Seed them from different regions, or remove one."
                 for i, j in collapsed]
    # alike seeds that the fit pulled apart: what separates them came from the data
    # alone (a material nobody seeded, or noise), not from what the user seeded
    messages += [f"{names[i]!r} and {names[j]!r} start from the same seed spectrum "
                 f"({np.degrees(seed_pair[i, j]):.1f} deg apart; two regions over one "
                 "material?): what tells their fitted spectra apart comes from the data, "
                 "not from the seeds. Seed them from different regions, or remove one."
                 for i, j in alike if [i, j] not in collapsed]
    drift = SeedDrift(angles=[float(a) for a in angles], drifted=drifted, min_pair=min_pair,
                      collapsed=collapsed, seeds_alike=alike, drift_limit=float(drift_limit),
                      collapse_limit=float(collapse_limit))
    return drift, messages


def _pair_angles(U, ok):
    """Angles (radians) between the unit rows ``U``; pi / 2 where a row is zero."""
    pair = np.arccos(np.clip(U @ U.T, -1.0, 1.0))
    pair[~(ok[:, None] & ok[None, :])] = np.pi / 2
    return pair


def identifiability(H, *, names=None) -> tuple[float, list[str]]:
    """What makes the abundances of fixed spectra ``H`` not unique or ill-determined.

    Parameters
    ----------
    H : array_like (k, n_channels)
    names : sequence of str, optional
        Component names for the messages.

    Returns
    -------
    condition_number : float
        Of the non-zero spectra of ``H``, each at unit norm (``inf``: linearly
        dependent).
    messages : list of str
        All-zero spectra; more spectra than channels; identical spectra; spectra
        that are linearly dependent, or nearly so (a condition number above
        :data:`CONDITION_WARN`, naming the most similar pair when it is close).
    """
    U, ok = _unit_rows(H)
    k, m = U.shape
    names = [f"component {j}" for j in range(k)] if names is None else list(names)
    messages = [f"{names[j]!r} has an all-zero spectrum: its abundance is 0 in every pixel. "
                "Remove it, or give it a spectrum." for j in np.flatnonzero(~ok)]
    live = np.flatnonzero(ok)
    V = U[live]
    s = np.linalg.svd(V, compute_uv=False) if live.size else np.ones(1)
    dependent = s.size < live.size or s[-1] <= 64 * np.finfo(float).eps * s[0]
    cond = float("inf") if dependent else float(s[0] / s[-1])
    if live.size > m:
        messages.append(f"{live.size} spectra on {m} channels: every pixel fits them in many "
                        "ways, so the abundances are not unique. Use at most as many spectra "
                        "as channels.")
        return cond, messages
    cos = np.clip(V @ V.T, -1.0, 1.0)
    iu = np.triu_indices(live.size, 1)
    same = [(live[a], live[b]) for a, b in zip(*iu, strict=True) if cos[a, b] > 1 - 1e-14]
    messages += [f"{names[i]!r} and {names[j]!r} have the same spectrum: how a pixel splits "
                 "between them is arbitrary. Remove one." for i, j in same]
    if not same and cond > CONDITION_WARN:
        a, b = max(zip(*iu, strict=True), key=lambda p: cos[p], default=(None, None))
        angle = None if a is None else float(np.degrees(np.arccos(cos[a, b])))
        pair = (f" ({names[live[a]]!r} and {names[live[b]]!r} are {angle:.2g} deg apart)"
                if angle is not None and angle < 10 else "")
        if np.isinf(cond):
            messages.append("the spectra are linearly dependent (one is a combination of "
                            f"others){pair}: the abundances are not unique. Drop the spectra "
                            "that the others explain.")
        else:
            messages.append(f"the spectra are nearly collinear{pair}: condition number "
                            f"{cond:.2g}, so their abundances are ill-determined (small noise "
                            "moves abundance between them), and beyond "
                            f"{CONDITION_WARN:.0e} the exact solver treats them as dependent. "
                            "Merge or drop similar spectra.")
    return cond, messages
