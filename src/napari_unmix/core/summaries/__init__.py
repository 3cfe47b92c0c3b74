"""Typed fit summaries: what a user needs to judge a fit, as attributes.

Every mode returns its summary as a dataclass (:class:`NMFSummary`,
:class:`NNLSSummary`, :class:`PCASummary`; z / t series :class:`SeriesSummary` with a
:class:`PlaneSummary` per plane), so code that reads a summary names its fields and a
misspelt name fails loudly instead of reading ``None`` from a dict.  Each summary
converts to plain JSON with :meth:`Summary.to_dict` (entries that do not apply,
``None``, are left out) and back with :meth:`Summary.from_dict`; entries this class
does not know are kept in ``extra``, so nothing is lost on a round trip.

For scripts written against the earlier dict summaries, ``summary["name"]`` and
``"name" in summary`` still work (an unknown name raises ``KeyError``); there is no
``.get``, on purpose.

* :mod:`.base` -- :class:`Summary`, :func:`jsonable`;
* :mod:`.fit` -- one fit and its pieces (seed reports, negative policy, offsets);
* :mod:`.series` -- series runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import Summary, jsonable, plain
from .fit import (
    SUMMARY_KINDS,
    FitSummary,
    NegativeInfo,
    NMFSummary,
    NNLSSummary,
    OffsetsMoved,
    PCASummary,
    SeedDrift,
    SeedReport,
    SeedsSummary,
)
from .series import BasisSummary, MatchSummary, PlaneSummary, SeriesSummary

__all__ = [
    "SUMMARY_KINDS",
    "BasisSummary",
    "FitSummary",
    "MatchSummary",
    "NMFSummary",
    "NNLSSummary",
    "NegativeInfo",
    "OffsetsMoved",
    "PCASummary",
    "PlaneSummary",
    "SeedDrift",
    "SeedReport",
    "SeedsSummary",
    "SeriesSummary",
    "Summary",
    "jsonable",
    "plain",
    "summary_from_dict",
]

_BY_KIND = {cls.kind: cls for cls in (NMFSummary, NNLSSummary, PCASummary, SeriesSummary)}


def summary_from_dict(d, *, kind: str | None = None, mode: str | None = None) -> Summary:
    """Rebuild a summary from its JSON form.

    ``kind`` (``"nmf"``, ``"nnls"``, ``"pca"``, ``"series"``) names the class; else
    it follows from ``mode``; a mode without a summary class of its own gets a
    :class:`NMFSummary`-free generic :class:`FitSummary` with everything in ``extra``.
    """
    if isinstance(d, Summary) and kind is None and mode is None:
        return d
    if kind is not None and kind in _BY_KIND:
        cls = _BY_KIND[kind]
    elif mode is not None and mode in SUMMARY_KINDS:
        cls = SUMMARY_KINDS[mode]
    else:
        cls = _GenericSummary
    return cls.from_dict(d)


@dataclass(eq=False)
class _GenericSummary(FitSummary):
    """The summary of a mode registered without a summary class of its own."""

    kind: ClassVar[str] = "generic"
    extra: dict = field(default_factory=dict)
