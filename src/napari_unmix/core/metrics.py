"""Scores of an unmixing result against a known ground truth.

Used by the demo on the synthetic sample and by benchmarks on real data with
reference endmembers and abundances (Samson, Jasper Ridge).

Conventions
-----------
* Spectral angles are in radians, in ``[0, pi]`` (``[0, pi/2]`` for non-negative
  spectra); this is the unit of the published unmixing benchmarks.
* Components are paired one-to-one by the smallest total spectral angle
  (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`), because an
  unsupervised fit returns its components in arbitrary order.
* Abundance errors are computed on the matched pairs after removing the scale that
  the model cannot determine (see :func:`abundance_errors`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["ComponentMatch", "abundance_errors", "abundance_rmse", "match_components",
           "mean_spectral_angle", "score_against_truth", "spectral_angle"]

ABUNDANCE_SCALES = ("lstsq", "sum-to-one", "none")


def spectral_angle(a, b) -> np.ndarray | float:
    """Angle between spectra: ``arccos(a . b / (|a| |b|))``, in radians.

    Parameters
    ----------
    a, b : array_like, shape (..., n_channels)
        Spectra along the last axis; leading axes broadcast.

    Returns
    -------
    float or ndarray
        The angle(s) in ``[0, pi]``.  The angle is undefined (NaN) where either
        spectrum is all zeros.

    Examples
    --------
    >>> spectral_angle([1, 0], [1, 1])  # 45 degrees
    0.7853981633974484
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"Spectra of different lengths ({a.shape[-1]} and {b.shape[-1]} channels) have no "
            "angle; put them on the same spectral axis first."
        )
    num = np.sum(a * b, axis=-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    angle = np.arccos(np.clip(cos, -1.0, 1.0))
    return float(angle) if np.ndim(angle) == 0 else angle


class ComponentMatch(NamedTuple):
    """One-to-one pairing of true and estimated components.

    Attributes
    ----------
    true_index : ndarray of int
        Index of each matched true component (sorted).
    est_index : ndarray of int
        Index of the estimated component paired with ``true_index[i]``.
    angle : ndarray of float
        Spectral angle (radians) of each pair.
    """

    true_index: np.ndarray
    est_index: np.ndarray
    angle: np.ndarray


def _as_spectra(H, name):
    H = np.asarray(H, dtype=np.float64)
    if H.ndim == 1:
        H = H[None, :]
    if H.ndim != 2 or H.shape[0] == 0:
        raise ValueError(f"{name} must be 2-D (n_components, n_channels), got shape {H.shape}.")
    return H


def match_components(H_true, H_est) -> ComponentMatch:
    """Pair true and estimated spectra one-to-one by the smallest total angle.

    Parameters
    ----------
    H_true : array_like, shape (k_true, n_channels)
    H_est : array_like, shape (k_est, n_channels)
        The numbers of components may differ; then only ``min(k_true, k_est)``
        pairs are formed and the rest stay unmatched.

    Returns
    -------
    ComponentMatch
        ``H_est[m.est_index]`` lines up with ``H_true[m.true_index]``.  An
        all-zero spectrum has an undefined angle; it is matched last (counted as
        the largest possible angle, ``pi``) and its ``angle`` is NaN.
    """
    H_true = _as_spectra(H_true, "H_true")
    H_est = _as_spectra(H_est, "H_est")
    angles = spectral_angle(H_true[:, None, :], H_est[None, :, :])
    angles = np.atleast_2d(angles)
    cost = np.where(np.isnan(angles), np.pi, angles)
    from scipy.optimize import linear_sum_assignment  # deferred: 0.5 s to import

    rows, cols = linear_sum_assignment(cost)
    return ComponentMatch(rows.astype(int), cols.astype(int), angles[rows, cols])


def mean_spectral_angle(H_true, H_est, *, matching: ComponentMatch | None = None) -> float:
    """Mean spectral angle (radians) over the matched component pairs.

    ``matching`` defaults to :func:`match_components` ``(H_true, H_est)``.  NaN
    when a matched estimate is all zeros (an undefined angle is not hidden).
    """
    if matching is None:
        matching = match_components(H_true, H_est)
    return float(np.mean(matching.angle))


def _lstsq_scale(ref, est):
    """Per-column ``c`` minimising ``||ref - c * est||`` (0 for an all-zero column)."""
    num = np.sum(ref * est, axis=0)
    den = np.sum(est * est, axis=0)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def abundance_errors(W_true, W_est, *, H_true=None, H_est=None,
                     matching: ComponentMatch | None = None, scale: str = "lstsq") -> np.ndarray:
    """RMSE of every matched abundance map, after removing the unknown scale.

    NNMF determines each component only up to a factor (``a W_i`` with
    ``H_i / a`` fits equally well), so raw abundances of different methods are
    not comparable.  ``scale`` says how that factor is fixed before comparing:

    ``"lstsq"`` (default)
        Every estimated map is multiplied by the factor that brings it closest,
        in least squares, to its matched true map.  This removes exactly the
        freedom the model has and nothing more, so the error measures the shape
        of the map, in the units of the true abundances.  It works for any data
        (abundances need not sum to one) and for fixed-H NNLS, whose scale is
        already fixed (its factor is then close to 1).  It is the most favourable
        scale, so it is a lower bound on the error of any other convention.
    ``"sum-to-one"``
        The convention of remote-sensing benchmarks whose true abundances sum to
        one per pixel (Samson, Jasper Ridge): the estimated spectra are first
        scaled to their matched true spectra (least squares on ``H``, moving the
        inverse factor into ``W``), then every pixel's matched abundances, true
        and estimated, are divided by their sum.  Needs ``H_true`` and ``H_est``.
        Pixels whose abundances sum to zero are left out.
    ``"none"``
        Compare as given.

    Parameters
    ----------
    W_true : array_like, shape (n_pixels, k_true)
    W_est : array_like, shape (n_pixels, k_est)
    H_true, H_est : array_like, optional
        Spectra, used to match components (when ``matching`` is not given) and for
        ``scale="sum-to-one"``.
    matching : ComponentMatch, optional
        A pairing from :func:`match_components`.
    scale : {"lstsq", "sum-to-one", "none"}

    Returns
    -------
    ndarray, shape (n_matched,)
        RMSE over pixels of each matched pair, in the order of ``matching``.
    """
    if scale not in ABUNDANCE_SCALES:
        raise ValueError(f"scale={scale!r} is not one of {', '.join(ABUNDANCE_SCALES)}.")
    W_true = np.asarray(W_true, dtype=np.float64)
    W_est = np.asarray(W_est, dtype=np.float64)
    if W_true.ndim != 2 or W_est.ndim != 2:
        raise ValueError(f"W_true {W_true.shape} and W_est {W_est.shape} must be 2-D "
                         "(n_pixels, n_components).")
    if W_true.shape[0] != W_est.shape[0]:
        raise ValueError(f"W_true has {W_true.shape[0]} pixels but W_est has {W_est.shape[0]}; "
                         "they must describe the same pixels in the same order.")
    if matching is None:
        if H_true is None or H_est is None:
            raise ValueError("Pass H_true and H_est (to match components by spectral angle) "
                             "or a matching from match_components.")
        matching = match_components(H_true, H_est)
    ti, ei = matching.true_index, matching.est_index
    A = W_true[:, ti]
    B = W_est[:, ei]
    if scale == "lstsq":
        B = B * _lstsq_scale(A, B)
    elif scale == "sum-to-one":
        if H_true is None or H_est is None:
            raise ValueError('scale="sum-to-one" needs H_true and H_est to put the estimated '
                             "components on the scale of the true spectra.")
        Ht = _as_spectra(H_true, "H_true")[ti]
        He = _as_spectra(H_est, "H_est")[ei]
        c = _lstsq_scale(Ht.T, He.T)  # H_est_i * c_i ~ H_true_i, so W_est_i / c_i
        with np.errstate(divide="ignore", invalid="ignore"):
            B = np.where(c > 0, B / np.where(c > 0, c, 1.0), 0.0)
        sa, sb = A.sum(axis=1), B.sum(axis=1)
        keep = (sa > 0) & (sb > 0)
        A = A[keep] / sa[keep, None]
        B = B[keep] / sb[keep, None]
    return np.sqrt(np.mean((A - B) ** 2, axis=0))


def abundance_rmse(W_true, W_est, *, H_true=None, H_est=None,
                   matching: ComponentMatch | None = None, scale: str = "lstsq") -> float:
    """Mean over matched components of the abundance RMSE (see :func:`abundance_errors`)."""
    return float(np.mean(abundance_errors(W_true, W_est, H_true=H_true, H_est=H_est,
                                          matching=matching, scale=scale)))


def score_against_truth(W_true, H_true, W_est, H_est, *, names=None,
                        scale: str = "lstsq") -> dict:
    """All the ground-truth scores of one fit, as a JSON-ready dict.

    Returns
    -------
    dict
        ``mean_spectral_angle`` (radians) and ``mean_spectral_angle_deg``,
        ``abundance_rmse`` (with ``abundance_scale``), and ``pairs``: for every
        true component, the estimated index it was matched to, the angle and the
        abundance RMSE.
    """
    m = match_components(H_true, H_est)
    errs = abundance_errors(W_true, W_est, H_true=H_true, H_est=H_est, matching=m, scale=scale)
    names = list(names) if names is not None else [f"T{i + 1}" for i in range(len(H_true))]
    pairs = [{"true": names[t], "true_index": int(t), "est_index": int(e),
              "spectral_angle": float(a), "abundance_rmse": float(r)}
             for t, e, a, r in zip(m.true_index, m.est_index, m.angle, errs, strict=True)]
    msa = float(np.mean(m.angle))
    return {"mean_spectral_angle": msa, "mean_spectral_angle_deg": float(np.degrees(msa)),
            "abundance_rmse": float(np.mean(errs)), "abundance_scale": scale, "pairs": pairs}
