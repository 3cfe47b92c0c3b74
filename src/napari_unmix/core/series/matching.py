"""Putting the components of per-slice fits in the same order on every plane."""

from __future__ import annotations

import numpy as np

from ..metrics import match_components, spectral_angle
from ..series_choice import MATCH_POLICIES
from ..summaries import MatchSummary, PCASummary

__all__ = ["MATCH_POLICIES", "align_planes", "match_spectra"]



def match_spectra(H_ref, H, signed):
    """Order (and signs) putting ``H``'s components in line with ``H_ref``'s."""
    if not signed:
        m = match_components(H_ref, H)
        order = np.empty(len(H_ref), dtype=int)
        order[m.true_index] = m.est_index
        return order, np.ones(len(order)), spectral_angle(H_ref, H[order])
    angles = np.atleast_2d(spectral_angle(H_ref[:, None, :], H[None, :, :]))
    folded = np.minimum(angles, np.pi - angles)
    from scipy.optimize import linear_sum_assignment  # deferred: 0.5 s to import

    rows, cols = linear_sum_assignment(np.where(np.isnan(folded), np.pi / 2, folded))
    order = np.empty(len(H_ref), dtype=int)
    order[rows] = cols
    raw = angles[np.arange(len(order)), order]
    signs = np.where(raw > np.pi / 2, -1.0, 1.0)
    return order, signs, np.minimum(raw, np.pi - raw)


def align_planes(maps, Hs, planes, reference, policy, signed):
    """Reorder every plane's components in place; record the pairing per plane."""
    n = len(Hs)
    k = Hs.shape[1]
    ref = planes[reference]
    ref.matched_to, ref.order, ref.signs, ref.angles = None, list(range(k)), [1.0] * k, \
        [0.0] * k
    chain = [(z, z - 1) for z in range(reference + 1, n)] + \
            [(z, z + 1) for z in range(reference - 1, -1, -1)]
    for z, prev in chain:
        target = reference if policy == "reference" else prev
        if policy == "none":
            order, signs = np.arange(k), np.ones(k)
            angles = spectral_angle(Hs[target], Hs[z])
        else:
            order, signs, angles = match_spectra(Hs[target], Hs[z], signed)
            Hs[z] = Hs[z][order] * signs[:, None].astype(Hs.dtype)
            if not np.array_equal(order, np.arange(k)) or (signs < 0).any():
                plane = np.asarray(maps[:, z])   # numpy, or a plane read from a store
                maps[:, z] = plane[order] * signs.astype(plane.dtype).reshape(
                    (k,) + (1,) * (plane.ndim - 1))
            fit = planes[z].fit
            if isinstance(fit, PCASummary) and len(fit.explained_variance_ratio or []) == k:
                evr = fit.explained_variance_ratio  # per-component values follow the maps
                fit.explained_variance_ratio = [evr[i] for i in order]
        p = planes[z]
        p.matched_to, p.order, p.signs = int(target), order.tolist(), signs.tolist()
        p.angles = np.atleast_1d(angles).astype(float).tolist()
    all_angles = np.array([a for p in planes for a in p.angles], dtype=float)
    return MatchSummary(
        policy=policy,
        reference=int(reference),
        max_angle=float(np.nanmax(all_angles)) if all_angles.size else 0.0,
        mean_angle=float(np.nanmean(all_angles)) if all_angles.size else 0.0,
        reordered_planes=[p.plane for p in planes
                          if p.order != list(range(k)) or min(p.signs) < 0],
    )
