"""A saved setup's z / t series choice: :class:`SeriesChoice`.

A stack with a series axis, e.g. ``(Z, C, Y, X)``, is fitted as one volume (the joint
fit) or plane by plane by :func:`~napari_unmix.core.series.unmix_series`, with one of
:data:`SERIES_STRATEGIES`.  A setup saved with a series choice other than the joint fit
records it in :attr:`AnalysisConfig.series <napari_unmix.core.config.AnalysisConfig>`
with the keys and values of a series result's ``params["series"]`` (``strategy``,
``series_axis``, ``reference``, ``match``), so that one reader takes both
(``napari-unmix run --config``, the dock's "Load setup"); the analysis itself never
reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._validation import is_whole_number

__all__ = ["MATCH_POLICIES", "SERIES_STRATEGIES", "SeriesChoice"]

#: Strategies of :func:`~napari_unmix.core.series.unmix_series`.
SERIES_STRATEGIES = ("shared-basis", "per-slice")
#: How per-slice components are put in the same order across planes.
MATCH_POLICIES = ("auto", "previous", "reference", "none")
_KEYS = ("strategy", "series_axis", "reference", "match")


@dataclass(frozen=True)
class SeriesChoice:
    """How a saved setup unmixes a z / t series plane by plane.

    Parameters
    ----------
    strategy : {"shared-basis", "per-slice"}
        A shared basis (spectra fitted once, every plane's maps by fixed-H NNLS), or
        every plane fitted on its own.
    series_axis : int
        The series (z / t) axis of the stack (>= 0).
    reference : int or "pooled"
        The plane the basis is fitted on, or ``"pooled"`` (a pixel sample of all
        planes; shared basis only); per-slice: the plane whose component order the
        others follow.
    match : {"auto", "previous", "reference", "none"}, default "auto"
        Per-slice: how the components are put in one order.
    """

    strategy: str
    series_axis: int
    reference: int | str
    match: str = "auto"

    def __post_init__(self):
        if not isinstance(self.strategy, str) or self.strategy not in SERIES_STRATEGIES:
            raise ValueError(f"series.strategy must be one of {', '.join(SERIES_STRATEGIES)}, "
                             f"got {self.strategy!r}.")
        if not is_whole_number(self.series_axis) or self.series_axis < 0:
            raise ValueError(f"series.series_axis must be an axis of the stack (a whole "
                             f"number >= 0), got {self.series_axis!r}.")
        object.__setattr__(self, "series_axis", int(self.series_axis))
        ref = self.reference
        if ref != "pooled" and (not is_whole_number(ref) or ref < 0):
            raise ValueError(f"series.reference must be a plane index (a whole number >= 0) "
                             f"or \"pooled\", got {ref!r}.")
        if ref == "pooled" and self.strategy == "per-slice":
            raise ValueError("series.reference \"pooled\" is a pixel sample of all planes for "
                             "a shared basis; a per-slice series needs a plane index.")
        if ref != "pooled":
            object.__setattr__(self, "reference", int(ref))
        if not isinstance(self.match, str) or self.match not in MATCH_POLICIES:
            raise ValueError(f"series.match must be one of {', '.join(MATCH_POLICIES)}, got "
                             f"{self.match!r}.")

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "series_axis": self.series_axis,
                "reference": self.reference, "match": self.match}

    @classmethod
    def from_dict(cls, d) -> SeriesChoice:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict) or "strategy" not in d or "series_axis" not in d \
                or "reference" not in d or not set(d) <= set(_KEYS):
            raise ValueError(f"series must be an object with the fields strategy, "
                             f"series_axis, reference and (optionally) match, got {d!r}.")
        return cls(**d)
