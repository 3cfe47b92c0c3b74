"""The seeding engine of seeded NNMF and fixed-H NNLS.

* :func:`build_seeds` (:mod:`.build`): component specs -> ``W0``, ``H0`` and a report
  per component, in three passes (spectra from sources, fallbacks, maps);
* :data:`W_SEED_MODES` (:mod:`.w_modes`): how maps are built from spectra;
* :data:`H_FALLBACKS` (:mod:`.fallbacks`): the spectrum of a component without one;
* :class:`SeedSet` (:mod:`.seed_set`): what the engine returns.
"""

from ..summaries import SeedReport
from .build import build_seeds
from .fallbacks import H_FALLBACKS, FallbackSpectrum, random_spectrum, residual_spectrum
from .seed_set import SeedSet
from .w_modes import W_SEED_MODES, WSeedMode, register_w_seed_mode, w_seed_maps

__all__ = ["H_FALLBACKS", "W_SEED_MODES", "FallbackSpectrum", "SeedReport", "SeedSet",
           "WSeedMode", "build_seeds", "random_spectrum", "register_w_seed_mode",
           "residual_spectrum", "source_spectrum", "w_seed_maps"]


def source_spectrum(source, X, *, name="component", spatial_shape=None, labels=None,
                    spectral_values=None, warnings=None):
    """The spectrum a source gives on data ``X`` (float64, on ``X``'s channels).

    A convenience over :meth:`~napari_unmix.core.sources.Source.spectrum` for one
    source and one matrix; returns ``(spectrum, info_map)``.
    """
    import numpy as np

    from ..sources import SeedContext

    X = np.asarray(X)
    ctx = SeedContext(X, spatial_shape=spatial_shape, labels=labels,
                      spectral_values=spectral_values)
    return source.spectrum(ctx, X, name=name, warnings=[] if warnings is None else warnings)
