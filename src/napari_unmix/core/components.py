"""Component specifications for seeded NNMF and fixed-H NNLS.

A :class:`ComponentSpec` says, for one component of an analysis, where its initial
spectrum (``H0`` row) and its initial map (``W0`` column) come from: each is a
*source* (:mod:`napari_unmix.core.sources`), or ``None`` for the seeding engine's
defaults (the residual fallback for the spectrum, the W-seed mode for the map).

Every spec converts to plain JSON types with ``to_dict`` and back with
``from_dict``; arrays are stored bit-exactly (:mod:`napari_unmix.core.encoding`).
The source classes are re-exported here, where earlier versions defined them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .encoding import decode_array, decode_unbounded, encode_array, encode_unbounded
from .sources import (
    H_SOURCES,
    SOURCES,
    W_SOURCES,
    BackgroundMap,
    FixedW,
    Flat,
    FromComponent,
    Gaussian,
    ImportedMap,
    PreviousResult,
    RoiLabel,
    RoiMask,
    SeedPixels,
    Spectrum,
    map_sources,
    source_from_dict,
    spectrum_sources,
)

__all__ = [
    "H_SOURCES",
    "SOURCES",
    "W_SOURCES",
    "BackgroundMap",
    "ComponentSpec",
    "FixedW",
    "Flat",
    "FromComponent",
    "Gaussian",
    "ImportedMap",
    "PreviousResult",
    "RoiLabel",
    "RoiMask",
    "SeedPixels",
    "Spectrum",
    "components_from_spectra",
    "decode_array",
    "encode_array",
    "source_from_dict",
]


@dataclass(eq=False)
class ComponentSpec:
    """One component of a seeded analysis.

    Parameters
    ----------
    name : str
        Component name (layer names, CSV headers, reports).
    color : str, optional
        Display colour (any matplotlib / napari colour string).
    h_source : source, optional
        Where the spectrum seed comes from: any registered source that gives a
        spectrum (:class:`RoiMask`, :class:`RoiLabel`, :class:`Spectrum`,
        :class:`Gaussian`, :class:`Flat`, :class:`SeedPixels`,
        :class:`PreviousResult` ...).  ``None``: the spectrum is estimated by the
        residual fallback (see :mod:`~napari_unmix.core.seeds`).
    w_source : source, optional
        Where the map seed comes from: :class:`FixedW`, :class:`ImportedMap`,
        :class:`BackgroundMap` or :class:`PreviousResult`.  ``None``: built from the
        spectrum by the analysis' W-seed mode (or taken from spectral information,
        see ``overwrite``).
    background : bool, default False
        A background component: its seeds are estimated from the raw data.
    use_subtracted : bool, default True
        For non-background components: estimate seeds from the processed
        (background-subtracted, smoothed) data.  False: from the raw data.
    locked : bool, default False
        Keep this spectrum fixed during seeded NNMF (spectral locking).  Needs a
        spectrum seed.
    anchor : float, optional
        Seeded NNMF: the trust in this component's seed spectrum (0: free, ``inf``:
        as locked); ``None`` takes the analysis' ``anchor`` (see
        :class:`~napari_unmix.core.config.AnalysisConfig`).
    """

    name: str
    color: str | None = None
    h_source: Any = None
    w_source: Any = None
    background: bool = False
    use_subtracted: bool = True
    locked: bool = False
    anchor: float | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"A component needs a non-empty name, got {self.name!r}.")
        h_ok, w_ok = spectrum_sources(), map_sources()
        if self.h_source is not None and not isinstance(self.h_source, h_ok):
            raise TypeError(
                f"Component {self.name!r}: h_source {type(self.h_source).__name__} cannot "
                f"give a spectrum; use one of {', '.join(c.__name__ for c in h_ok)}."
            )
        if self.w_source is not None and not isinstance(self.w_source, w_ok):
            raise TypeError(
                f"Component {self.name!r}: w_source {type(self.w_source).__name__} cannot "
                f"give a map; use one of {', '.join(c.__name__ for c in w_ok)}."
            )
        if self.h_source is not None:
            self.h_source.check_role("h_source", self.name)
        if self.w_source is not None:
            self.w_source.check_role("w_source", self.name)
        for flag in ("background", "use_subtracted", "locked"):
            value = getattr(self, flag)
            if not isinstance(value, (bool, np.bool_)):  # bool("false") is True
                raise ValueError(f"Component {self.name!r}: {flag} must be true or false, got "
                                 f"{value!r}.")
            setattr(self, flag, bool(value))
        if self.color is not None and not isinstance(self.color, str):
            raise ValueError(f"Component {self.name!r}: color must be a colour name or hex "
                             f"text (\"magenta\", \"#ff00ff\") or null, got {self.color!r}.")
        if self.anchor is not None:
            import math
            import numbers

            if isinstance(self.anchor, bool) or not isinstance(self.anchor, numbers.Real) \
                    or math.isnan(self.anchor) or self.anchor < 0:
                raise ValueError(f"Component {self.name!r}: anchor must be a number >= 0 "
                                 f"(0: free, inf: locked) or None, got {self.anchor!r}.")
            self.anchor = float(self.anchor)
        if self.locked and self.h_source is None:
            raise ValueError(f"Component {self.name!r} is locked but has no spectrum source: "
                             "a locked spectrum must be given (ROI, file, model ...).")

    def to_dict(self, *, arrays: dict | None = None, prefix: str = "") -> dict:
        """Plain-JSON description (arrays encoded, or stored in ``arrays``)."""
        return {
            "name": self.name,
            "color": self.color,
            "h_source": None if self.h_source is None else self.h_source.to_dict(
                arrays=arrays, prefix=f"{prefix}h_source/"),
            "w_source": None if self.w_source is None else self.w_source.to_dict(
                arrays=arrays, prefix=f"{prefix}w_source/"),
            "background": self.background,
            "use_subtracted": self.use_subtracted,
            "locked": self.locked,
            "anchor": encode_unbounded(self.anchor),
        }

    @classmethod
    def from_dict(cls, d: dict, *, arrays: dict | None = None) -> ComponentSpec:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"Unknown component field(s) {sorted(unknown)}; known: "
                             f"{sorted(known)}.")
        kw = dict(d)
        if "anchor" in kw:
            kw["anchor"] = decode_unbounded(kw["anchor"])
        for key in ("h_source", "w_source"):
            if kw.get(key) is not None:
                kw[key] = source_from_dict(kw[key], arrays=arrays)
        return cls(**kw)


def components_from_spectra(path, *, columns=None, locked=False, colors=None,
                            **read_kwargs) -> list[ComponentSpec]:
    """One :class:`ComponentSpec` per spectrum of a spectra file.

    Convenient for ``--spectra FILE``-style inputs: each column becomes a component
    named after its header, seeded with that spectrum (embedded, with the file's
    axis, so it is resampled onto the stack's axis when one is given).

    Parameters
    ----------
    path : str or Path
        CSV / TXT file (see :func:`~napari_unmix.core.spectra.read_spectra`).
    columns : sequence of int or str, optional
        Which spectrum columns to use (default: all).
    locked : bool, default False
        Lock every spectrum (seeded NNMF keeps them fixed).
    colors : sequence of str, optional
        One display colour per component.
    """
    from .spectra import read_spectra

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"components_from_spectra reads a spectra file: give its path, got "
                        f"{type(path).__name__}. For spectra in an array, make the "
                        "components with ComponentSpec(name, h_source=Spectrum(values, "
                        "axis=...)).")
    table = read_spectra(path, **read_kwargs)
    idx = [table.column_index(c) for c in (range(table.n_spectra) if columns is None
                                            else columns)]
    if colors is not None and len(colors) != len(idx):
        raise ValueError(f"{len(colors)} colours for {len(idx)} spectra.")
    chosen = [table.names[i] for i in idx]
    repeated = sorted({n for n in chosen if chosen.count(n) > 1})
    if repeated:
        # file columns, counting the axis as column 1
        cols = {n: sorted({i + 2 for i in idx if table.names[i] == n}) for n in repeated}
        said = "; ".join(f"{n!r} in column(s) {', '.join(map(str, c))}"
                         for n, c in cols.items())
        raise ValueError(f"{path}: two of the chosen spectra have one name ({said}); each "
                         "spectrum becomes a component, so give each its own name in the "
                         "header (or choose each column once).")
    return [ComponentSpec(table.names[i], color=None if colors is None else colors[j],
                          h_source=Spectrum(values=table.values[i].copy(),
                                            axis=table.axis.copy(),
                                            label=f"{path}:{table.names[i]}"),
                          locked=locked)
            for j, i in enumerate(idx)]
