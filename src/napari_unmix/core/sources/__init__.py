"""Seed sources: where a component's spectrum and map seeds come from.

=======================  ==========  =====================================================
source                   gives        meaning
=======================  ==========  =====================================================
:class:`RoiMask`         spectrum     mean spectrum of the pixels of a boolean mask
:class:`RoiLabel`        spectrum     mean spectrum of one label of the analysis' label image
:class:`Spectrum`        spectrum     a given spectrum, resampled onto the stack's axis
:class:`Gaussian`        spectrum     a sum of Gaussian resonances (spectral information)
:class:`Flat`            spectrum     a constant spectrum: a non-resonant background, an offset
:class:`SeedPixels`      spectrum     mean spectrum of chosen pixels, or of the ``n_best``
                                      pixels that match a model (spectral information)
:class:`PreviousResult`  both         a spectrum and/or a map of an earlier result
:class:`FixedW`          map          a map used exactly as given (no normalisation)
:class:`ImportedMap`     map          a map normalised to unit maximum
:class:`BackgroundMap`   map          a given map, or the mean image of the raw data
:class:`FromComponent`   spectrum     preprocessing only: "the spectrum of component NAME"
=======================  ==========  =====================================================

Every source is a dataclass that owns its behaviour (see :class:`Source`) and is
registered in :data:`SOURCES` under its ``kind``.  A new source is one class with
:func:`register_source`; configs read it back, and the dock's component table offers
it when it has a ``title``.
"""

from .base import SOURCES, SeedContext, Source, register_source, source_from_dict
from .maps import BackgroundMap, FixedW, ImportedMap
from .regions import RoiLabel, RoiMask, SeedPixels
from .spectra import Flat, FromComponent, Gaussian, PreviousResult, Spectrum

__all__ = [
    "H_SOURCES",
    "SOURCES",
    "W_SOURCES",
    "BackgroundMap",
    "FixedW",
    "Flat",
    "FromComponent",
    "Gaussian",
    "ImportedMap",
    "PreviousResult",
    "RoiLabel",
    "RoiMask",
    "SeedContext",
    "SeedPixels",
    "Source",
    "Spectrum",
    "map_sources",
    "register_source",
    "source_from_dict",
    "spectrum_sources",
]


def spectrum_sources() -> tuple[type, ...]:
    """Registered sources that can give a spectrum seed (``h_source``)."""
    return tuple(c for c in SOURCES.values() if c.gives_spectrum)


def map_sources() -> tuple[type, ...]:
    """Registered sources that can give a map seed (``w_source``)."""
    return tuple(c for c in SOURCES.values() if c.gives_map)


#: Sources that can give a spectrum seed / a map seed (the built-in ones; registered
#: sources are found by :func:`spectrum_sources` / :func:`map_sources`).
H_SOURCES = spectrum_sources()
W_SOURCES = map_sources()
