"""Unmixing of z-stacks and time series, with maps that are comparable across planes.

A series stack has a series axis (z or t), a spectral axis and the spatial axes of
one plane, e.g. ``(Z, C, Y, X)`` or ``(T, C, Y, X)``.  :func:`unmix_series` runs an
:class:`~napari_unmix.core.analysis.AnalysisConfig` on it plane by plane with one of
two strategies:

``"shared-basis"`` (default)
    One set of spectra ``H (k, C)`` is obtained once, then the abundances of every
    plane are fitted to it by fixed-H NNLS (:func:`~napari_unmix.core.nnls`, which
    streams pixel chunks).  All planes share one basis, so map values mean the same
    thing in every plane and can be compared directly.  The basis is

    * the given spectra (``H=``), used as they are;
    * or the spectra of the config run (:func:`~napari_unmix.core.run_analysis`) on
      a *reference* plane (``reference=<plane index>``): random NNMF, seeded NNMF
      (ROIs are drawn on that plane), or the seed spectra of a fixed-H NNLS config;
    * or the spectra of the config run on a *pooled* pixel sample of all planes
      (``reference="pooled"``).  The pool is a uniform random sample without
      replacement of ``pool_size`` pixels (default: as many as one plane has), the
      same number from every plane, drawn with the config's ``random_state``.  A
      pool has no image geometry, so spatial seed sources (ROI masks, labels, seed
      pixel lists, map seeds) need a reference plane instead.

``"per-slice"``
    The config runs on every plane independently (any mode, PCA included), so each
    plane has its own spectra ``H (Z, k, C)``.  Components are then put in the same
    order in every plane: each plane's spectra are paired with those of its
    neighbour towards the reference plane (``match="previous"``) or with the
    reference plane's (``match="reference"``) by the smallest total spectral angle
    (:func:`~napari_unmix.core.metrics.match_components`; for PCA the sign of a
    loading is free, so the angle is taken up to sign and flipped pairs are flipped
    back).  The angles are reported per plane: large angles say that a component
    changes between planes, or that the pairing is unreliable.  Seeded modes keep
    the order their components define (``match="auto"`` does not reorder them) and
    only report the angles.

Seeds
    ``unmix_series`` fits one plane (or a pixel sample) at a time, so the seeds of a
    config must be in one plane's geometry.  :func:`seeds_for_strategy` puts seeds
    drawn on the whole series (ROI masks ``(Z, Y, X)``, the series' label image, maps
    of an earlier series result) on the plane(s) a strategy fits, as the dock and the
    CLI do before a run (see :mod:`.seeds`).

Memory
    The stack is read one plane at a time (``stack[..., z, ...]`` converted with
    ``numpy.asarray``), so numpy arrays, memory maps, dask arrays and zarr arrays all
    work, and a dask or zarr series larger than memory runs plane by plane.  Beyond
    the maps ``(k, Z, *plane)`` the run holds one plane's data and temporaries (and
    the pool, no bigger than one plane by default).  The pooled basis reads every
    plane twice (once to sample, once to fit).

Progress
    ``callback(info)`` receives :class:`SeriesProgressInfo`, a
    :class:`~napari_unmix.core.progress.ProgressInfo` whose ``fraction`` covers the
    whole series and which says which ``plane`` runs.  Returning False cancels
    (:class:`~napari_unmix.core.progress.Cancelled`); nothing half-done is returned.
"""
from ..summaries import SeriesSummary
from .matching import MATCH_POLICIES
from .planes import default_series_axis
from .progress import SeriesProgressInfo
from .result import SERIES_STRATEGIES, SeriesResult, plane_index
from .run import spatial_seeds, unmix_series
from .seeds import SeedPlacementError, SeriesSeeds, seeds_for_strategy

__all__ = ["MATCH_POLICIES", "SERIES_STRATEGIES", "SeedPlacementError", "SeriesProgressInfo",
           "SeriesResult", "SeriesSeeds", "SeriesSummary", "default_series_axis",
           "plane_index", "seeds_for_strategy", "spatial_seeds", "unmix_series"]
