"""Glue between the dock and :func:`napari_unmix.core.unmix_series` for z / t series.

Which axis of an image is its series axis, how the dock's series choice becomes a
plan (:class:`SeriesPlan`), how the dock's components become the seeds of a series
run (ROIs drawn on one plane or on all: each core source says how it applies to a
plane, :meth:`~napari_unmix.core.sources.Source.on_plane` /
:meth:`~napari_unmix.core.sources.Source.on_every_plane` /
:meth:`~napari_unmix.core.sources.Source.needs_geometry`), which spectra the spectra
dock shows for a series result, and the summary text of a series run.  The whole
series as one result for the layers is the core's
:meth:`SeriesResult.as_result <napari_unmix.core.series.SeriesResult.as_result>`.

z / t series
    An image with a spatial axis besides the Y-X plane, e.g. ``(Z, C, Y, X)`` or
    ``(T, C, Y, X)``, gets a "series" choice (:mod:`.series_panel`).  The *series
    axis* is the first such axis (the first non-spectral axis in front of the last
    two); it is hidden for ``(C, Y, X)`` stacks.

    * *joint fit (all planes as pixels)*: one :func:`run_analysis` on the whole
      stack, the planes' pixels pooled into one matrix (the default).
    * *per plane*: :func:`~napari_unmix.core.series.unmix_series` with
      ``strategy="per-slice"``: every plane is fitted on its own (any mode), and the
      components are put in the order of the reference plane's.
    * *shared basis from plane N*: the spectra are fitted on plane N (by default
      the plane the viewer shows; the reference plane follows the slider until it
      is edited), then every plane's maps by fixed-spectra NNLS, so that map values
      compare across planes.
    * *shared basis from all planes (pooled sample)*: the same, with the spectra
      fitted on a random pixel sample drawn evenly from all planes.

    A 5-D image, e.g. ``(T, Z, C, Y, X)``, is a series along its first axis (T)
    whose planes are volumes: each time point's whole z-stack is one "plane".

    Seeds belong to a plane (:func:`series_seeds`: the core's
    :func:`~napari_unmix.core.series.seeds_for_strategy`, which the CLI uses too, from
    each core source's ``on_plane`` / ``on_every_plane`` / ``needs_geometry``).  A shared
    basis from plane N takes the ROIs and labels on plane N (an ROI with no pixel there
    is refused, naming the planes it is on).  A per-plane run applies each ROI to every
    plane, so it needs ROIs that are the same on every plane (e.g. a 2-D Shapes layer
    over the stack); label seeds follow each plane's labels and must be present on every
    plane.  The region of a background subtraction goes the same way (``background=``).
    The pooled sample has no geometry: ROI and label seeds are refused before the run
    starts.  Rows seeded from a previous result give their spectrum; their map is a
    seed only for a shared basis from plane N (its plane N), and the dock says so when
    it is left out.

    The maps are published like a joint fit's (one layer per component over all
    planes, placed on the image, :mod:`.layers`); the dock's ``result`` is then the
    core's :meth:`SeriesResult.as_result
    <napari_unmix.core.series.SeriesResult.as_result>` (``W`` the maps of all
    planes, ``H`` the shared basis, or for per-plane runs the mean of the planes'
    matched spectra, with every plane's spectra in ``arrays["plane_H"]``) and
    its ``series_result`` the :class:`~napari_unmix.core.series.SeriesResult`.
    The spectra dock shows the shared basis, or for per-plane runs the spectra of
    the plane the viewer shows, redrawn when the slider moves.  The fit summary
    gives the basis fit and the iterations, cap hits and errors of every plane.

Nothing here imports Qt.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..core.series import (
    SeedPlacementError,
    SeriesSeeds,
    default_series_axis,
    seeds_for_strategy,
)
from ..core.series_choice import SeriesChoice
from ..core.sources.regions import plane_ranges
from ..core.summaries import NNLSSummary, PCASummary
from .help_texts import dock_words
from .rois import ImageGrid, RoiError
from .summary_text import mode_label, shows_random_state

__all__ = ["PLANE_CHOICES", "SERIES_CHOICES", "SeriesPlan", "dock_choice", "series_axis",
           "series_seeds", "series_spectra", "series_summary", "series_text"]

#: How an image with a series axis (z / t) is unmixed: menu label -> value.
SERIES_CHOICES = {
    "joint fit (all planes as pixels)": "joint",
    "per plane": "per-plane",
    "shared basis from plane N": "plane",
    "shared basis from all planes (pooled sample)": "pooled",
}
#: The choices that fit on (or order the planes like) one reference plane.
PLANE_CHOICES = ("per-plane", "plane")


@dataclass(frozen=True)
class SeriesPlan:
    """How a series run goes: the dock's choice, the series axis and the reference."""

    choice: str  # "per-plane", "plane" or "pooled" (see SERIES_CHOICES)
    axis: int  # series axis of the image data
    n_planes: int
    plane: int  # reference plane (basis plane, or the plane others are ordered like)

    def __post_init__(self):
        if self.choice not in SERIES_CHOICES.values() or self.choice == "joint":
            raise ValueError(f"{self.choice!r} is not a series strategy of the dock (one of "
                             f"{', '.join(v for v in SERIES_CHOICES.values() if v != 'joint')}).")

    @property
    def strategy(self) -> str:
        """The core's strategy: ``"per-slice"`` or ``"shared-basis"``."""
        return "per-slice" if self.choice == "per-plane" else "shared-basis"

    @property
    def pooled(self) -> bool:
        return self.choice == "pooled"

    @property
    def reference(self):
        """The core's ``reference``: the plane, or ``"pooled"``."""
        return "pooled" if self.pooled else self.plane

    @property
    def reference_plane(self) -> int | None:
        """The reference plane, or None for a pooled sample."""
        return None if self.pooled else self.plane

    @property
    def label(self) -> str:
        return {v: k for k, v in SERIES_CHOICES.items()}[self.choice].replace(
            "plane N", f"plane {self.plane}")

    def saved(self) -> SeriesChoice:
        """The choice as a saved setup keeps it (``AnalysisConfig.series``)."""
        return SeriesChoice(self.strategy, self.axis, self.reference)


def dock_choice(saved: SeriesChoice) -> tuple[str, int | None]:
    """The dock's series choice (a value of ``SERIES_CHOICES``) and reference plane
    (None: pooled) of a saved setup's :class:`~napari_unmix.core.series_choice.SeriesChoice`."""
    if saved.reference == "pooled":
        return "pooled", None
    return ("per-plane" if saved.strategy == "per-slice" else "plane"), int(saved.reference)


def series_axis(grid: ImageGrid) -> int | None:
    """The series (z / t) axis of an image: its first spatial axis in front of the Y-X
    plane, or None for a single spectral image ``(C, Y, X)`` (the core's rule,
    :func:`~napari_unmix.core.series.default_series_axis`, that the CLI follows too)."""
    return default_series_axis(grid.ndim, grid.spectral_axis_index)


def series_text(grid: ImageGrid) -> str:
    """What the series choice says about an image's series axis ("" without one)."""
    axis = series_axis(grid)
    if axis is None:
        return ""
    plane = [grid.shape[i] for i in grid.spatial_dims if i != axis]
    text = (f"series along axis {axis}: {grid.shape[axis]} planes of "
            f"{' x '.join(map(str, plane))} pixels")
    return text + (" (each plane is a volume)" if len(plane) > 2 else "")


# -- seeds ---------------------------------------------------------------------------------
def _names(names) -> str:
    return ", ".join(map(repr, names))


def series_seeds(comps, labels, grid: ImageGrid, plan: SeriesPlan, *,
                 background=None) -> SeriesSeeds:
    """The components, label image and background of a series run, with their seeds put
    on the plane(s) the strategy fits (the core's
    :func:`~napari_unmix.core.series.seeds_for_strategy`), in the dock's words.

    * shared basis from plane N: every source restricted to plane N
      (``on_plane``); the label image is plane N's;
    * per plane: every source as it applies to every plane (``on_every_plane``);
    * pooled sample: spectrum sources that need the image's geometry
      (``needs_geometry``) are refused; maps (e.g. a previous result's) are left out.

    ``background`` (the preprocessing's background source) is placed like a spectrum
    seed.  A map source that cannot seed the strategy is left out (its spectrum stays),
    and a note says so.

    Returns the core's :class:`~napari_unmix.core.series.SeriesSeeds` with the dock's
    ``notes`` (lines to tell the user).  Raises RoiError (naming the component, the
    reason and what to do) when a seed does not fit the strategy.
    """
    try:
        seeds = seeds_for_strategy(comps, labels, spatial_shape=grid.spatial_shape,
                                   strategy=plan.strategy, reference=plan.reference,
                                   background=background)
    except SeedPlacementError as exc:
        if exc.needs_geometry and exc.components:
            region = ", nor a background subtracted from a region" if exc.background else ""
            raise RoiError(
                "A shared basis from all planes is fitted on a pixel sample pooled from "
                "every plane, which has no image geometry, so ROI and label seeds cannot be "
                f"used (component(s) {_names(exc.components)}){region}. Choose 'shared basis "
                "from plane N' with N the plane the ROIs are on, or 'per plane', or seed these "
                "components from spectrum files or Gaussian models.") from None
        raise RoiError(dock_words(str(exc))) from None
    notes = []
    if seeds.maps_left_out:
        notes.append(f"{_names(seeds.maps_left_out)}: seeded from the previous result's "
                     f"spectrum only; a {plan.label!r} run cannot take its maps (they differ "
                     "between planes) as seed maps.")
    if seeds.spectra_left_out:
        notes.append(f"{_names(seeds.spectra_left_out)}: the spectrum seed cannot seed a "
                     f"{plan.label!r} run; the spectrum fallback estimates it.")
    return dataclasses.replace(seeds, notes=tuple(notes))


# -- spectra -------------------------------------------------------------------------------
def series_spectra(sr, plane: int):
    """What the spectra dock shows for series result ``sr`` while the viewer shows
    plane ``plane``: ``(result, title, suffix)``.

    A shared basis: the basis (the same on every plane), with a title saying where
    it was fitted.  Per plane: plane ``plane``'s spectra (and its scree, for PCA) as
    a result of that plane; no title of its own (the result's), and a suffix naming
    the plane.
    """
    if sr.shared_basis:
        b = sr.summary.basis
        where = {"plane": f"plane {None if b is None else b.plane}",
                 "given": "a given basis"}.get(None if b is None else b.source,
                                               "pooled sample of all planes")
        return sr.plane_result(0), f"Shared basis, fitted on {where}", ""
    z = int(plane)
    res = sr.plane_result(z)
    fit = sr.planes[z].fit if z < len(sr.planes) else None
    if isinstance(fit, PCASummary) and fit.explained_variance_ratio is not None:
        res = dataclasses.replace(res, explained_variance_ratio=np.asarray(
            fit.explained_variance_ratio, dtype=np.float64))
    return res, None, f" · plane {z} of 0-{sr.n_planes - 1} (follows the slider)"


# -- summary -------------------------------------------------------------------------------
def _per_plane(values, spec=".3g", *, worst=max) -> str:
    """Every plane's value (up to 8 planes), else the range and the worst plane."""
    vals = [int(v) if spec == "d" else float(v) for v in values]
    if not vals:
        return "n/a"
    if len(vals) <= 8:
        return ", ".join(format(v, spec) for v in vals)
    lo, hi = min(vals), max(vals)
    if lo == hi:
        return f"{format(lo, spec)} on every plane"
    bad = vals.index(worst(vals))
    return (f"{format(lo, spec)} to {format(hi, spec)} "
            f"({'highest' if worst is max else 'lowest'} on plane {bad})")


def _num(v) -> float:
    return np.nan if v is None else float(v)


def _basis_lines(sr, cfg) -> list[str]:
    b = sr.summary.basis
    k, n = sr.n_components, sr.n_planes
    where = (f"plane {b.plane}" if b.source == "plane" else
             f"a pooled sample of {b.pool_size if b.pool_size is not None else '?'} pixels "
             "from all planes")
    text = f"basis: {mode_label(b.mode or cfg.mode)} on {where}"
    if b.n_iter is not None and not isinstance(b.fit, PCASummary):
        cap = ("cap hit: raise 'max iterations'" if b.hit_max_iter else
               "converged" if b.converged else "done")
        text += f", {b.n_iter} iterations ({cap})"
    return [f"Shared basis · {k} components · {n} planes", text,
            f"planes: fixed-H NNLS ({sr.params['nnls_solver']}/{sr.params['nnls_backend']}), "
            "maps comparable across planes"]


def _match_lines(sr) -> list[str]:
    lines = [f"Per plane · {mode_label(sr.mode)} · {sr.n_components} components · "
             f"{sr.n_planes} planes"]
    m = sr.summary.match
    if m is not None:
        policy = {"previous": "matched to the neighbouring plane",
                  "reference": f"matched to plane {m.reference}",
                  "none": "in the seeds' order"}.get(m.policy, m.policy)
        angle = float(np.degrees(m.max_angle or 0.0))
        lines.append(f"components {policy}; largest spectral angle between planes "
                     f"{angle:.1f}°")
    return lines


def _plane_fit_lines(sr, cfg) -> list[str]:
    s = sr.summary
    fits = [p.fit for p in sr.planes]
    nnls = bool(fits) and all(isinstance(f, NNLSSummary) for f in fits)
    hit = s.planes_hit_max_iter or []
    if fits and all(isinstance(f, PCASummary) for f in fits):
        evr = [f.cumulative_explained_variance for f in fits]
        if all(v is not None for v in evr):
            return [f"explained variance per plane: {_per_plane(evr, '.1%', worst=min)}"]
        return []
    if nnls and all(f.exact for f in fits):
        if s.n_capped_pixels:
            return [f"exact NNLS: {s.n_capped_pixels} pixel(s) hit max_iter={cfg.max_iter} and "
                    f"are NaN (plane(s) {plane_ranges(hit)}): raise 'max iterations'"]
        return ["exact NNLS: every pixel of every plane solved"]
    cap = (f"cap hit on plane(s) {plane_ranges(hit)}: raise 'max iterations'" if hit
           else "within cap")
    what = "per chunk, " if nnls else ""
    its = [f.max_chunk_iter if isinstance(f, NNLSSummary) and f.max_chunk_iter is not None
           else (p.n_iter or 0) for p, f in zip(sr.planes, fits, strict=True)]
    lines = [f"iterations per plane ({what}of {cfg.max_iter}): {_per_plane(its, 'd')}; {cap}"]
    if s.n_capped_pixels:
        lines.append(f"{s.n_capped_pixels} capped pixel(s) in all planes")
    return lines


def series_summary(sr) -> str:
    """A few lines on a series run: the basis fit, every plane's iterations, cap hits
    and errors, the component matching of per-plane runs, seed and time."""
    s = sr.summary
    cfg = sr.config()
    lines = _basis_lines(sr, cfg) if sr.shared_basis else _match_lines(sr)
    lines += _plane_fit_lines(sr, cfg)
    lines.append(f"relative error per plane: {_per_plane(s.plane_relative_errors or [])}")
    lines.append(f"reconstruction error: {_num(s.reconstruction_err):.4g} "
                 f"(relative {_num(s.relative_error):.3g})")
    tail = []
    if cfg.random_state is not None and shows_random_state(cfg.mode):
        tail.append(f"random_state {cfg.random_state}")
    if s.time_s is not None:
        tail.append(f"time {float(s.time_s):.2f} s")
    if tail:
        lines.append(" · ".join(tail))
    return "\n".join(lines)
