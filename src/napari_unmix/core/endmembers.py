"""Purest pixels: endmember candidates found in the geometry of the data.

Where every pure material occupies some pixels, the pixel spectra fill a simplex
whose vertices are those pure spectra: :func:`nfindr` finds the ``k`` pixels that
span the simplex of largest volume (N-FINDR, Winter 1999) in the ``k - 1``
dimensional affine subspace of the data, started from the successive projection
algorithm (:func:`spa`, Araujo et al. 2001), which is deterministic, so the result
needs no random seed.

:func:`purest_pixels` adds what real data needs around it:

* **denoising**: a 3 x 3 spatial mean (when the spatial shape is known and
  neighbouring pixels are alike) and the projection onto the ``k - 1`` leading
  principal directions;
* **two geometries**: ``"affine"`` takes the pixels as they are (fractions that sum
  to one: remote sensing, where a pixel is all of its parts), ``"cone"`` first
  divides every pixel by its sum (concentrations: microscopy, where the brightness
  of a pixel is how much is there; the division maps the cone of the data onto a
  simplex with the same vertices; the darker half of the pixels, and any pixel
  whose norm is below ten times the noise's, are left out of that search: after
  the division their direction is mostly noise).
  ``"auto"`` runs both and keeps the one whose
  candidates fit the data better (a non-negative least-squares fit of every pixel
  on the candidates' region means);
* **outlier guards**: non-finite pixels never take part; pixels far outside the
  ``k``-dimensional signal subspace (their distance to it more than ``outlier_z``
  robust standard deviations above the median distance: hot pixels, cosmic rays,
  saturated spots) are left out of the search; a vertex must be supported by at
  least ``min_support`` pixels close to it (barycentric coordinate at least
  ``purity``), and one that is not (a single odd pixel) is set aside and the search
  runs again without it; a region leaves out its pixels whose spectral angle to the
  region's median spectrum is an outlier.

Every candidate comes with a *region*: the pixels whose barycentric coordinate of
that vertex is at least ``purity`` (at most ``max_region`` of them, the purest
first), whose mean spectrum of the original data is a denoised estimate of the
pure spectrum.  Measured on Samson and Jasper Ridge (``benchmarks/diagnostics.py``):
the region means are 0.026 / 0.044 rad from the published endmembers (mean spectral
angle), where a successive projection on the raw pixels picks 0.38 / 0.32; on the
benchmark cube (cone geometry) 0.014.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import check_positive_int

__all__ = ["GEOMETRIES", "PurestPixels", "neighbours_alike", "nfindr", "principal_axes",
           "purest_pixels", "spa"]

#: How pixel spectra are read before the search (module documentation).
GEOMETRIES = ("auto", "affine", "cone")


def spa(Z, k: int) -> list[int]:
    """Successive projection: ``k`` rows of ``Z``, each of largest norm after
    projecting out the ones chosen before."""
    R = np.array(Z, dtype=np.float64, copy=True)
    chosen: list[int] = []
    for _ in range(k):
        norms = np.einsum("ij,ij->i", R, R)
        if chosen:
            norms[chosen] = -1.0
        j = int(np.argmax(norms))
        chosen.append(j)
        n = np.sqrt(max(norms[j], 0.0))
        if n <= 0:
            continue
        u = R[j] / n
        R -= np.outer(R @ u, u)
    return chosen


def _simplex_matrix(Z, idx):
    return np.vstack([np.ones(len(idx)), Z[idx].T])


def nfindr(Z, k: int, *, start=None, max_sweeps: int = 20) -> list[int]:
    """N-FINDR: ``k`` rows of ``Z`` (``(n, k - 1)`` affine coordinates) spanning the
    simplex of largest volume.

    Every sweep replaces each vertex in turn by the pixel that maximises the
    volume with the others (the volume is linear in the replaced vertex, so one
    cofactor row scores every pixel); it stops when a sweep changes nothing.
    ``start`` defaults to :func:`spa` on the homogeneous coordinates.
    """
    Z = np.asarray(Z, dtype=np.float64)
    n = Z.shape[0]
    if k == 1:
        return [int(np.argmax(np.einsum("ij,ij->i", Z, Z)))] if Z.shape[1] else [0]
    Zh = np.hstack([np.ones((n, 1)), Z])
    idx = list(spa(Zh, k) if start is None else start)
    for _ in range(max_sweeps):
        changed = False
        for i in range(k):
            M = _simplex_matrix(Z, idx)
            # cofactors of column i: det(M with column i = z) = c . [1, z]
            Minor = np.delete(M, i, axis=1)
            c = np.array([(-1) ** (r + i) * np.linalg.det(np.delete(Minor, r, axis=0))
                          for r in range(k)])
            vol = np.abs(Zh @ c)
            others = [idx[j] for j in range(k) if j != i]
            vol[others] = -1.0
            j = int(np.argmax(vol))
            if vol[j] > abs(c @ Zh[idx[i]]) * (1 + 1e-12) and j != idx[i]:
                idx[i] = j
                changed = True
        if not changed:
            break
    return idx


def _barycentric(Z, idx) -> np.ndarray:
    """Barycentric coordinates ``(n, k)`` of every row of ``Z`` in the simplex ``idx``."""
    M = _simplex_matrix(Z, idx)
    rhs = np.vstack([np.ones(Z.shape[0]), Z.T])
    sol, *_ = np.linalg.lstsq(M, rhs, rcond=None)
    return sol.T


def principal_axes(X, r: int) -> np.ndarray:
    """The ``r`` leading right singular vectors of ``X`` (rows ``(r, C)``), from the
    eigenvectors of the ``C x C`` Gram matrix (cheaper than an SVD of ``X``)."""
    if r <= 0:
        return np.zeros((0, X.shape[1]))
    w, V = np.linalg.eigh(X.T @ X)
    return V[:, ::-1][:, :r].T


def _anomalies(X, k, z_max) -> np.ndarray:
    """Pixels whose distance to the ``k``-dimensional principal subspace is more than
    ``z_max`` robust standard deviations above the median (two passes, so that the
    outliers do not shape the subspace they are measured against)."""
    out = np.zeros(X.shape[0], dtype=bool)
    if not np.isfinite(z_max):
        return out
    for _ in range(2):
        V = principal_axes(X[~out], k)
        r = np.linalg.norm(X - (X @ V.T) @ V, axis=1)
        med = np.median(r[~out])
        mad = 1.4826 * np.median(np.abs(r[~out] - med))
        if mad <= 0:
            break
        out = (r - med) / mad > z_max
    return out


def _trim(X, rows) -> np.ndarray:
    """``rows`` without those whose spectral angle to the rows' median spectrum is an
    outlier (above the median angle by more than three robust deviations)."""
    if rows.size < 5:
        return rows
    from .metrics import spectral_angle

    sub = X[rows]
    a = np.nan_to_num(spectral_angle(sub, np.median(sub, axis=0)[None, :]), nan=np.pi)
    med = np.median(a)
    mad = 1.4826 * np.median(np.abs(a - med))
    return rows[a <= med + 3.0 * max(mad, 1e-12)]


def neighbours_alike(X, spatial_shape, *, n_dims: int = 3) -> bool:
    """Whether the image is spatially coherent: the leading principal scores (of the
    centred data) of horizontally neighbouring pixels correlate by more than 0.3.
    Then a spatial mean denoises the image; on an image of unrelated pixels it would
    mix them."""
    shape = tuple(spatial_shape)
    if len(shape) < 2 or shape[-1] < 2:
        return False
    Xc = X - X.mean(axis=0)
    V = principal_axes(Xc, min(n_dims, X.shape[1]))
    S = (Xc @ V.T).reshape(*shape, -1)
    a, b = S[..., :-1, :].reshape(-1, V.shape[0]), S[..., 1:, :].reshape(-1, V.shape[0])
    num = np.einsum("ij,ij->j", a - a.mean(0), b - b.mean(0))
    den = np.sqrt(np.einsum("ij,ij->j", a - a.mean(0), a - a.mean(0))
                  * np.einsum("ij,ij->j", b - b.mean(0), b - b.mean(0)))
    corr = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return bool(corr[0] > 0.3)


def _smooth(X, spatial_shape):
    from scipy.ndimage import uniform_filter

    cube = X.reshape(*spatial_shape, X.shape[1])
    size = tuple(3 if s >= 3 else 1 for s in spatial_shape) + (1,)
    return uniform_filter(cube, size=size, mode="nearest").reshape(X.shape)


@dataclass
class PurestPixels:
    """Endmember candidates and their regions.

    Attributes
    ----------
    vertices : ndarray of int, shape (k,)
        The pixel (row of ``X``) at each vertex of the simplex.
    regions : ndarray of bool, shape (k, n_pixels)
        The pixels close to each vertex (barycentric coordinate >= ``purity``).
    spectra : ndarray, shape (k, n_channels)
        Mean spectrum of the original data over each region (what an ROI seed on
        the region gives).
    purity : ndarray, shape (n_pixels, k)
        Barycentric coordinates of every pixel (1 at a vertex; a pixel with all of
        them in [0, 1] lies inside the simplex).
    geometry : str
        ``"affine"`` or ``"cone"`` (the one used).
    relative_error : float
        ``||X - W S||_F / ||X||_F`` of the non-negative fit of ``X`` on ``spectra``.
    outliers : list of int
        Pixels set aside by the guards (far from the signal subspace, or a vertex
        without support).
    tried : dict
        ``geometry -> relative_error`` of every geometry tried.
    """

    vertices: np.ndarray
    regions: np.ndarray
    spectra: np.ndarray
    purity: np.ndarray
    geometry: str
    relative_error: float
    outliers: list = field(default_factory=list)
    tried: dict = field(default_factory=dict)


def _search(S, k, *, purity, min_support, max_region, max_rounds=5):
    """N-FINDR on the (denoised) matrix ``S`` with the support guard."""
    n = S.shape[0]
    usable = np.ones(n, dtype=bool)
    outliers: list[int] = []
    for _ in range(max_rounds):
        rows = np.flatnonzero(usable)
        sub = S[rows]
        mu = sub.mean(axis=0)
        V = principal_axes(sub - mu, k - 1)
        Z = (S - mu) @ V.T
        idx = nfindr(Z[rows], k)
        vertices = rows[idx]
        B = _barycentric(Z, vertices)
        B[~usable] = -np.inf
        support = (B >= purity).sum(axis=0)
        weak = [j for j in range(k) if support[j] < min_support]
        if not weak:
            break
        for j in weak:  # an isolated vertex: set it and its few neighbours aside
            near = np.flatnonzero(B[:, j] >= purity)
            outliers.extend(int(v) for v in near)
            usable[near] = False
            usable[vertices[j]] = False
            outliers.append(int(vertices[j]))
    regions = np.zeros((k, n), dtype=bool)
    for j in range(k):
        order = np.argsort(-B[:, j], kind="stable")
        size = int(np.clip((B[:, j] >= purity).sum(), min(min_support, n), max_region))
        regions[j, order[:size]] = True
    B[~usable] = np.nan
    return vertices, regions, B, sorted(set(outliers))


def purest_pixels(X, k: int, *, spatial_shape=None, geometry: str = "auto",
                  purity: float = 0.7, min_support: int = 5, max_region=None,
                  smooth="auto", outlier_z: float = 25.0) -> PurestPixels:
    """Endmember candidates of ``X`` by N-FINDR on denoised data (module documentation).

    Parameters
    ----------
    X : array_like, shape (n_pixels, n_channels)
        Pixel spectra (non-finite pixels are left out of the search).
    k : int
        Number of candidates (>= 1, <= n_channels).
    spatial_shape : tuple of int, optional
        The image's spatial shape (C order of the rows): enables the 3 x 3 mean.
    geometry : {"auto", "affine", "cone"}
    purity : float in (0.5, 1]
        Barycentric coordinate a region's pixels reach at least.
    min_support : int
        Pixels a vertex needs around it not to count as an outlier.
    max_region : int, optional
        Largest region (default: a tenth of the pixels, at least ``min_support``).
    smooth : bool or "auto"
        Apply the spatial mean (needs ``spatial_shape``); ``"auto"``: when
        neighbouring pixels are alike (:func:`neighbours_alike`), not on an image
        of unrelated pixels, where it would mix them.
    outlier_z : float
        Distance to the signal subspace, in robust standard deviations above the
        median, beyond which a pixel is left out of the search (``inf``: none is).
        Measured: hot pixels 500 and more; the most distant real pixel of Samson 6,
        of Jasper Ridge 14.
    """
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry={geometry!r} is not one of {', '.join(GEOMETRIES)}.")
    if not 0.5 < float(purity) <= 1.0:
        raise ValueError(f"purity must be in (0.5, 1], got {purity!r}.")
    X = np.asarray(X, dtype=np.float64)
    n, m = X.shape
    check_positive_int(k, name="k")
    k = int(k)
    if k > min(n, m):
        raise ValueError(f"k={k} candidates asked for, but data with {n} pixel(s) and {m} "
                         f"channel(s) holds at most {min(n, m)}; ask for fewer.")
    finite = np.isfinite(X).all(axis=1)
    Xf = np.where(finite[:, None], X, 0.0)
    if spatial_shape is not None and int(np.prod(spatial_shape)) != n:
        raise ValueError(f"spatial_shape {tuple(spatial_shape)} does not hold {n} pixels.")
    anomalous = np.zeros(n, dtype=bool)
    anomalous[finite] = _anomalies(Xf[finite], k, float(outlier_z))
    if anomalous.any():  # replaced by the median of their finite neighbours' spectra
        Xf = Xf.copy()
        Xf[anomalous] = np.median(Xf[finite & ~anomalous], axis=0)
    usable = finite & ~anomalous
    if int(usable.sum()) < k:
        raise ValueError(f"Only {int(usable.sum())} of {n} pixels hold finite values (and "
                         f"are not outliers): {k} seed regions need at least {k}. "
                         f"{int((~finite).sum())} pixels hold NaN or inf; replace them or "
                         "crop them away.")
    if smooth == "auto":
        smooth = spatial_shape is not None and neighbours_alike(Xf, spatial_shape)
    S = _smooth(Xf, tuple(spatial_shape)) if smooth and spatial_shape is not None else Xf
    from .noise import estimate_noise

    noise_norm = float(np.linalg.norm(estimate_noise(S[usable]))) if geometry != "affine" \
        else 0.0
    if max_region is None:
        max_region = max(n // 10, min_support)
    from .nnls import nnls

    tried: dict[str, float] = {}
    best = None
    for geo in (("affine", "cone") if geometry == "auto" else (geometry,)):
        G = S
        if geo == "cone":  # pixels too dark to show their direction (SNR < 10) stay out
            sums = S.sum(axis=1, keepdims=True)
            norms = np.linalg.norm(S, axis=1)
            bright = (norms > 10.0 * noise_norm) & (norms >= np.median(norms[usable]))
            ok = usable & (sums[:, 0] > 0) & bright
            G = np.where(ok[:, None], S / np.where(sums > 0, sums, 1.0), 0.0)
        else:
            ok = usable
        rows = np.flatnonzero(ok)
        if rows.size < k * max(min_support, 2):  # too few pixels to read this geometry
            tried[geo] = float("inf")
            continue
        vertices, regions, B, outliers = _search(G[rows], k, purity=purity,
                                                 min_support=min_support,
                                                 max_region=max_region)
        full = np.zeros((k, n), dtype=bool)
        full[:, rows] = regions
        Bf = np.full((n, k), np.nan)
        Bf[rows] = B
        for j in range(k):  # a region's odd pixels leave it (and its mean)
            kept = _trim(Xf, np.flatnonzero(full[j]))
            full[j] = False
            full[j, kept] = True
        spectra = np.stack([Xf[full[j]].mean(axis=0) for j in range(k)])
        spectra = np.maximum(spectra, 0.0)
        fit = _relative_error(nnls, Xf[usable], spectra)
        tried[geo] = fit
        cand = PurestPixels(vertices=rows[vertices], regions=full, spectra=spectra,
                            purity=Bf, geometry=geo, relative_error=fit,
                            outliers=sorted(set(np.flatnonzero(anomalous).tolist())
                                            | {int(rows[o]) for o in outliers}))
        if best is None or fit < best.relative_error:
            best = cand
    if best is None:
        raise ValueError(f"too few usable pixels ({int(usable.sum())}) to find {k} endmember "
                         "candidates: the pixels are non-finite, outliers or too dark.")
    best.tried = tried
    return best


def _relative_error(nnls, X, spectra) -> float:
    if not spectra.any(axis=1).all():
        return float("inf")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # identifiability notes of near-collinear candidates
        res = nnls(np.maximum(X, 0.0), spectra)
    return float(res.summary.relative_error)
