"""Where a result's maps lie in the stack they were computed from.

A result's maps have the analysed stack's spatial axes (``spatial_shape``); the
stack had one more, its spectral axis, somewhere among them, and a place in space
(its pixel sizes and origin).  A viewer that shows the maps over the stack needs
both: napari lines a layer's axes up with the other layers' *last* axes, so maps
``(Z, Y, X)`` of a ``(Z, C, Y, X)`` stack lie with their Z axis on its channel axis
unless they keep a length-1 axis where the stack has its spectral axis (as the
unmixing dock's maps do, :func:`napari_unmix._napari.layers.placement`).

:class:`StackLayout` records that: the position of the spectral axis in the stack
and, per spatial axis, the pixel size (in any unit; :attr:`ResultBundle.pixel_size
<napari_unmix.io.ResultBundle.pixel_size>` keeps sizes in length units), the origin
(napari's ``translate``) and the axis name.  A result folder keeps it in
``result.json`` (``"stack_layout"``), a bundle in its ``layout/stack`` member; the
series params of a z / t series (:func:`~napari_unmix.core.series.unmix_series`)
give the spectral axis of results written without one (:func:`series_layout`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

__all__ = ["StackLayout", "series_layout"]


@dataclass(frozen=True)
class StackLayout:
    """Where the maps of a result lie in the analysed stack.

    Attributes
    ----------
    spectral_axis : int or None
        Position of the spectral axis among the stack's axes (``0 ..
        len(spatial_shape)``): 1 for a ``(Z, C, Y, X)`` stack; None when unknown (the
        maps are then shown on their spatial axes alone).
    scale : tuple of float or None
        Size of a pixel along every spatial axis (napari's ``scale``, in whatever
        unit the stack had).
    origin : tuple of float or None
        Position of the first pixel along every spatial axis (napari's
        ``translate``).
    axis_names : tuple of str or None
        Name of every spatial axis (``"Z"``, ``"Y"``, ``"X"`` ...).
    """

    spectral_axis: int | None
    scale: tuple | None = None
    origin: tuple | None = None
    axis_names: tuple | None = None

    def checked(self, spatial_shape) -> StackLayout:
        """This layout, validated against maps of ``spatial_shape``.

        Raises
        ------
        ValueError
            When the spectral axis is out of range or an entry does not give one
            finite value per spatial axis (positive for ``scale``).
        """
        n = len(tuple(spatial_shape))
        s = self.spectral_axis
        if s is not None and (isinstance(s, bool) or not isinstance(s, int)
                              or not 0 <= s <= n):
            raise ValueError(f"stack layout: spectral_axis={s!r} is not an axis of a stack "
                             f"with {n} spatial axes (0 .. {n}).")
        scale = _floats(self.scale, n, "scale", positive=True)
        origin = _floats(self.origin, n, "origin", positive=False)
        names = None if self.axis_names is None else tuple(str(a) for a in self.axis_names)
        if names is not None and len(names) != n:
            raise ValueError(f"stack layout: {len(names)} axis names for {n} spatial axes.")
        return StackLayout(spectral_axis=None if s is None else int(s), scale=scale,
                           origin=origin, axis_names=names)

    def to_json(self) -> dict:
        """The layout as ``result.json`` keeps it."""
        return {"spectral_axis": self.spectral_axis,
                "scale": None if self.scale is None else list(self.scale),
                "origin": None if self.origin is None else list(self.origin),
                "axis_names": None if self.axis_names is None else list(self.axis_names)}

    @classmethod
    def from_json(cls, doc, spatial_shape) -> StackLayout | None:
        """The layout ``doc`` (from :meth:`to_json`, or its JSON text) holds for maps of
        ``spatial_shape``; None when there is none or it does not fit them."""
        if isinstance(doc, str):
            try:
                doc = json.loads(doc)
            except json.JSONDecodeError:
                return None
        if not isinstance(doc, dict):
            return None
        try:
            return cls(spectral_axis=doc.get("spectral_axis"), scale=doc.get("scale"),
                       origin=doc.get("origin"),
                       axis_names=doc.get("axis_names")).checked(spatial_shape)
        except (TypeError, ValueError):
            return None


def _floats(values, n, what, *, positive):
    if values is None:
        return None
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"stack layout: {what} {values!r} is not a list of numbers.") from None
    if len(out) != n or not all(math.isfinite(v) and (v > 0 or not positive) for v in out):
        raise ValueError(f"stack layout: {what} {values!r} must give one finite"
                         f"{' positive' if positive else ''} value per spatial axis ({n}).")
    return out


def series_layout(result, spatial_shape) -> StackLayout | None:
    """The layout the series params of ``result`` give (a z / t series saved whole,
    :meth:`SeriesResult.as_result <napari_unmix.core.series.SeriesResult.as_result>`):
    the stack's spectral axis, when its series axis was the stack's first spatial axis
    (the maps' axes are then the stack's, in order); else None."""
    params = result.params if isinstance(result.params, dict) else {}
    series = params.get("series")
    if not isinstance(series, dict):
        return None
    s, z = series.get("spectral_axis"), series.get("series_axis")
    if not (isinstance(s, int) and isinstance(z, int)) or z != (1 if s == 0 else 0):
        return None  # the maps put the series axis first: not the stack's order
    try:
        return StackLayout(spectral_axis=s).checked(spatial_shape)
    except ValueError:
        return None
