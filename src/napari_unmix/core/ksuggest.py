"""How many components? :func:`suggest_n_components` and its curves.

Three criteria, each a count of the components the data support above their noise,
read on the data divided channel by channel by its noise level
(:func:`~napari_unmix.core.noise.estimate_noise`), where the noise has unit
variance:

**scree**
    The eigenvalues of the whitened data's ``X^T X / n``: pure noise puts them all
    below the Marchenko-Pastur edge ``(1 + sqrt(C / n))^2``; ``k_scree`` counts
    those above ``(1 + margin)`` times the edge.
**residual versus k**
    NNMF with ``k = 1, 2, ...`` components (each started from the fit before and
    the leading direction of its residual), against the noise floor: what a
    perfect fit leaves, ``sqrt(n sum(sigma^2)) / ||X||`` less the noise that ``k``
    components fit.  ``k_residual`` is the first ``k`` whose relative error comes
    within ``floor_margin`` of it.  On ill-conditioned data (strongly overlapping
    spectra) NNMF converges slowly and may not reach the floor in ``max_iter``
    iterations: the criterion is then at its limit, and the median below lets the
    other two decide.
**cross-validation**
    Bi-cross-validation (Owen & Perry, Ann. Appl. Stat. 3:564, 2009): pixels and
    channels are split into folds; every held-out block ``X[I, J]`` is predicted
    from the other three, ``X[I, -J] (X[-I, -J])_k^+ X[-I, J]`` with the rank-``k``
    truncated SVD (``cv="svd"``, default) or from an NNMF of ``X[-I, -J]`` with NNLS
    fits of the held-out rows and columns (``cv="nmf"``).  The error falls while
    the components are signal and rises when they fit noise; ``k_cv`` is the
    smallest ``k`` whose held-out error is not significantly above the best one
    (a paired test over the held-out pixels, ``z < z_crit``).

**Clipped data.**  Noise clipped at zero (a detector offset subtracted and the
negatives set to 0, or ``negative="clip"``) is no longer linear: in dark pixels
the clipped noise has a positive, flat mean, which the three criteria count as
one component more (the benchmark cube: 6 instead of 5, at 3 to 17 standard
errors, on four of its five generator seeds).  With ``clipped="auto"`` a float
stack whose entries are exactly zero in more than ``clip_fraction`` of them is
taken as clipped, and the criteria read only the pixels clipping cannot have
touched: those above ``clip_sigmas`` noise standard deviations in every channel.
The notes say so, and how many pixels that left; integer data (counts, whose
zeros are real) are never taken as clipped.

The suggestion is the median of the three (each can be off by one on its own; two
agreeing carry it), and the notes say where they disagree or where a criterion was
still rising at ``k_max`` (``at_limit``): then the data support more components than
were tried.  On real scenes with spectral variability (shading, moisture, the
sensor's own structure) the noise-based count is the rank of the signal, which is
larger than the number of materials: Samson and Jasper Ridge support more than 12
components by all three criteria (``benchmarks/diagnostics.py``); pass the number
of materials you expect there, and read the curves.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from .data import stack_to_matrix
from .noise import estimate_noise, pixel_sample

__all__ = ["CV_METHODS", "KSuggestion", "suggest_n_components"]

#: Models of the cross-validation.
CV_METHODS = ("svd", "nmf")


@dataclass
class KSuggestion:
    """The suggested number of components and the curves behind it.

    Attributes
    ----------
    k : int
        The suggestion (median of ``k_scree``, ``k_residual``, ``k_cv``).
    k_scree, k_residual, k_cv : int
        Each criterion's count (module documentation).
    ks : list of int
        ``1 .. k_max``: the x axis of the curves.
    eigenvalues : list of float
        Whitened eigenvalues (at least ``k_max + 1`` of them), largest first.
    mp_edge : float
        The Marchenko-Pastur edge the scree is read against.
    relative_error : list of float
        NNMF ``||X - W H|| / ||X||`` for every ``k`` in ``ks`` (unwhitened).
    noise_floor : float
        ``||noise|| / ||X||``: what a perfect fit leaves, from the noise estimate.
    residual_floor : list of float
        The relative error a perfect ``k``-component fit leaves (the noise floor,
        less the noise that ``k`` components fit: ``k (n + C - k)`` of the ``n C``
        entries' worth).
    cv_error : list of float
        Held-out squared error relative to the held-out data, for every ``k``.
    cv_z : list of float
        Paired z of every ``k``'s held-out error above the best ``k``'s.
    cv : str
        ``"svd"`` or ``"nmf"``.
    at_limit : list of str
        Criteria still rising at ``k_max``.
    noise : list of float
        Per-channel noise standard deviation (the data's units).
    n_pixels_used : int
        Pixels the curves were computed on (a regular sample of large stacks).
    clipped : bool
        The stack was taken as clipped at zero, and only the pixels clipping cannot
        have touched were used (module documentation).
    notes : list of str
    """

    k: int
    k_scree: int
    k_residual: int
    k_cv: int
    ks: list
    eigenvalues: list
    mp_edge: float
    relative_error: list
    noise_floor: float
    residual_floor: list
    cv_error: list
    cv_z: list
    cv: str = "svd"
    at_limit: list = field(default_factory=list)
    noise: list = field(default_factory=list)
    n_pixels_used: int = 0
    clipped: bool = False
    notes: list = field(default_factory=list)

    @property
    def agree(self) -> bool:
        """All three criteria give the same count."""
        return self.k_scree == self.k_residual == self.k_cv

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> KSuggestion:
        return cls(**d)

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    def table(self) -> list[dict]:
        """One row per ``k``: the curves side by side (for printing, CSV, a plot)."""
        return [{"k": k, "eigenvalue": self.eigenvalues[k - 1],
                 "relative_error": self.relative_error[k - 1],
                 "residual_floor": self.residual_floor[k - 1], "cv_error": self.cv_error[k - 1],
                 "cv_z": self.cv_z[k - 1]} for k in self.ks]


def _folds(n, n_folds, rng):
    return rng.permutation(n) % n_folds


def _bcv_svd(Xw, k_max, folds, rng):
    """Held-out squared errors per held-out pixel and block, ``(k_max + 1, n_rows)``
    (row 0: predicting zero).  Summed over a pixel's held-out channels: the errors
    of one pixel's channels share its fitted coefficients, so the pixels, not the
    entries, are the independent units of the paired test."""
    n, m = Xw.shape
    rows, cols = _folds(n, folds[0], rng), _folds(m, folds[1], rng)
    errs = [[] for _ in range(k_max + 1)]
    for a in range(folds[0]):
        for b in range(folds[1]):
            hold, J = rows == a, cols == b
            D = Xw[~hold][:, ~J]
            U, s, Vt = np.linalg.svd(D, full_matrices=False)
            A, B, T = Xw[hold][:, ~J], Xw[~hold][:, J], Xw[hold][:, J]
            r = min(k_max, int((s > s[0] * 1e-12).sum()))
            AV = (A @ Vt[:r].T) / s[:r]
            UB = U[:, :r].T @ B
            P = np.zeros_like(T)
            errs[0].append((T * T).sum(axis=1))
            for k in range(1, k_max + 1):
                if k <= r:
                    P += np.outer(AV[:, k - 1], UB[k - 1])
                errs[k].append(((T - P) ** 2).sum(axis=1))
    return np.array([np.concatenate(e) for e in errs])


def _bcv_nmf(X, sigma, k_max, folds, rng, max_iter, random_state):
    from .nmf import nmf
    from .nnls import nnls

    n, m = X.shape
    rows, cols = _folds(n, folds[0], rng), _folds(m, folds[1], rng)
    errs = [[] for _ in range(k_max + 1)]
    Xp = np.maximum(X, 0.0)                   # the fits: NNMF and NNLS read negatives as 0
    for a in range(folds[0]):
        for b in range(folds[1]):
            hold, J = rows == a, cols == b
            T = X[hold][:, J] / sigma[J]      # held out: the data as they are
            D, A, B = Xp[~hold][:, ~J], Xp[hold][:, ~J], Xp[~hold][:, J]
            errs[0].append((T * T).sum(axis=1))
            for k in range(1, k_max + 1):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = nmf(D, k, max_iter=max_iter, random_state=random_state)
                    WI = nnls(A, r.H).W
                    HJ = nnls(np.ascontiguousarray(B.T), np.ascontiguousarray(r.W.T)).W.T
                errs[k].append(((T - (WI @ HJ) / sigma[J]) ** 2).sum(axis=1))
    return np.array([np.concatenate(e) for e in errs])


def _new_component(R):
    """The positive part of the leading singular pair of the residual ``R`` (the sign
    with more positive mass), as a start for one more component."""
    w, V = np.linalg.eigh(R.T @ R)
    v = V[:, -1]
    u = R @ v
    pos = np.maximum(u, 0).sum() * np.maximum(v, 0).sum()
    neg = np.maximum(-u, 0).sum() * np.maximum(-v, 0).sum()
    if neg > pos:
        u, v = -u, -v
    u, v = np.maximum(u, 0), np.maximum(v, 0)
    if not u.any() or not v.any():
        u, v = np.full(R.shape[0], 1e-3), np.full(R.shape[1], 1e-3)
    eps = 1e-6 * max(float(np.abs(R).max()), 1e-300)
    return u + eps, v + eps


def _nested_nmf(X, k_max, max_iter):
    """Reconstructions ``W H`` of NNMF with ``k = 1 .. k_max``, each started from the
    previous fit plus the leading direction of its residual (a nested, greedy
    sequence: the curve then falls monotonically, as a residual curve should)."""
    from .nmf import nmf

    W = H = None
    for k in range(1, k_max + 1):
        if W is None:
            u, v = _new_component(X)
            W0, H0 = u[:, None], v[None, :]
        else:
            u, v = _new_component(X - W @ H)
            W0, H0 = np.hstack([W, u[:, None]]), np.vstack([H, v[None, :]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = nmf(X, k, W0=W0, H0=H0, max_iter=max_iter)
        W, H = r.W.astype(np.float64), r.H.astype(np.float64)
        yield W @ H


def _paired_z(errs, best):
    z = []
    for e in errs:
        d = e - errs[best]
        sd = d.std()
        z.append(0.0 if sd == 0 else float(d.mean() / (sd / np.sqrt(d.size))))
    return z


def _unclipped_pixels(X, clipped, clip_fraction, clip_sigmas, max_pixels, notes):
    """The rows of ``X`` the criteria read, and whether ``X`` was taken as clipped
    (decided on the same regular sample of ``max_pixels`` rows the curves use)."""
    if clipped not in ("auto", True, False):
        raise ValueError(f"clipped={clipped!r} is not one of 'auto', True, False.")
    if clipped is False:
        return X, False
    if clipped == "auto":
        probe = X[pixel_sample(X.shape[0], max_pixels)]
        zeros = float((probe == 0).mean())
        integral = bool(np.all(probe == np.round(probe)))
        if zeros <= clip_fraction or integral:
            return X, False
        why = f"{100 * zeros:.1f} % of its values are exactly 0"
    else:
        why = "clipped=True"
    sigma = estimate_noise(X)
    keep = (X > clip_sigmas * sigma).all(axis=1)
    n_min = 3 * X.shape[1]
    if keep.sum() < n_min:
        notes.append(f"the stack looks clipped at zero ({why}), but only {int(keep.sum())} "
                     f"pixels are above {clip_sigmas:g} noise levels in every channel (fewer "
                     f"than {n_min}): all pixels were used, and a clipped background may "
                     "count as one component more")
        return X, False
    notes.append(f"the stack looks clipped at zero ({why}): the criteria read only the "
                 f"{int(keep.sum())} of {X.shape[0]} pixels above {clip_sigmas:g} noise "
                 "levels in every channel, which clipping cannot have touched (clipped "
                 "noise would count as one component more)")
    return X[keep], True


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_options(*, k_max, folds, z_crit, margin, floor_margin, max_pixels, max_iter,
                   random_state):
    """Refuse options that are no number of the kind each needs; return ``folds``."""
    from .init import resolve_random_state

    for name, value, least in (("k_max", k_max, 1), ("max_pixels", max_pixels, 2),
                               ("max_iter", max_iter, 1)):
        if not _is_int(value) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}; got {value!r}.")
    if isinstance(folds, (str, bytes)) or not hasattr(folds, "__len__") or len(folds) != 2 \
            or not all(_is_int(f) for f in folds):
        raise ValueError(f"folds must be two integers (pixel folds, channel folds), e.g. "
                         f"(2, 2); got {folds!r}.")
    if min(folds) < 2:
        raise ValueError(f"folds={tuple(folds)} needs at least 2 pixel folds and 2 channel "
                         "folds (the cross-validation holds one out and fits the others).")
    for name, value, low in (("z_crit", z_crit, "> 0"), ("margin", margin, ">= 0"),
                             ("floor_margin", floor_margin, ">= 0")):
        bad = not isinstance(value, (int, float, np.floating)) or isinstance(value, bool) \
            or not np.isfinite(value) or (value <= 0 if low == "> 0" else value < 0)
        if bad:
            raise ValueError(f"{name} must be a finite number {low}; got {value!r}.")
    resolve_random_state(random_state)   # refuses what is no seed, by name
    return int(folds[0]), int(folds[1])


def suggest_n_components(X, *, spectral_axis: int | None = None, k_max: int = 12,
                         cv: str = "svd", folds=(2, 2), z_crit: float = 5.0,
                         margin: float = 0.1, max_pixels: int = 20_000,
                         max_iter: int = 300, random_state: int = 0,
                         residual: bool = True, floor_margin: float = 0.02,
                         clipped="auto", clip_fraction: float = 0.01,
                         clip_sigmas: float = 2.0, callback=None) -> KSuggestion:
    """Suggest the number of components of a stack (module documentation).

    Parameters
    ----------
    X : array_like
        ``(n_pixels, n_channels)`` matrix, or a stack with ``spectral_axis``.
    spectral_axis : int, optional
        Give it for a stack; ``None``: ``X`` is already a matrix.
    k_max : int, default 12
        Largest ``k`` tried (at most half the channels minus one, the
        cross-validation's held-out columns).
    cv : {"svd", "nmf"}
        Model of the cross-validation.
    folds : (int, int)
        Pixel and channel folds of the cross-validation.
    z_crit : float, default 5
        Paired z above which a held-out error counts as worse than the best.  Five,
        not two: neighbouring pixels' errors are not independent, some ten values
        of ``k`` are compared, and a stack whose noise was clipped at zero holds a
        small real non-linear part that a large sample finds (the benchmark cube:
        its sixth component is 3.2 to 3.8 standard errors better than five on
        16 000 to 20 000 pixels).
    margin : float
        Relative margin above the noise edge of the scree.
    floor_margin : float
        How close to the noise floor the NNMF residual must come (relative; the
        noise estimate itself is good to a few per cent).
    max_pixels : int
        A regular sample of larger stacks is used.
    max_iter : int
        NNMF iterations per ``k`` (residual curve, ``cv="nmf"``).
    random_state : int
        Folds (and NNMF starts).
    residual : bool
        Compute the residual-versus-k curve (``k`` NNMF fits); without it
        ``k_residual`` is the scree's count.
    clipped : {"auto", True, False}, default "auto"
        Whether the stack was clipped at zero (module documentation): ``"auto"``
        decides from its exact zeros; ``True`` / ``False`` say so.
    clip_fraction : float, default 0.01
        Fraction of exact zeros above which ``"auto"`` takes a float stack as clipped.
    clip_sigmas : float, default 2
        A clipped stack's criteria read the pixels above this many noise standard
        deviations in every channel.
    callback : callable, optional
        A progress callback (:mod:`~napari_unmix.core.progress`), stage
        ``"suggest k"``: after every ``k`` of the residual curve, then after the
        cross-validation (``k_max + 1`` steps); returning False raises
        :class:`~napari_unmix.core.progress.Cancelled`.

    Returns
    -------
    KSuggestion
    """
    from .progress import Reporter

    if cv not in CV_METHODS:
        raise ValueError(f"cv={cv!r} is not one of {', '.join(CV_METHODS)}.")
    if spectral_axis is not None:
        X, _ = stack_to_matrix(np.asarray(X), spectral_axis)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be (n_pixels, n_channels) or a stack with spectral_axis, "
                         f"got shape {X.shape}.")
    folds = _check_options(k_max=k_max, folds=folds, z_crit=z_crit, margin=margin,
                           floor_margin=floor_margin, max_pixels=max_pixels,
                           max_iter=max_iter, random_state=random_state)
    notes: list[str] = []
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        notes.append(f"{int((~finite).sum())} of {X.shape[0]} pixels hold NaN or inf "
                     "values and were left out of every criterion")
        X = X[finite]
    if X.shape[0] == 0:
        raise ValueError("Every pixel holds NaN or inf values: there is nothing to count "
                         "components in.")
    X, was_clipped = _unclipped_pixels(X, clipped, clip_fraction, clip_sigmas, max_pixels,
                                       notes)
    X = X[pixel_sample(X.shape[0], max_pixels)]
    n, m = X.shape
    # the largest k each axis allows beside its held-out fold
    room_m, room_n = m - -(-m // folds[1]) - 1, n - -(-n // folds[0]) - 1
    asked, k_max = int(k_max), int(min(k_max, room_m, room_n))
    if 1 <= k_max < asked:
        limit = f"{m} channels" if room_m <= room_n else f"{n} pixels"
        notes.append(f"k_max lowered from {asked} to {k_max}: the cross-validation holds out "
                     f"part of the {limit}, which leaves room for at most {k_max} components")
    if k_max < 1:
        short = [f"{m} channel(s)" if room_m < 1 else None,
                 f"{n} pixel(s)" if room_n < 1 else None]

        def least(f):   # the smallest size that keeps k = 1 beside a held-out fold
            return next(q for q in range(2, 4 * f + 4) if q - -(-q // f) >= 2)

        raise ValueError(f"{' and '.join(s for s in short if s)} are too few to compare "
                         f"numbers of components ({n} pixels x {m} channels; the "
                         "cross-validation holds out a part of both, and needs at least "
                         f"{least(folds[1])} channels and {least(folds[0])} pixels).")
    sigma = estimate_noise(X)
    Xw = X / sigma
    ks = list(range(1, k_max + 1))
    report = Reporter(callback, "suggest k")
    at_limit: list[str] = []

    # scree
    ev = np.sort(np.linalg.eigvalsh(Xw.T @ Xw / n))[::-1]
    edge = (1.0 + np.sqrt(m / n)) ** 2
    k_scree = int((ev > (1 + margin) * edge).sum())
    if k_scree > k_max:
        at_limit.append("scree")
    k_scree = max(1, min(k_scree, k_max))

    # residual versus k
    x_norm = float(np.linalg.norm(X))
    noise_floor = float(np.sqrt(n * np.sum(sigma ** 2)) / max(x_norm, 1e-300))
    rel, floors = [], []
    n_neg = int((X < 0).sum())
    nnmf_cv = cv != "svd"   # the cross-validation by NNMF fits
    if n_neg and (residual or nnmf_cv):
        fits = " and ".join(["the NNMF residual curve"] * residual
                            + ["the NNMF cross-validation"] * nnmf_cv)
        notes.append(f"{n_neg} of the values read are negative (minimum "
                     f"{float(X.min()):.6g}): {fits} fitted them as 0 (NNMF needs "
                     "non-negative data), its errors measured against the data as they "
                     "are; the scree reads them unchanged")
    if residual:
        for k, WH in zip(ks, _nested_nmf(np.maximum(X, 0.0), k_max, max_iter), strict=True):
            rel.append(float(np.linalg.norm(X - WH) / max(x_norm, 1e-300)))
            floors.append(noise_floor * float(np.sqrt(max(1.0 - k * (n + m - k) / (n * m),
                                                          0.0))))
            report(k, k_max + 1)
        reached = [r <= f * (1.0 + floor_margin) for r, f in zip(rel, floors, strict=True)]
        k_residual = next((k for k, ok in zip(ks, reached, strict=True) if ok), None)
        if k_residual is None:
            at_limit.append("residual")
            k_residual = k_max
    else:
        k_residual = k_scree
        rel = floors = [float("nan")] * k_max

    # cross-validation
    rng = np.random.default_rng(random_state)
    errs = (_bcv_svd(Xw, k_max, folds, rng) if cv == "svd" else
            _bcv_nmf(X, sigma, k_max, folds, rng, max_iter, random_state))
    report(k_max + 1, k_max + 1)
    total = errs.sum(axis=1)
    best = int(np.argmin(total[1:])) + 1
    z = _paired_z(errs, best)
    k_cv = next(k for k in ks if z[k] < z_crit)
    if best == k_max:
        at_limit.append("cross-validation")
    cv_error = (total / max(float(total[0]), 1e-300)).tolist()

    k = int(np.median([k_scree, k_residual, k_cv]))
    if not k_scree == k_residual == k_cv:
        notes.append(f"the criteria differ (scree {k_scree}, residual {k_residual}, "
                     f"cross-validation {k_cv}): {k} is their median")
    if "residual" in at_limit:
        notes.append(f"the NNMF residual did not reach the noise floor by k_max={k_max} "
                     "(more components, or a fit that converges slowly)")
    if k_max == 1:   # one k tried: no criterion can be said to rise, nor to level off
        at_limit = [c for c in at_limit if c == "residual"]
    rising = [c for c in at_limit if c != "residual"]
    if rising:
        notes.append(f"{' and '.join(rising)} still rising at k_max={k_max}: the data "
                     "support more components than were tried (on real scenes, spectral "
                     "variability counts too); give the number of materials you expect, or "
                     "a larger k_max")
    return KSuggestion(
        k=k, k_scree=k_scree, k_residual=k_residual, k_cv=k_cv, ks=ks,
        eigenvalues=ev[: max(k_max + 1, min(m, 2 * k_max))].tolist(), mp_edge=float(edge),
        relative_error=rel, noise_floor=noise_floor, residual_floor=floors,
        cv_error=cv_error[1:], cv_z=z[1:], cv=cv, at_limit=at_limit,
        noise=sigma.tolist(), n_pixels_used=int(n), clipped=was_clipped,
        notes=notes)
