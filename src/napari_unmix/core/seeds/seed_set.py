"""The seeds of an analysis, as the seeding engine returns them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..summaries import SeedReport, SeedsSummary

__all__ = ["SeedReport", "SeedSet"]


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

    def summary(self) -> SeedsSummary:
        """The typed description stored as ``result.summary.seeds``."""
        return SeedsSummary(w_seed_mode=self.w_seed_mode, overwrite=bool(self.overwrite),
                            components=list(self.reports),
                            fallbacks=self.fallback_components, notes=list(self.notes))
