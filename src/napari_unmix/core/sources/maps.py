"""Sources that give a component's map (``W0`` column): given maps and the mean image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import Source, register_source

__all__ = ["BackgroundMap", "FixedW", "ImportedMap", "generated_map", "unit_max"]


def unit_max(v) -> np.ndarray:
    """``v`` (float64) divided by its maximum (unchanged when the maximum is not > 0)."""
    v = np.asarray(v, dtype=np.float64)
    mx = float(v.max()) if v.size else 0.0
    return v / mx if mx > 0 else v


def generated_map(v, floor: float) -> np.ndarray:
    """A generated seed map: unit maximum, raised to at least ``floor`` (strictly
    positive, whatever the scale of the data)."""
    return np.maximum(unit_max(np.maximum(v, 0.0)), floor)


class _MapSource(Source):
    """A map given as an array in the field ``map``."""

    gives_map: ClassVar[bool] = True

    def given_map(self, ctx, *, name="component"):
        return ctx.flat_map(self.map, f"Component {name!r}: {self.describe()} map")

    def seed_map(self, ctx, *, name="component", floor=1e-3):
        return unit_max(self.given_map(ctx, name=name))

    def needs_geometry(self, *, as_map=False):
        return self.map is not None

    def _plane_map(self, plane, spatial_shape):
        m = np.asarray(self.map)
        if m.size != int(np.prod(spatial_shape)):
            return None  # one plane's map already
        return m.reshape(spatial_shape)[plane]

    def on_plane(self, plane, *, spatial_shape, labels=None):
        if self.map is None:
            return self
        m = self._plane_map(plane, spatial_shape)
        return self if m is None else type(self)(m)

    def on_every_plane(self, *, spatial_shape, labels=None):
        if self.map is None or np.asarray(self.map).size != int(np.prod(spatial_shape)):
            return self
        return None  # a map of the whole series differs between planes


@register_source
@dataclass(eq=False)
class FixedW(_MapSource):
    """A spatial seed used exactly as given (no normalisation, zeros kept).

    Parameters
    ----------
    map : array_like, spatial shape or (n_pixels,)
        Non-negative.
    """

    map: np.ndarray
    kind: ClassVar[str] = "fixed-w"
    _array_fields: ClassVar[tuple[str, ...]] = ("map",)

    def __post_init__(self):
        self.map = np.asarray(self.map)

    def seed_map(self, ctx, *, name="component", floor=1e-3):
        return self.given_map(ctx, name=name)


@register_source
@dataclass(eq=False)
class ImportedMap(_MapSource):
    """An imported map (e.g. an earlier result's map), normalised to unit maximum."""

    map: np.ndarray
    label: str | None = None
    kind: ClassVar[str] = "imported-map"
    _array_fields: ClassVar[tuple[str, ...]] = ("map",)

    def __post_init__(self):
        self.map = np.asarray(self.map)

    def on_plane(self, plane, *, spatial_shape, labels=None):
        m = self._plane_map(plane, spatial_shape)
        return self if m is None else ImportedMap(m, label=self.label)


@register_source
@dataclass(eq=False)
class BackgroundMap(_MapSource):
    """Spatial seed of a background component.

    Parameters
    ----------
    map : array_like, optional
        A given background map.  When omitted, the mean image of the raw data is
        used.  Either way it is normalised to unit maximum.
    """

    map: np.ndarray | None = None
    kind: ClassVar[str] = "background-map"
    _array_fields: ClassVar[tuple[str, ...]] = ("map",)

    def __post_init__(self):
        if self.map is not None:
            self.map = np.asarray(self.map)

    def given_map(self, ctx, *, name="component"):
        if self.map is not None:
            return super().given_map(ctx, name=name)
        avg = np.maximum(np.asarray(ctx.raw, dtype=np.float64).mean(axis=1), 0.0)
        if not avg.any():
            raise ValueError(f"Component {name!r}: {self.describe()} map: the raw data's mean "
                             "image is zero everywhere.")
        return avg

    def seed_map(self, ctx, *, name="component", floor=1e-3):
        if self.map is None:  # generated from the data: a generated seed
            return generated_map(self.given_map(ctx, name=name), floor)
        return unit_max(self.given_map(ctx, name=name))
