"""The seeding engine of seeded NNMF and fixed-H NNLS.

:func:`build_seeds` turns a list of :class:`~napari_unmix.core.components.ComponentSpec`
into initial factors ``W0 (n_pixels, k)`` and ``H0 (k, n_channels)`` and a
:class:`SeedReport` per component that says which source produced each factor and
which fallback fired.  It works in three passes.

1. Spectra (``H0`` rows)
    From the component's ``h_source``: the mean spectrum of an ROI (boolean mask,
    or a label id of the analysis' label image), a given spectrum (resampled onto
    the stack's axis), a Gaussian resonance model, a flat (constant) spectrum, a
    spectrum of an earlier result, or the mean spectrum of seed pixels.  A
    component that has a map source but no spectrum source gets the map-weighted
    mean spectrum ``sum_p w_p x_p / sum_p w_p``.  Spectra keep their count /
    spectral scale.

2. Residual fallback, for components still without a usable spectrum (no source,
   or a source whose spectrum is all zero)
    a. the basis is every usable spectrum found so far;
    b. the component's working data is chosen (see below);
    c. every pixel spectrum (a random subset of at most ``max_residual_pixels``,
       drawn with ``random_state``) is fitted by NNLS with the basis;
    d. the positive part of the fit residual is kept;
    e. the pixels with the strongest residual are selected: by residual norm, or
       with ``residual_score=True`` by residual norm times ``1 - max_j cos(r_p,
       b_j)``, which prefers residuals the basis does not already resemble;
    f. each selected residual spectrum is divided by its own maximum, they are
       averaged, smoothed (Gaussian, 1 channel) and clamped at zero;
    g. the result is scaled so that its maximum is the median maximum of the basis
       spectra (or of the selected pixel spectra when the basis is empty).
    The new spectrum joins the basis before the next unseeded component is treated.
    When the estimate is unusable (no residual left, non-finite, or parallel to a
    basis spectrum), a smooth random spectrum drawn from ``random_state`` is used
    instead.  Both are flagged in the report; in fixed-H NNLS such a spectrum is an
    emergency stand-in, not a trusted reference, and the report says so.

3. Maps (``W0`` columns)
    * a map source wins: :class:`~.components.FixedW` is used exactly as given;
      :class:`~.components.ImportedMap`, a previous result's map and
      :class:`~.components.BackgroundMap` are normalised to unit maximum;
    * a spectral-information source (:class:`~.components.Gaussian`,
      :class:`~.components.Flat`, :class:`~.components.SeedPixels`) also yields a
      W image (a flat spectrum's is the mean intensity); it is kept when
      ``overwrite=False``.  With ``overwrite=True`` (default) and a usable spectrum,
      the map is rebuilt from ``H0`` by the W-seed mode instead;
    * otherwise the W-seed mode builds the map from ``H0`` and the working data.

    Every generated map is divided by its maximum (unit maximum per component) and
    raised to at least ``w_floor`` (default 1e-3), so generated seeds are strictly
    positive and on comparable scales whatever the scale of the data.  The NNMF
    scale ambiguity (``a W_i``, ``H_i / a``) makes this harmless: the solver
    rescales each pair.

W-seed modes (``w_seed_mode``), all computed on the component's working data ``x_p``
against the complete spectrum basis ``h_1 .. h_k``:

``"nnls"``
    Column ``j`` of the non-negative least-squares fit of every pixel by all
    seeded spectra jointly.  On spatially separable data this gives near-disjoint
    maps (each pixel explained by as few spectra as fit it).
``"selective_score"``
    A soft, competition-aware projection.  With unit spectra ``u_j = h_j/|h_j|``,
    projection ``a_pj = max(x_p . u_j, 0)``, cosine ``c_pj = a_pj / |x_p|`` and the
    largest similarity of ``h_j`` to another seeded spectrum
    ``rho_j = max_{l != j} u_j . u_l``::

        m_pj     = c_pj - max_{l != j} c_pl                # margin over the best competitor
        sigma_pj = clip(1/2 + m_pj / (2 (1 - rho_j)), 0, 1)
        S_pj     = a_pj * sigma_pj

    A pure pixel of ``j`` has margin ``1 - rho_j`` (the largest possible), so
    ``sigma = 1``; a pure pixel of the most similar competitor gets ``sigma = 0``;
    a pixel that matches two spectra equally (a real mixture) gets ``sigma = 1/2``
    for both, so it stays mixed instead of being given to one winner.  Dividing by
    ``1 - rho_j`` makes the score selective even for strongly overlapping spectra.
    With one spectrum, ``sigma = 1`` and the map is the projection.
``"h_weighted"``
    The channel-weighted image ``sum_c x_pc h_jc / sum_c h_jc`` (an image of the
    bands where the spectrum is strong).
``"average"``
    The mean image over channels (the same for every component using it).
``"empty"``
    An almost neutral homogeneous map: ``1 - 0.01 u_p`` with ``u_p`` uniform in
    ``[0, 1)`` from ``random_state`` (the tiny variation breaks ties between
    components).

Working data
    Background components use the raw data; the others use the processed data
    (background-subtracted and/or smoothed) unless their ``use_subtracted`` is
    False, in which case the raw data.  This applies to ROI and seed-pixel
    spectra, the W-seed maps and the residual fallback.  Negative values of the
    working data (common after background subtraction) are treated as 0 for seed
    estimation only; the count is reported.

Nothing here modifies the caller's data or sources.  User maps and spectra with
exact zeros are passed on unchanged (the MU eps lift happens later, on a copy,
inside :func:`~napari_unmix.core.nmf.nmf`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import as_float_array, check_data_matrix
from .components import (
    BackgroundMap,
    ComponentSpec,
    FixedW,
    Flat,
    Gaussian,
    ImportedMap,
    PreviousResult,
    RoiLabel,
    RoiMask,
    SeedPixels,
    Spectrum,
)
from .init import resolve_random_state
from .nnls import solve_nnls
from .progress import Reporter
from .spectra import gaussian_model, resample_spectrum

__all__ = ["H_FALLBACKS", "W_SEED_MODES", "SeedReport", "SeedSet", "build_seeds",
           "source_spectrum", "w_seed_maps"]

#: The H-driven W-seed modes, in the order of the documentation.
W_SEED_MODES = ("nnls", "selective_score", "h_weighted", "average", "empty")
#: What to do for components without a usable spectrum seed.
H_FALLBACKS = ("residual", "random", "none")

_TINY = np.finfo(np.float64).tiny


@dataclass
class SeedReport:
    """How the seeds of one component were made.

    Attributes
    ----------
    name : str
        Component name.
    h_source : str
        What produced the ``H0`` row (``"roi-mask"``, ``"roi-label 2"``,
        ``"spectrum ..."``, ``"gaussian at ..."``, ``"residual"``, ``"random"``, ...).
    w_source : str or None
        What produced the ``W0`` column (a W-seed mode name, ``"fixed-w"``,
        ``"imported-map"``, ``"background-map"``, ``"spectral-info"`` ...); ``None``
        when no maps were built (fixed-H NNLS).
    h_fallback : {None, "residual", "random"}
        Which fallback produced the spectrum, if any.
    working_data : {"raw", "processed"}
        Data the component's seeds were estimated from.
    overwritten : bool
        A spectral-information map existed and was replaced by the H-based map.
    locked, background, use_subtracted : bool
        The component's flags.
    warnings : list of str
        Everything the user should know (partial spectral overlap, fallbacks ...).
    """

    name: str
    h_source: str = ""
    w_source: str | None = None
    h_fallback: str | None = None
    working_data: str = "processed"
    overwritten: bool = False
    locked: bool = False
    background: bool = False
    use_subtracted: bool = True
    warnings: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "h_source": self.h_source, "w_source": self.w_source,
                "h_fallback": self.h_fallback, "working_data": self.working_data,
                "overwritten": self.overwritten, "locked": self.locked,
                "background": self.background, "use_subtracted": self.use_subtracted,
                "warnings": list(self.warnings)}


@dataclass(eq=False)
class SeedSet:
    """The seeds of an analysis.

    Attributes
    ----------
    H0 : ndarray (k, n_channels)
        Spectrum seeds, on their count / spectral scale, in the data's dtype.
    W0 : ndarray (n_pixels, k) or None
        Map seeds (``None`` when built with ``build_w=False``), in the data's dtype.
    reports : list of SeedReport
    locked : ndarray of bool (k,)
        Spectral locking flags, for :func:`~napari_unmix.core.nmf.nmf` ``locked=``.
    names : list of str
    w_seed_mode : str
    overwrite : bool
    notes : list of str
        Remarks that concern all components (e.g. negative working data).
    """

    H0: np.ndarray
    W0: np.ndarray | None
    reports: list
    locked: np.ndarray
    names: list
    w_seed_mode: str
    overwrite: bool
    notes: list = field(default_factory=list)

    @property
    def fallback_components(self) -> list[str]:
        """Names of the components whose spectrum came from a fallback."""
        return [r.name for r in self.reports if r.h_fallback is not None]

    def summary(self) -> dict:
        """JSON-ready description, for ``result.summary["seeds"]``."""
        return {"w_seed_mode": self.w_seed_mode, "overwrite": bool(self.overwrite),
                "components": [r.to_dict() for r in self.reports],
                "fallbacks": self.fallback_components, "notes": list(self.notes)}


# -- small helpers -----------------------------------------------------------------------
def _flat_bool(mask, n, spatial_shape, what):
    m = np.asarray(mask)
    if m.dtype != bool:
        raise TypeError(f"{what} must be boolean, got dtype {m.dtype}.")
    if m.shape == tuple(spatial_shape):
        return m.reshape(-1)
    if m.shape == (n,):
        return m
    raise ValueError(f"{what} has shape {m.shape}, but the image has spatial shape "
                     f"{tuple(spatial_shape)} ({n} pixels); draw it on the same image.")


def _flat_map(a, n, spatial_shape, what):
    arr = as_float_array(a, name=what)
    if arr.shape == tuple(spatial_shape):
        arr = arr.reshape(-1)
    elif arr.shape == (n, 1):
        arr = arr[:, 0]
    if arr.shape != (n,):
        raise ValueError(f"{what} has shape {np.asarray(a).shape}, but the image has spatial "
                         f"shape {tuple(spatial_shape)} ({n} pixels): give a map of shape "
                         f"{tuple(spatial_shape)} or ({n},).")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} holds NaN or infinite values; maps must be finite.")
    if arr.min() < 0:
        raise ValueError(f"{what} holds negative values (minimum {float(arr.min()):.4g}); map "
                         "seeds must be >= 0. Clip or rebuild the map.")
    if not arr.any():
        raise ValueError(f"{what} is all zeros; a zero map cannot seed a component. Give a map "
                         "with positive values or remove it (the map is then built from the "
                         "spectrum).")
    return arr


def _unit_max(v):
    v = np.asarray(v, dtype=np.float64)
    mx = float(v.max()) if v.size else 0.0
    return v / mx if mx > 0 else v


def _generated(v, floor):
    """Unit-maximum map raised to at least ``floor`` (strictly positive generated seed)."""
    return np.maximum(_unit_max(np.maximum(v, 0.0)), floor)


def _cosine_to(X, h):
    """Cosine similarity of every row of X to spectrum h (0 for zero rows), clipped >= 0."""
    hn = np.linalg.norm(h)
    if hn == 0:
        return np.zeros(X.shape[0])
    xn = np.linalg.norm(X, axis=1)
    proj = X @ (h / hn)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(xn > 0, proj / np.where(xn > 0, xn, 1.0), 0.0)
    return np.clip(c, 0.0, 1.0)


def _check_spectrum_values(v, name, what):
    v = np.asarray(v, dtype=np.float64)
    if not np.isfinite(v).all():
        raise ValueError(f"Component {name!r}: {what} holds NaN or infinite values.")
    if v.min() < 0:
        raise ValueError(f"Component {name!r}: {what} has negative values (minimum "
                         f"{float(v.min()):.4g}); spectrum seeds must be >= 0. Remove the "
                         "offset or clip the spectrum.")
    return v


def _on_axis(values, axis, spectral_axis, m, name, what, warnings):
    """A spectrum given with or without its own axis, put on the stack's channels."""
    values = np.asarray(values, dtype=np.float64)
    if axis is None or spectral_axis is None:
        if values.shape != (m,):
            raise ValueError(
                f"Component {name!r}: {what} has {values.size} values but the stack has {m} "
                "channels. Give the spectrum's axis and the stack's spectral axis so it can be "
                "resampled, or a spectrum with one value per channel.")
        if axis is not None:
            warnings.append(f"{what}: no stack spectral axis was given; its {m} values were "
                            "taken channel by channel.")
        out = _check_spectrum_values(values, name, what)
        if not out.any():
            raise ValueError(f"Component {name!r}: {what} is all zeros; it cannot seed a "
                             "component.")
        return out
    out, info = resample_spectrum(values, axis, spectral_axis, outside="zero",
                                  name=f"Component {name!r}: {what}")
    if info["n_outside"]:
        lo, hi = info["source_range"]
        warnings.append(f"{what} covers {lo:g} to {hi:g}, only part of the stack's axis; "
                        f"{info['n_outside']} of {m} channel(s) outside it were set to 0.")
    out = _check_spectrum_values(out, name, what)
    if not out.any():
        raise ValueError(f"Component {name!r}: {what} is zero on every channel of the stack's "
                         "axis; it cannot seed a component.")
    return out


def _model_on_axis(model: Gaussian, spectral_axis, m, warnings):
    if spectral_axis is None:
        warnings.append("Gaussian model: no spectral axis was given; peak centres and widths "
                        "are read in channel indices (0 .. n_channels-1).")
        axis = np.arange(m, dtype=np.float64)
    else:
        axis = np.asarray(spectral_axis, dtype=np.float64)
    return gaussian_model(axis, model.peaks, width_kind=model.width_kind,
                          baseline=model.baseline)


def _pixel_indices(pixels, n, spatial_shape, name):
    p = np.asarray(pixels)
    if p.ndim == 2:
        if p.shape[1] != len(spatial_shape):
            raise ValueError(f"Component {name!r}: seed pixel coordinates have {p.shape[1]} "
                             f"columns but the image has {len(spatial_shape)} spatial axes "
                             f"(shape {tuple(spatial_shape)}).")
        for ax, size in enumerate(spatial_shape):
            bad = (p[:, ax] < 0) | (p[:, ax] >= size)
            if bad.any():
                raise ValueError(f"Component {name!r}: seed pixel {p[bad][0].tolist()} lies "
                                 f"outside the image of shape {tuple(spatial_shape)}.")
        return np.ravel_multi_index(tuple(p.T), tuple(spatial_shape))
    bad = (p < 0) | (p >= n)
    if bad.any():
        raise ValueError(f"Component {name!r}: seed pixel index {int(p[bad][0])} is out of "
                         f"range for an image of {n} pixels.")
    return p.astype(np.intp)


# -- spectra from sources ------------------------------------------------------------------
def source_spectrum(source, X, *, name="component", spatial_shape=None, labels=None,
                    spectral_axis=None, warnings=None):
    """The spectrum a source gives on data ``X`` (float64, on ``X``'s channels).

    Parameters
    ----------
    source : RoiMask, RoiLabel, Spectrum, Gaussian, Flat, SeedPixels or PreviousResult
    X : ndarray (n_pixels, n_channels)
        The working data (ROI means are taken from it).
    name : str
        Component name, for messages.
    spatial_shape, labels, spectral_axis
        As in :func:`build_seeds`.
    warnings : list, optional
        Receives remarks (partial spectral overlap ...).

    Returns
    -------
    spectrum : ndarray (n_channels,)
    info_map : ndarray (n_pixels,) or None
        The W image of a spectral-information source (before normalisation).
    """
    n, m = X.shape
    spatial_shape = (n,) if spatial_shape is None else tuple(spatial_shape)
    warnings = [] if warnings is None else warnings
    if isinstance(source, RoiMask):
        sel = _flat_bool(source.mask, n, spatial_shape, f"Component {name!r}: ROI mask")
        if not sel.any():
            raise ValueError(f"Component {name!r}: its ROI mask selects no pixel. Draw the ROI "
                             "over the pixels of this component, or remove the ROI.")
        return X[sel].mean(axis=0, dtype=np.float64), None
    if isinstance(source, RoiLabel):
        if labels is None:
            raise ValueError(f"Component {name!r} uses label {source.label_id} of the label "
                             "image, but no label image was given (labels=...).")
        lab = np.asarray(labels)
        if lab.dtype.kind not in "iub":
            raise TypeError(f"The label image must hold integers, got dtype {lab.dtype}.")
        if lab.shape == tuple(spatial_shape):
            lab = lab.reshape(-1)
        if lab.shape != (n,):
            raise ValueError(f"The label image has shape {np.asarray(labels).shape}, but the "
                             f"stack's spatial shape is {tuple(spatial_shape)}.")
        sel = lab == source.label_id
        if not sel.any():
            present = np.unique(lab[lab > 0])
            listed = ", ".join(str(int(v)) for v in present[:20]) or "none"
            raise ValueError(f"Component {name!r}: label {source.label_id} does not occur in the "
                             f"label image (labels present: {listed}). Paint that label or "
                             "pick another one.")
        return X[sel].mean(axis=0, dtype=np.float64), None
    if isinstance(source, Spectrum):
        what = source.describe()
        return _on_axis(source.values, source.axis, spectral_axis, m, name, what, warnings), None
    if isinstance(source, PreviousResult):
        what = source.describe()
        return _on_axis(source.h, source.axis, spectral_axis, m, name, what, warnings), None
    if isinstance(source, Gaussian):
        h = _model_on_axis(source, spectral_axis, m, warnings)
        if not h.any():
            raise ValueError(f"Component {name!r}: the Gaussian model is zero on every channel; "
                             "check its centres and widths against the spectral axis.")
        if source.n_seed_pixels is not None:
            cos = _cosine_to(X, h)
            top = np.argsort(-cos, kind="stable")[:min(source.n_seed_pixels, n)]
            info = np.zeros(n)
            info[top] = 1.0
        else:
            info = X @ (h / h.sum())  # model-weighted band image
        return h, info
    if isinstance(source, Flat):
        h = np.full(m, source.level)
        return h, X.mean(axis=1, dtype=np.float64)  # its band image: the mean intensity
    if isinstance(source, SeedPixels):
        if source.pixels is not None:
            idx = _pixel_indices(source.pixels, n, spatial_shape, name)
        else:
            model = source.model
            if isinstance(model, Gaussian):
                mh = _model_on_axis(model, spectral_axis, m, warnings)
            else:
                mh = _on_axis(model.values, model.axis, spectral_axis, m, name,
                              model.describe(), warnings)
            cos = _cosine_to(X, mh)
            idx = np.argsort(-cos, kind="stable")[:min(source.n_best, n)]
        h = X[idx].mean(axis=0, dtype=np.float64)
        return h, _cosine_to(X, h)
    raise TypeError(f"Component {name!r}: {type(source).__name__} cannot give a spectrum.")


# -- W-seed modes ----------------------------------------------------------------------------
def _nnls_maps(X, H, *, nnls_backend, notes):
    W, info = solve_nnls(np.ascontiguousarray(X), np.ascontiguousarray(H, dtype=X.dtype),
                         backend=nnls_backend, max_iter=max(1000, 30 * H.shape[0]))
    W = np.asarray(W, dtype=np.float64)
    bad = ~np.isfinite(W).all(axis=1)
    if bad.any():
        notes.append(f"NNLS W-seed: {int(bad.sum())} pixel(s) hit the iteration cap; their "
                     "seed abundances were set to 0.")
        W[bad] = 0.0
    return np.maximum(W, 0.0)


def _selective_maps(X, H):
    X = np.asarray(X, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    k = H.shape[0]
    norms = np.linalg.norm(H, axis=1)
    U = H / np.where(norms > 0, norms, 1.0)[:, None]
    A = np.maximum(X @ U.T, 0.0)  # projections a_pj
    if k == 1:
        return A
    xn = np.linalg.norm(X, axis=1)
    C = np.where(xn[:, None] > 0, A / np.where(xn > 0, xn, 1.0)[:, None], 0.0)
    G = U @ U.T
    np.fill_diagonal(G, -np.inf)
    rho = np.clip(G.max(axis=1), -1.0, 1.0)
    S = np.empty_like(A)
    for j in range(k):
        others = np.delete(C, j, axis=1).max(axis=1)
        margin = C[:, j] - others
        width = max(1.0 - rho[j], 1e-6)
        sigma = np.clip(0.5 + margin / (2.0 * width), 0.0, 1.0)
        S[:, j] = A[:, j] * sigma
    return S


def w_seed_maps(X, H, mode, *, random_state=0, nnls_backend="auto", notes=None):
    """Raw (unnormalised) W-seed maps of every spectrum in ``H`` on data ``X``.

    Parameters
    ----------
    X : ndarray (n_pixels, n_channels), non-negative
    H : ndarray (k, n_channels)
    mode : one of :data:`W_SEED_MODES`
    random_state : int
        Used by ``"empty"``.
    nnls_backend : str
        NNLS backend of the ``"nnls"`` mode.

    Returns
    -------
    ndarray (n_pixels, k), float64, >= 0
    """
    notes = [] if notes is None else notes
    n = X.shape[0]
    k = H.shape[0]
    if mode == "nnls":
        return _nnls_maps(X, H, nnls_backend=nnls_backend, notes=notes)
    if mode == "selective_score":
        return _selective_maps(X, H)
    if mode == "h_weighted":
        Hd = np.asarray(H, dtype=np.float64)
        s = Hd.sum(axis=1)
        weights = Hd / np.where(s > 0, s, 1.0)[:, None]
        return np.maximum(np.asarray(X, dtype=np.float64) @ weights.T, 0.0)
    if mode == "average":
        avg = np.maximum(np.asarray(X, dtype=np.float64).mean(axis=1), 0.0)
        return np.repeat(avg[:, None], k, axis=1)
    if mode == "empty":
        rng = np.random.default_rng([int(random_state), 0x5EED])
        return 1.0 - 0.01 * rng.random((n, k))
    raise ValueError(f"Unknown w_seed_mode {mode!r}; choose one of {', '.join(W_SEED_MODES)}.")


# -- residual and random fallbacks -------------------------------------------------------
def _residual_spectrum(X, basis, *, rng, score_based, max_pixels, nnls_backend):
    """Steps c-g of the residual fallback; returns (spectrum or None, reason)."""
    n, m = X.shape
    if n > max_pixels:
        idx = np.sort(rng.choice(n, max_pixels, replace=False))
        Xs = np.asarray(X[idx], dtype=np.float64)
    else:
        Xs = np.asarray(X, dtype=np.float64)
    if basis.shape[0]:
        Wb, _ = solve_nnls(Xs, basis, backend=nnls_backend, max_iter=max(1000, 30 * len(basis)))
        Wb = np.nan_to_num(Wb, nan=0.0)
        R = np.maximum(Xs - Wb @ basis, 0.0)
    else:
        R = Xs.copy()
    r = np.linalg.norm(R, axis=1)
    scale = float(np.linalg.norm(Xs, axis=1).max()) if Xs.size else 0.0
    if not np.isfinite(r).all() or scale <= 0 or r.max() <= 1e-6 * scale:
        return None, "the seeded spectra already explain the data (no positive residual left)"
    score = r
    if score_based and basis.shape[0]:
        cos = np.stack([_cosine_to(R, b) for b in basis], axis=1).max(axis=1)
        score = r * (1.0 - cos)
    n_pos = int((score > 0).sum())
    if n_pos == 0:
        return None, "every residual spectrum is parallel to a seeded spectrum"
    n_sel = min(n_pos, max(5, min(200, int(np.ceil(0.02 * len(score))))))
    top = np.argsort(-score, kind="stable")[:n_sel]
    cand = R[top]
    peaks = cand.max(axis=1)
    cand = cand[peaks > 0] / peaks[peaks > 0, None]
    if cand.shape[0] == 0:
        return None, "no strong residual pixel"
    from scipy.ndimage import gaussian_filter1d

    h = cand.mean(axis=0)
    if m >= 3:
        h = gaussian_filter1d(h, 1.0, mode="nearest")
    h = np.maximum(h, 0.0)
    if not np.isfinite(h).all() or h.max() <= 0:
        return None, "the averaged residual is zero"
    if basis.shape[0]:
        if float(np.max([np.dot(h, b) / (np.linalg.norm(h) * np.linalg.norm(b) + _TINY)
                         for b in basis])) > 0.999:
            return None, "the residual spectrum repeats a seeded spectrum"
        amp = float(np.median(basis.max(axis=1)))
    else:
        amp = float(np.median(Xs[top].max(axis=1)))
    return h * (amp / h.max()), ""


def _random_spectrum(m, amp, rng):
    from scipy.ndimage import gaussian_filter1d

    v = rng.random(m)
    if m >= 3:
        v = gaussian_filter1d(v, max(1.0, m / 16.0), mode="nearest")
    v = v - v.min()
    mx = v.max()
    v = v / mx if mx > 0 else np.ones(m)
    return (0.1 + 0.9 * v) * amp


# -- the builder -------------------------------------------------------------------------
def build_seeds(X, components, *, X_processed=None, spatial_shape=None, labels=None,
                spectral_axis=None, w_seed_mode="nnls", overwrite=True, h_fallback="residual",
                residual_score=True, build_w=True, w_floor=1e-3, random_state=None,
                max_residual_pixels=20000, nnls_backend="auto", fixed_h=False,
                callback=None) -> SeedSet:
    """Build ``W0`` / ``H0`` seeds from component specifications.

    Parameters
    ----------
    X : array_like (n_pixels, n_channels)
        Raw data (after the negative-value policy, if any).  Not modified.
    components : sequence of ComponentSpec
        One per component, in the order of the ``W0`` columns / ``H0`` rows.
    X_processed : array_like (n_pixels, n_channels), optional
        Processed data (background-subtracted, smoothed).  Defaults to ``X``.
    spatial_shape : tuple of int, optional
        Spatial shape of the image; masks, maps and labels may be given in it.
        Defaults to ``(n_pixels,)``.
    labels : array_like of int, optional
        Label image for :class:`~.components.RoiLabel` sources.
    spectral_axis : array_like (n_channels,), optional
        The stack's spectral axis, for resampling spectra and Gaussian models.
    w_seed_mode : {"nnls", "selective_score", "h_weighted", "average", "empty"}
        How maps are built from spectra (see the module documentation).
    overwrite : bool, default True
        Rebuild the map of a component with a usable spectrum from that spectrum,
        discarding the W image of its spectral information (Gaussian / seed
        pixels).  Map sources (FixedW, ImportedMap, BackgroundMap, previous result)
        are always kept.
    h_fallback : {"residual", "random", "none"}, default "residual"
        Spectrum for components without a usable one: the residual estimate (with
        the random smooth spectrum when it fails), the random spectrum directly, or
        none (an error naming those components).
    residual_score : bool, default True
        Select residual pixels by the score that prefers spectra not yet described
        by the basis (step e).
    build_w : bool, default True
        Build ``W0``.  Fixed-H NNLS needs only ``H0``.
    w_floor : float, default 1e-3
        Lower bound of generated maps (relative to their unit maximum).
    random_state : int, RandomState, Generator or None
        For the residual pixel subset, the random fallback and the ``"empty"`` mode.
    max_residual_pixels : int, default 20000
        At most this many pixels (drawn at random) enter the residual estimate.
    nnls_backend : str, default "auto"
        Backend of the NNLS fits (W-seed ``"nnls"`` mode, residual step c).
    fixed_h : bool, default False
        The spectra will be used as a fixed basis (fixed-H NNLS): a fallback spectrum
        is then reported as an emergency stand-in.
    callback : callable, optional
        ``callback(ProgressInfo)`` once per component and pass; False cancels.

    Returns
    -------
    SeedSet

    Raises
    ------
    ValueError
        Empty ROI or absent label (naming the component), spectra whose axis does
        not overlap the stack's (both ranges), maps of the wrong shape (both
        shapes), or components left without a spectrum when no fallback is
        possible (naming them).
    """
    X = check_data_matrix(X)
    n, m = X.shape
    spatial_shape = (n,) if spatial_shape is None else tuple(int(s) for s in spatial_shape)
    if int(np.prod(spatial_shape)) != n:
        raise ValueError(f"spatial_shape {spatial_shape} has {int(np.prod(spatial_shape))} "
                         f"pixels but X has {n} rows.")
    comps = list(components)
    if not comps:
        raise ValueError("No components given: seeded NNMF needs at least one ComponentSpec.")
    for c in comps:
        if not isinstance(c, ComponentSpec):
            raise TypeError(f"components must be ComponentSpec objects, got "
                            f"{type(c).__name__}.")
    names = [c.name for c in comps]
    dup = sorted({x for x in names if names.count(x) > 1})
    if dup:
        raise ValueError(f"Component names must be unique; repeated: {', '.join(dup)}.")
    if w_seed_mode not in W_SEED_MODES:
        raise ValueError(f"Unknown w_seed_mode {w_seed_mode!r}; choose one of "
                         f"{', '.join(W_SEED_MODES)}.")
    if h_fallback not in H_FALLBACKS:
        raise ValueError(f"Unknown h_fallback {h_fallback!r}; choose one of "
                         f"{', '.join(H_FALLBACKS)}.")
    if not 0 <= float(w_floor) < 1:
        raise ValueError(f"w_floor must be in [0, 1), got {w_floor}.")
    if spectral_axis is not None:
        spectral_axis = np.asarray(spectral_axis, dtype=np.float64)
        if spectral_axis.shape != (m,):
            raise ValueError(f"spectral_axis has shape {spectral_axis.shape} but the data has "
                             f"{m} channels.")
    seed = resolve_random_state(random_state)
    k = len(comps)
    report = Reporter(callback, "seeds")
    notes: list[str] = []

    # working data: negative values count as 0 for seed estimation only
    def _nonneg(A, label):
        if A.size and A.min() < 0:
            notes.append(f"The {label} data holds {int((A < 0).sum())} negative value(s); they "
                         "were treated as 0 for seed estimation (the data itself is unchanged).")
            return np.maximum(A, 0, dtype=A.dtype)
        return A

    raw = _nonneg(X, "raw")
    if X_processed is None:
        proc = raw
    else:
        Xp = check_data_matrix(X_processed, name="X_processed")
        if Xp.shape != X.shape:
            raise ValueError(f"X_processed has shape {Xp.shape} but X has shape {X.shape}.")
        proc = _nonneg(Xp, "processed")
    # without preprocessing the "processed" data is the raw data: report it as such
    work_key = ["raw" if (c.background or not c.use_subtracted or X_processed is None)
                else "processed" for c in comps]
    data_for = {"raw": raw, "processed": proc}

    reports = [SeedReport(name=c.name, working_data=work_key[i], locked=c.locked,
                          background=c.background, use_subtracted=c.use_subtracted)
               for i, c in enumerate(comps)]
    H = np.zeros((k, m), dtype=np.float64)
    have_h = np.zeros(k, dtype=bool)
    info_maps: list = [None] * k

    # pass 1: spectra from sources
    for i, c in enumerate(comps):
        Xw = data_for[work_key[i]]
        if c.h_source is not None:
            h, info = source_spectrum(c.h_source, Xw, name=c.name, spatial_shape=spatial_shape,
                                      labels=labels, spectral_axis=spectral_axis,
                                      warnings=reports[i].warnings)
            reports[i].h_source = c.h_source.describe()
            info_maps[i] = info
            if np.isfinite(h).all() and h.max() > 0:
                H[i] = h
                have_h[i] = True
            else:
                reports[i].warnings.append(
                    f"the spectrum from {c.h_source.describe()} is all zeros on the working "
                    "data; it cannot seed the component, so a fallback spectrum is used.")
        elif c.w_source is not None:
            wmap = _given_map(c, n, spatial_shape, raw)
            wsum = float(wmap.sum())
            h = (wmap @ np.asarray(Xw, dtype=np.float64)) / wsum
            if h.max() > 0:
                H[i] = h
                have_h[i] = True
                reports[i].h_source = f"map-weighted mean ({c.w_source.describe()})"
        report(i + 1, 3 * k)

    # pass 2: fallbacks
    missing = [i for i in range(k) if not have_h[i]]
    if missing:
        missing_names = ", ".join(repr(comps[i].name) for i in missing)
        if h_fallback == "none":
            raise ValueError(
                f"Component(s) {missing_names} have no usable spectrum seed and "
                "h_fallback='none'. Give each of them an ROI, spectrum or model, or allow "
                "the residual fallback (h_fallback='residual').")
        if not have_h.any() and all(c.h_source is None and c.w_source is None for c in comps):
            raise ValueError(
                f"None of the components ({missing_names}) has a seed, so there is nothing to "
                "seed NNMF with and no basis for the residual fallback. Give at least one "
                "component an ROI, spectrum, model or map, or run random NNMF (mode='nmf').")
        rng = np.random.default_rng([seed, 0xFA11])
        for i in missing:
            basis = H[have_h]
            Xw = data_for[work_key[i]]
            h, why = (None, "h_fallback='random'")
            if h_fallback == "residual":
                h, why = _residual_spectrum(Xw, basis, rng=rng, score_based=residual_score,
                                            max_pixels=int(max_residual_pixels),
                                            nnls_backend=nnls_backend)
            if h is not None:
                reports[i].h_fallback = "residual"
                reports[i].h_source = "residual"
            else:
                amp = (float(np.median(basis.max(axis=1))) if basis.shape[0]
                       else float(np.asarray(Xw).max()) or 1.0)
                h = _random_spectrum(m, amp, rng)
                reports[i].h_fallback = "random"
                reports[i].h_source = "random"
                if h_fallback == "residual":
                    reports[i].warnings.append(f"the residual estimate failed ({why}); a "
                                               "random smooth spectrum was used instead.")
            msg = ("no usable spectrum seed: estimated by the "
                   f"{reports[i].h_fallback} fallback")
            if fixed_h:
                msg += ("; in fixed-H NNLS this spectrum is an emergency fallback that stays "
                        "fixed, not a trusted reference: give a real spectrum for it")
            reports[i].warnings.append(msg + ".")
            H[i] = h
            have_h[i] = True
            report(k + i + 1, 3 * k)
    locked = np.array([c.locked for c in comps], dtype=bool)
    for i in np.flatnonzero(locked):
        if reports[i].h_fallback is not None:
            reports[i].warnings.append("this locked spectrum comes from a fallback and will not "
                                       "be refined; unlock it or give a real spectrum.")

    # pass 3: maps
    W0 = None
    if build_w:
        W0 = np.empty((n, k), dtype=np.float64)
        cache: dict[str, np.ndarray] = {}

        def mode_maps(key):
            if key not in cache:
                cache[key] = w_seed_maps(data_for[key], H, w_seed_mode, random_state=seed,
                                         nnls_backend=nnls_backend, notes=notes)
            return cache[key]

        for i, c in enumerate(comps):
            rep = reports[i]
            if c.w_source is not None:
                wmap = _given_map(c, n, spatial_shape, raw)
                if isinstance(c.w_source, FixedW):
                    W0[:, i] = wmap
                elif isinstance(c.w_source, BackgroundMap) and c.w_source.map is None:
                    W0[:, i] = _generated(wmap, w_floor)
                else:
                    W0[:, i] = _unit_max(wmap)
                rep.w_source = c.w_source.describe()
                continue
            if info_maps[i] is not None and not overwrite and rep.h_fallback is None:
                col = info_maps[i]
                if np.max(col) > 0:
                    W0[:, i] = _generated(col, w_floor)
                    rep.w_source = "spectral-info"
                    continue
                rep.warnings.append("the spectral-information W image is all zeros; the map "
                                    f"was built by the {w_seed_mode} W-seed mode instead.")
            if info_maps[i] is not None and overwrite:
                rep.overwritten = True
            col = mode_maps(work_key[i])[:, i]
            if not np.max(col) > 0:
                rep.warnings.append(f"the {w_seed_mode} W-seed map is zero everywhere (the "
                                    "spectrum is not found in the data); a neutral map was "
                                    "used instead.")
                col = w_seed_maps(data_for[work_key[i]], H[i:i + 1], "empty",
                                  random_state=seed + i)[:, 0]
                rep.w_source = f"empty (after {w_seed_mode} gave zeros)"
            else:
                rep.w_source = w_seed_mode
            W0[:, i] = _generated(col, w_floor)
            report(2 * k + i + 1, 3 * k)
        W0 = W0.astype(X.dtype)
    return SeedSet(H0=H.astype(X.dtype), W0=W0, reports=reports, locked=locked, names=names,
                   w_seed_mode=w_seed_mode, overwrite=bool(overwrite), notes=notes)


def _given_map(c: ComponentSpec, n, spatial_shape, raw):
    """The map of a component's ``w_source`` as a flat float64 array (validated)."""
    src = c.w_source
    what = f"Component {c.name!r}: {src.describe()} map"
    if isinstance(src, (FixedW, ImportedMap)):
        return np.asarray(_flat_map(src.map, n, spatial_shape, what), dtype=np.float64)
    if isinstance(src, PreviousResult):
        return np.asarray(_flat_map(src.w, n, spatial_shape, what), dtype=np.float64)
    if isinstance(src, BackgroundMap):
        if src.map is not None:
            return np.asarray(_flat_map(src.map, n, spatial_shape, what), dtype=np.float64)
        avg = np.maximum(np.asarray(raw, dtype=np.float64).mean(axis=1), 0.0)
        if not avg.any():
            raise ValueError(f"{what}: the raw data's mean image is zero everywhere.")
        return avg
    raise TypeError(f"{what}: {type(src).__name__} cannot give a map.")
