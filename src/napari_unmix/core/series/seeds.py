"""The seeds of a series run: each component's sources put on the plane(s) a strategy fits.

A seeded config drawn on a z / t series carries its regions in the series' geometry: a
ROI mask of shape ``(Z, Y, X)`` (the same region on every plane, or on some planes
only), a label image of the series, the maps of an earlier result of the whole series.
:func:`unmix_series <napari_unmix.core.series.unmix_series>` fits one plane (or a pixel
sample) at a time, so these seeds must first be put on the plane(s) the strategy fits.
Each core source says how it applies (:meth:`~napari_unmix.core.sources.Source.on_plane`,
:meth:`~napari_unmix.core.sources.Source.on_every_plane`,
:meth:`~napari_unmix.core.sources.Source.needs_geometry`); :func:`seeds_for_strategy`
applies them for one strategy, as the dock and the CLI both do before a series run:

* a shared basis fitted on plane N: every source restricted to plane N, and the label
  image is plane N's;
* per-slice fits: every source as it applies to every plane (an ROI must be the same on
  every plane, a label present on every plane); the label image stays the series';
* a shared basis fitted on a pooled pixel sample: sources that need the image geometry
  (ROI masks, labels, seed pixels) are refused, because a sample has none.

The region of a background subtraction (``AnalysisConfig.preprocessing.background``, a
``RoiMask`` or ``RoiLabel``) goes the same way (``background=``): plane N's for a shared
basis from plane N, one plane's region used on every plane for per-slice fits, refused
for a pooled sample.  A region that differs between planes is refused for per-slice
fits, as a component's ROI is: ``unmix_series`` runs one config on every plane, so a
background taken from another region on every plane could not be recorded in the
result's config, nor the run be reproduced from it.

A map source that cannot seed the strategy (a map of the whole series, for per-slice
fits or a pooled sample) is left out, its spectrum kept, and a note says so.  Seeds
given in one plane's shape are used as they are.  Nothing is modified: the sources that
change are new ones.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .result import SERIES_STRATEGIES, plane_index

__all__ = ["SeedPlacementError", "SeriesSeeds", "seeds_for_strategy"]


class SeedPlacementError(ValueError):
    """A seed that does not fit the series strategy.

    The message names the component(s), says why and what to do.

    Attributes
    ----------
    components : tuple of str
        The components refused.
    needs_geometry : bool
        True when they were refused because a pooled pixel sample has no image
        geometry (ROI, label and seed-pixel seeds, a background region), False when a
        seed has nothing on the plane(s) fitted.
    background : bool
        True when the region of the background subtraction was refused (alone or
        with ``components``).
    """

    def __init__(self, message: str, *, components=(), needs_geometry: bool = False,
                 background: bool = False):
        super().__init__(message)
        self.components = tuple(components)
        self.needs_geometry = bool(needs_geometry)
        self.background = bool(background)


@dataclass(frozen=True)
class SeriesSeeds:
    """The components and label image of a series run, put on the plane(s) it fits.

    Attributes
    ----------
    components : list of ComponentSpec
        One per component given, in the same order; a component whose sources need
        no change is the one given.
    labels : ndarray or None
        The label image: plane N's for a shared basis from plane N, else as given.
    notes : tuple of str
        What to tell the user (seeds left out), one line each.
    maps_left_out : tuple of str
        Components whose map seed could not seed the strategy (their spectrum stays).
    spectra_left_out : tuple of str
        Components whose spectrum seed could not seed the strategy (the spectrum
        fallback estimates it).
    background : source or None
        The background subtraction's source put on the plane(s) fitted (the one given
        when nothing changes); None when none was given.
    """

    components: list
    labels: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    maps_left_out: tuple[str, ...] = ()
    spectra_left_out: tuple[str, ...] = ()
    background: Any = None


def _names(names) -> str:
    return ", ".join(map(repr, names))


def _where(pooled: bool) -> str:
    """What cannot take a seed map, and why."""
    if pooled:
        return ("a shared basis fitted on a pooled pixel sample (reference='pooled'), "
                "which has no image geometry")
    return ("per-slice fits (strategy='per-slice'), which seed every plane alike while a "
            "map of the whole series differs between planes")


#: How the core names the region of a background subtraction in messages.
_BACKGROUND = "The background subtraction (preprocessing.background, {})"


def _pooled_refusal(geo, background) -> str:
    """Why a pooled sample refuses the components ``geo`` and / or the background region
    ``background``, and what to do."""
    why, instead = [], []
    if geo:
        why.append(f"ROI, label and seed-pixel seeds cannot be used (component(s) "
                   f"{_names(geo)})")
        instead.append("seed these components from spectra or models")
    if background is not None:
        region = f"a region (preprocessing.background, {background.describe()})"
        why.append(f"nor can the background be subtracted from {region}" if geo else
                   f"the background cannot be subtracted from {region}")
        instead.append("subtract a background spectrum or model (a Spectrum, Gaussian or "
                       "Flat source)")
    return ("A shared basis fitted on a pooled pixel sample of all planes "
            f"(reference='pooled') has no image geometry, so {', '.join(why)}. Fit the basis "
            f"on the plane the {'seeds are' if geo else 'region is'} on (reference=<plane "
            "index>), or fit every plane on its own (strategy='per-slice'), or "
            f"{' and '.join(instead)}.")


def seeds_for_strategy(components, labels=None, *, spatial_shape, strategy,
                       reference=None, background=None) -> SeriesSeeds:
    """Put every component's seeds on the plane(s) a series strategy fits.

    Parameters
    ----------
    components : sequence of ComponentSpec
        The components of the analysis config, seeded in the series' geometry or in
        one plane's.
    labels : array_like of int, optional
        The label image of ``RoiLabel`` sources: the series' (``spatial_shape``) or
        one plane's (used for every plane).
    spatial_shape : tuple of int
        The spatial shape of the series, the series axis first, e.g. ``(Z, Y, X)``.
    strategy : {"shared-basis", "per-slice"}
        The strategy of :func:`~napari_unmix.core.series.unmix_series`.
    reference : int or "pooled", optional
        Shared basis: the plane the basis is fitted on, or ``"pooled"`` (also the
        default, as in ``unmix_series``).  Not used for per-slice fits, whose seeds
        apply to every plane.
    background : source, optional
        The source of the config's background subtraction
        (``AnalysisConfig.preprocessing.background``), put on the plane(s) like a
        component's spectrum source: a region of the series becomes plane N's, or
        one plane's when it is the same on every plane for per-slice fits.

    Returns
    -------
    SeriesSeeds
        The components, the label image, the background source and the notes.

    Raises
    ------
    SeedPlacementError
        A ``ValueError`` naming the component, the reason and what to do: a seed with
        nothing on the basis plane, one that is not the same on every plane for
        per-slice fits, or a seed that needs the image geometry with a pooled sample;
        the same for the background region.
    ValueError
        An unknown strategy, or a reference plane out of range.
    """
    if strategy not in SERIES_STRATEGIES:
        raise ValueError(f"strategy={strategy!r} is not one of {', '.join(SERIES_STRATEGIES)}.")
    spatial = tuple(int(s) for s in spatial_shape)
    pooled = strategy == "shared-basis" and (reference is None or reference == "pooled")
    plane = None
    if strategy == "shared-basis" and not pooled:
        plane = plane_index(reference, spatial[0], "reference")
    lab = None if labels is None else np.asarray(labels)
    comps = list(components)
    if pooled:
        geo = [c.name for c in comps if c.h_source is not None and c.h_source.needs_geometry()]
        bg_geo = background is not None and background.needs_geometry()
        if geo or bg_geo:
            raise SeedPlacementError(_pooled_refusal(geo, background if bg_geo else None),
                                     components=geo, needs_geometry=True, background=bg_geo)

    def place(source, *, as_map):
        if source is None:
            return None
        if pooled:
            return None if source.needs_geometry(as_map=as_map) else source
        if plane is not None:
            return source.on_plane(plane, spatial_shape=spatial, labels=lab)
        return source.on_every_plane(spatial_shape=spatial, labels=lab)

    out, no_map, no_spectrum = [], [], []
    for c in comps:
        try:
            h = place(c.h_source, as_map=False)
            w = place(c.w_source, as_map=True)
        except ValueError as exc:  # the source's reason and what to do
            raise SeedPlacementError(f"Component {c.name!r}: {exc}",
                                     components=[c.name]) from None
        if w is None and c.w_source is not None:
            no_map.append(c.name)
        if h is None and c.h_source is not None:
            no_spectrum.append(c.name)
        out.append(c if (h is c.h_source and w is c.w_source)
                   else dataclasses.replace(c, h_source=h, w_source=w))
    try:
        bg = place(background, as_map=False)
    except ValueError as exc:
        raise SeedPlacementError(f"{_BACKGROUND.format(background.describe())}: {exc}",
                                 background=True) from None
    if lab is not None and plane is not None and lab.size == math.prod(spatial) \
            and lab.size != math.prod(spatial[1:]):
        lab = lab.reshape(spatial)[plane]
    notes = []
    if no_map:
        notes.append(f"{_names(no_map)}: seeded from the spectrum only; a map seed cannot "
                     f"seed {_where(pooled)}.")
    if no_spectrum:
        notes.append(f"{_names(no_spectrum)}: its spectrum seed comes from a map, which cannot "
                     f"seed {_where(pooled)}; the spectrum fallback estimates it.")
    return SeriesSeeds(out, lab, tuple(notes), tuple(no_map), tuple(no_spectrum), bg)
