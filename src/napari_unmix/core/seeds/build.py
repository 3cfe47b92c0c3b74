"""The seeding engine: :func:`build_seeds`.

It turns a list of :class:`~napari_unmix.core.components.ComponentSpec` into initial
factors ``W0 (n_pixels, k)`` and ``H0 (k, n_channels)`` and a
:class:`~napari_unmix.core.summaries.SeedReport` per component that says which source
produced each factor and which fallback fired, in three passes.

1. Spectra (``H0`` rows)
    Each component's ``h_source`` gives its spectrum
    (:meth:`~napari_unmix.core.sources.Source.spectrum`).  A component that has a map
    source but no spectrum source gets the map-weighted mean spectrum
    ``sum_p w_p x_p / sum_p w_p``.  Spectra keep their count / spectral scale.

2. Fallbacks, for components still without a usable spectrum (no source, or a
   source whose spectrum is all zero)
    The configured fallback (:mod:`~napari_unmix.core.seeds.fallbacks`) estimates it;
    the new spectrum joins the basis before the next unseeded component is treated.
    The report flags it; in fixed-H NNLS such a spectrum is an emergency stand-in,
    not a trusted reference, and the report says so.

3. Maps (``W0`` columns)
    * a map source wins (:meth:`~napari_unmix.core.sources.Source.seed_map`):
      ``FixedW`` is used exactly as given; ``ImportedMap``, a previous result's map
      and ``BackgroundMap`` are normalised to unit maximum;
    * a spectral-information source (``Gaussian``, ``Flat``, ``SeedPixels``) also
      yields a W image (a flat spectrum's is the mean intensity); it is kept when
      ``overwrite=False``.  With ``overwrite=True`` (default) and a usable spectrum,
      the map is rebuilt from ``H0`` by the W-seed mode instead;
    * otherwise the W-seed mode (:mod:`~napari_unmix.core.seeds.w_modes`) builds the
      map from ``H0`` and the working data.

    Every generated map is divided by its maximum (unit maximum per component) and
    raised to at least ``w_floor`` (default 1e-3), so generated seeds are strictly
    positive and on comparable scales whatever the scale of the data.  The NNMF
    scale ambiguity (``a W_i``, ``H_i / a``) makes this harmless: the solver
    rescales each pair.

Working data
    Background components use the raw data; the others use the processed data
    (background-subtracted and/or smoothed) unless their ``use_subtracted`` is
    False, in which case the raw data.  This applies to ROI and seed-pixel
    spectra, the W-seed maps and the fallbacks.  Negative values of the working
    data (common after background subtraction) are treated as 0 for seed
    estimation only; the count is reported.

Nothing here modifies the caller's data or sources.  User maps and spectra with
exact zeros are passed on unchanged (the MU eps lift happens later, on a copy,
inside :func:`~napari_unmix.core.nmf.nmf`).
"""

from __future__ import annotations

import numpy as np

from ..components import ComponentSpec
from ..data import check_matrix, check_spectral_values
from ..init import resolve_random_state
from ..pixel_layout import check_pixel_mask
from ..progress import Reporter
from ..sources import SeedContext
from ..sources.maps import generated_map
from ..summaries import SeedReport
from .fallbacks import H_FALLBACKS
from .seed_set import SeedSet
from .w_modes import W_SEED_MODES, w_seed_maps

__all__ = ["build_seeds"]


def _check_components(components) -> list[ComponentSpec]:
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
    return comps


def _non_negative(A, label, notes):
    """Working data for seed estimation: negative values count as 0 (reported)."""
    if A.size and A.min() < 0:
        notes.append(f"The {label} data holds {int((A < 0).sum())} negative value(s); they "
                     "were treated as 0 for seed estimation (the data itself is unchanged).")
        return np.maximum(A, 0, dtype=A.dtype)
    return A


class _Builder:
    """The state of one :func:`build_seeds` call, pass by pass."""

    def __init__(self, comps, ctx: SeedContext, work_key, *, report, seed, nnls_backend,
                 fixed_h=False):
        self.comps = comps
        self.fixed_h = fixed_h
        self.ctx = ctx
        self.work_key = work_key
        self.report = report
        self.seed = seed
        self.nnls_backend = nnls_backend
        k, m = len(comps), ctx.n_channels
        self.H = np.zeros((k, m), dtype=np.float64)
        self.have_h = np.zeros(k, dtype=bool)
        self.info_maps: list = [None] * k
        self.reports = [SeedReport(name=c.name, working_data=work_key[i], locked=c.locked,
                                   background=c.background, use_subtracted=c.use_subtracted)
                        for i, c in enumerate(comps)]

    def data(self, i) -> np.ndarray:
        return self.ctx.raw if self.work_key[i] == "raw" else self.ctx.processed

    # pass 1 -------------------------------------------------------------------------
    def spectra_from_sources(self):
        k = len(self.comps)
        for i, c in enumerate(self.comps):
            rep = self.reports[i]
            if c.h_source is not None:
                h, info = c.h_source.spectrum(self.ctx, self.data(i), name=c.name,
                                              warnings=rep.warnings)
                rep.h_source = c.h_source.describe()
                self.info_maps[i] = info
                if np.isfinite(h).all() and h.max() > 0:
                    self.H[i], self.have_h[i] = h, True
                else:
                    rep.warnings.append(
                        f"the spectrum from {c.h_source.describe()} is all zeros on the "
                        "working data; it cannot seed the component, so a fallback spectrum "
                        "is used.")
            elif c.w_source is not None:
                wmap = c.w_source.given_map(self.ctx, name=c.name)
                h = (wmap @ np.asarray(self.data(i), dtype=np.float64)) / float(wmap.sum())
                if h.max() > 0:
                    self.H[i], self.have_h[i] = h, True
                    rep.h_source = f"map-weighted mean ({c.w_source.describe()})"
                    # a spectrum estimated from a map, not given: a fallback like the others
                    rep.h_fallback = "map-mean"
                    rep.warnings.append(
                        "no spectrum seed: the mean spectrum of the pixels its map weights "
                        "was used" + ("; in fixed-H NNLS it stays fixed as an estimate, not a "
                                      "trusted reference" if self.fixed_h else "") + ".")
            self.report(i + 1, 3 * k)

    # pass 2 -------------------------------------------------------------------------
    def fallbacks(self, h_fallback, *, fixed_h, residual_score, max_residual_pixels):
        comps, k = self.comps, len(self.comps)
        missing = [i for i in range(k) if not self.have_h[i]]
        if not missing:
            return
        names = ", ".join(repr(comps[i].name) for i in missing)
        fallback = H_FALLBACKS[h_fallback]
        if fallback is None:
            raise ValueError(
                f"Component(s) {names} have no usable spectrum seed and h_fallback="
                f"{h_fallback!r}. Give each of them an ROI, spectrum or model, or allow "
                "the residual fallback (h_fallback='residual').")
        if not self.have_h.any() and all(c.h_source is None and c.w_source is None
                                         for c in comps):
            raise ValueError(
                f"None of the components ({names}) has a seed, so there is nothing to "
                "seed NNMF with and no basis for the residual fallback. Give at least one "
                "component an ROI, spectrum, model or map, or run random NNMF (mode='nmf').")
        rng = np.random.default_rng([self.seed, 0xFA11])
        for i in missing:
            got = fallback(self.data(i), self.H[self.have_h], rng=rng,
                           residual_score=residual_score, max_pixels=max_residual_pixels,
                           nnls_backend=self.nnls_backend)
            rep = self.reports[i]
            rep.h_fallback = rep.h_source = got.source
            if got.note:
                rep.warnings.append(got.note)
            msg = f"no usable spectrum seed: estimated by the {got.source} fallback"
            if fixed_h:
                msg += ("; in fixed-H NNLS this spectrum is an emergency fallback that stays "
                        "fixed, not a trusted reference: give a real spectrum for it")
            rep.warnings.append(msg + ".")
            self.H[i], self.have_h[i] = got.values, True
            self.report(k + i + 1, 3 * k)
        for i, c in enumerate(comps):
            if c.locked and self.reports[i].h_fallback is not None:
                self.reports[i].warnings.append(
                    "this locked spectrum comes from a fallback and will not be refined; "
                    "unlock it or give a real spectrum.")

    # pass 3 -------------------------------------------------------------------------
    def maps(self, w_seed_mode, *, overwrite, w_floor, notes):
        comps, k = self.comps, len(self.comps)
        W0 = np.empty((self.ctx.n_pixels, k), dtype=np.float64)
        cache: dict[str, np.ndarray] = {}

        def mode_maps(i):
            key = self.work_key[i]
            if key not in cache:
                cache[key] = w_seed_maps(self.data(i), self.H, w_seed_mode,
                                         random_state=self.seed,
                                         nnls_backend=self.nnls_backend, notes=notes)
            return cache[key]

        for i, c in enumerate(comps):
            rep = self.reports[i]
            if c.w_source is not None:
                W0[:, i] = c.w_source.seed_map(self.ctx, name=c.name, floor=w_floor)
                rep.w_source = c.w_source.describe()
                continue
            info = self.info_maps[i]
            if info is not None and not overwrite and rep.h_fallback is None:
                if np.max(info) > 0:
                    W0[:, i] = generated_map(info, w_floor)
                    rep.w_source = "spectral-info"
                    continue
                rep.warnings.append("the spectral-information W image is all zeros; the map "
                                    f"was built by the {w_seed_mode} W-seed mode instead.")
            if info is not None and overwrite:
                rep.overwritten = True
            col = mode_maps(i)[:, i]
            if not np.max(col) > 0:
                rep.warnings.append(f"the {w_seed_mode} W-seed map is zero everywhere (the "
                                    "spectrum is not found in the data); a neutral map was "
                                    "used instead.")
                col = w_seed_maps(self.data(i), self.H[i:i + 1], "empty",
                                  random_state=self.seed + i)[:, 0]
                rep.w_source = f"empty (after {w_seed_mode} gave zeros)"
            else:
                rep.w_source = w_seed_mode
            W0[:, i] = generated_map(col, w_floor)
            self.report(2 * k + i + 1, 3 * k)
        return W0


def _warn_partial(ctx: SeedContext, fixed_h: bool) -> None:
    """A warning for every spectrum that covers only part of the stack's axis."""
    import warnings

    m = ctx.n_channels
    for name, (n_out, lo, hi) in ctx.partial.items():
        consequence = ("its abundances will be wrong wherever those channels hold signal"
                       if fixed_h else "the fit will have to grow it there from nothing")
        warnings.warn(f"Component {name!r}: its spectrum covers {lo:g} to {hi:g}, only part of "
                      f"the stack's axis: {n_out} of {m} channels were set to 0, so {consequence}."
                      " Give a spectrum over the whole axis, or crop the stack to its range.",
                      UserWarning, stacklevel=3)


def build_seeds(X, components, *, X_processed=None, spatial_shape=None, labels=None,
                spectral_values=None, w_seed_mode="nnls", overwrite=True,
                h_fallback="residual", residual_score=True, build_w=True, w_floor=1e-3,
                random_state=None, max_residual_pixels=None, nnls_backend="auto",
                fixed_h=False, layout=None, pixel_mask=None, callback=None) -> SeedSet:
    """Build ``W0`` / ``H0`` seeds from component specifications.

    Parameters
    ----------
    X : array_like (n_pixels, n_channels) or CheckedMatrix
        Raw data (after the negative-value policy, if any).  Not modified.
    components : sequence of ComponentSpec
        One per component, in the order of the ``W0`` columns / ``H0`` rows.
    X_processed : array_like (n_pixels, n_channels), optional
        Processed data (background-subtracted, smoothed).  Defaults to ``X``.
    spatial_shape : tuple of int, optional
        Spatial shape of the image; masks, maps and labels may be given in it.
        Defaults to ``(n_pixels,)``.
    labels : array_like of int, optional
        Label image for :class:`~napari_unmix.core.sources.RoiLabel` sources.
    spectral_values : array_like (n_channels,), optional
        Spectral position of every channel, for resampling spectra and placing
        Gaussian models.
    w_seed_mode : str, default "nnls"
        How maps are built from spectra (one of
        :data:`~napari_unmix.core.seeds.W_SEED_MODES`).
    overwrite : bool, default True
        Rebuild the map of a component with a usable spectrum from that spectrum,
        discarding the W image of its spectral information (Gaussian / seed
        pixels).  Map sources are always kept.
    h_fallback : {"residual", "random", "none"}, default "residual"
        Spectrum for components without a usable one (see
        :mod:`~napari_unmix.core.seeds.fallbacks`).
    residual_score : bool, default True
        Select residual pixels by the score that prefers spectra not yet described
        by the basis.
    build_w : bool, default True
        Build ``W0``.  Fixed-H NNLS needs only ``H0``.
    w_floor : float, default 1e-3
        Lower bound of generated maps (relative to their unit maximum).
    random_state : int, RandomState, Generator or None
        For the residual pixel subset, the random fallback and the ``"empty"`` mode.
    max_residual_pixels : int, optional
        At most this many pixels (drawn at random with ``random_state``) enter the
        residual estimate; by default every pixel does (a sample misses the small
        structures the fallback exists for).  The number used is in the report
        (``SeedsSummary.residual_pixels``).
    nnls_backend : str, default "auto"
        Backend of the NNLS fits (W-seed ``"nnls"`` mode, residual fit).
    fixed_h : bool, default False
        The spectra will be used as a fixed basis (fixed-H NNLS): a fallback spectrum
        is then reported as an emergency stand-in.
    layout : PixelLayout, optional
        The order of the rows of ``X`` when it is not C order of the spatial axes (a
        chunked stack read tile by tile); masks, labels, maps and pixel indices are
        given in C order or as images and are put into it.  ``W0`` is in that order.
    pixel_mask : array_like of bool (``spatial_shape``), optional
        The pixels the rows of ``X`` hold, in C order, when some were left out
        (``nan_policy="omit"``): masks, labels and maps given as images are read on
        these pixels only, and pixel indices are turned into their rows.
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
    data = check_matrix(X)
    n, m = data.X.shape
    spatial_shape = (n,) if spatial_shape is None else tuple(int(s) for s in spatial_shape)
    if pixel_mask is not None:
        pixel_mask = check_pixel_mask(pixel_mask, spatial_shape, n, name="pixel_mask")
        if layout is not None and not layout.is_c_order:
            raise ValueError("pixel_mask needs rows in C order, not a tiled layout.")
    elif int(np.prod(spatial_shape)) != n:
        raise ValueError(f"spatial_shape {spatial_shape} has {int(np.prod(spatial_shape))} "
                         f"pixels but X has {n} rows.")
    comps = _check_components(components)
    if w_seed_mode not in W_SEED_MODES:
        raise ValueError(f"Unknown w_seed_mode {w_seed_mode!r}; choose one of "
                         f"{', '.join(W_SEED_MODES)}.")
    if h_fallback not in H_FALLBACKS:
        raise ValueError(f"Unknown h_fallback {h_fallback!r}; choose one of "
                         f"{', '.join(H_FALLBACKS)}.")
    if not 0 <= float(w_floor) < 1:
        raise ValueError(f"w_floor must be in [0, 1), got {w_floor}.")
    spectral_values = check_spectral_values(spectral_values, m, where="the data")
    notes: list[str] = []
    raw = _non_negative(data.X, "raw", notes)
    proc = raw
    if X_processed is not None:
        Xp = check_matrix(X_processed, name="X_processed").X
        if Xp.shape != data.X.shape:
            raise ValueError(f"X_processed has shape {Xp.shape} but X has shape "
                             f"{data.X.shape}.")
        proc = _non_negative(Xp, "processed", notes)
    ctx = SeedContext(raw, proc, spatial_shape=spatial_shape, labels=labels,
                      spectral_values=spectral_values, layout=layout,
                      pixel_mask=pixel_mask)
    # without preprocessing the "processed" data is the raw data: report it as such
    work_key = ["raw" if (c.background or not c.use_subtracted or X_processed is None)
                else "processed" for c in comps]
    seed = resolve_random_state(random_state)
    builder = _Builder(comps, ctx, work_key, report=Reporter(callback, "seeds"), seed=seed,
                       nnls_backend=nnls_backend, fixed_h=fixed_h)
    builder.spectra_from_sources()
    n_residual = n if max_residual_pixels is None else min(n, int(max_residual_pixels))
    builder.fallbacks(h_fallback, fixed_h=fixed_h, residual_score=residual_score,
                      max_residual_pixels=n_residual)
    _warn_partial(ctx, fixed_h)
    W0 = None
    if build_w:
        W0 = builder.maps(w_seed_mode, overwrite=overwrite, w_floor=w_floor,
                          notes=notes).astype(data.X.dtype)
    locked = np.array([c.locked for c in comps], dtype=bool)
    if any(r.h_fallback == "residual" for r in builder.reports):
        notes.append(f"residual fallback fitted on {n_residual} of {n} pixels.")
    return SeedSet(H0=builder.H.astype(data.X.dtype), W0=W0, reports=builder.reports,
                   locked=locked, names=[c.name for c in comps], w_seed_mode=w_seed_mode,
                   overwrite=bool(overwrite), notes=notes)
