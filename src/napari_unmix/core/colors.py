"""Component colours and the false-colour composite of abundance maps.

The default palette starts with the seven colours of Okabe & Ito ("Color
Universal Design", 2002), which stay distinguishable for the common forms of
colour-vision deficiency; black is left out because it is invisible in an
additive composite on black.  It continues with the bright colours of Paul Tol's
qualitative scheme that are not near-duplicates.  Beyond those ten, each further
colour is the one of a 6 x 6 x 6 RGB grid (without its dark colours, which vanish
in an additive blend, nor its greys, which look like a blend) farthest from every
colour before it, so that no two of the first 136 components share a colour (then
the sequence repeats).  These are not chosen for colour-vision
deficiency, and past about twenty components any composite is hard to read.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_COLORS", "NEGATIVE_COLOR", "POSITIVE_COLOR", "composite",
           "default_colors", "hex_to_rgb", "signed_rgb"]

#: The colours of positive and negative values of a signed map (:func:`signed_rgb`).
POSITIVE_COLOR, NEGATIVE_COLOR = "#E8413C", "#3C8CE8"

#: Default component colours, hex strings.
DEFAULT_COLORS: tuple[str, ...] = (
    # ordered so that the first ones stay apart when maps are blended additively
    # (sky blue + bluish green, adjacent before, summed to an indistinct cyan)
    "#E69F00",  # orange
    "#CC79A7",  # reddish purple
    "#0072B2",  # blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#BBBBBB",  # grey (Tol)
    "#EE6677",  # rose (Tol)
    "#228833",  # green (Tol)
)


def default_colors(n: int) -> list[str]:
    """The first ``n`` default colours: :data:`DEFAULT_COLORS`, then colours each as far
    as possible from all before it (see the module doc); distinct for ``n <= 136``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    palette = _palette()
    return [palette[i % len(palette)] for i in range(n)]


@functools.cache
def _palette() -> tuple[str, ...]:
    """:data:`DEFAULT_COLORS`, then the rest of a grid of bright colours in the order of
    greedy farthest-point selection (Euclidean distance in RGB; ties: the first)."""
    levels = np.linspace(0.0, 1.0, 6)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    # dark colours vanish in an additive blend, and greys and white look like a blend
    grid = grid[(grid.max(axis=1) >= 0.8) & (np.ptp(grid, axis=1) >= 0.4)]
    chosen = np.array([hex_to_rgb(c) for c in DEFAULT_COLORS])
    nearest = np.min(np.linalg.norm(grid[:, None] - chosen[None], axis=2), axis=1)
    out = list(DEFAULT_COLORS)
    for _ in range(len(grid)):
        best = int(np.argmax(nearest))
        if nearest[best] <= 1e-9:  # the grid is used up (or holds a curated colour)
            break
        out.append("#{:02X}{:02X}{:02X}".format(*(int(round(v * 255)) for v in grid[best])))
        nearest = np.minimum(nearest, np.linalg.norm(grid - grid[best], axis=1))
    return tuple(out)


def hex_to_rgb(color) -> tuple[float, float, float]:
    """``"#RRGGBB"`` (or ``"RRGGBB"``, ``"#RGB"``, or an RGB triple) as floats in [0, 1]."""
    if isinstance(color, str):
        h = color.strip().lstrip("#")
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        if len(h) != 6:
            raise ValueError(f"Colour {color!r} is not a hex colour like '#E69F00'.")
        try:
            return tuple(int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4))
        except ValueError:
            raise ValueError(f"Colour {color!r} is not a hex colour like '#E69F00'.") from None
    rgb = np.asarray(color, dtype=np.float64).ravel()
    if rgb.shape != (3,) or not np.all((rgb >= 0) & (rgb <= 1)):
        raise ValueError(f"Colour {color!r} is neither a hex string nor an RGB triple in [0, 1].")
    return tuple(float(v) for v in rgb)


def _normalise(m, percentile):
    finite = np.isfinite(m)
    if not finite.any():
        return np.zeros(m.shape, dtype=np.float32)
    lo, hi = np.percentile(m[finite], percentile)
    if not hi > lo:
        return np.zeros(m.shape, dtype=np.float32)
    out = (np.where(finite, m, lo) - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def composite(maps, colors: Sequence | None = None, *,
              percentile: tuple[float, float] = (1, 99.5)) -> np.ndarray:
    """Blend component maps into one RGB image.

    Each map is contrast-stretched on its own: values at the lower percentile
    become 0 and values at the upper percentile 1 (clipped outside), NaN (masked
    pixels) becomes 0.  A map with no contrast (upper == lower percentile, e.g. a
    constant map) contributes nothing.  The stretched maps are then multiplied by
    their colours and added, and the sum is clipped to [0, 1], so where components
    overlap their colours mix additively (orange + sky blue -> near white).

    The stretch is for display only: the composite is not quantitative, since
    every map is scaled independently.

    Parameters
    ----------
    maps : array_like, shape (k, *spatial)
        One map per component (e.g. ``UnmixResult.maps(spatial_shape)``).
    colors : sequence, optional
        One colour per map (hex strings or RGB triples in [0, 1]); ``None`` for a
        map leaves it out of the composite (e.g. a flat background component that
        would tint everything).  Defaults to :func:`default_colors`.
    percentile : (float, float), default (1, 99.5)
        Lower and upper percentiles of each map's finite values used as its
        black and white points.

    Returns
    -------
    rgb : ndarray of float32, shape (*spatial, 3)
        Values in [0, 1].
    """
    maps = np.asarray(maps)
    if maps.ndim < 2:
        raise ValueError(f"maps must have shape (k, *spatial), got {maps.shape}.")
    if maps.dtype.kind not in "biuf":
        raise TypeError(f"maps must be numeric, got dtype {maps.dtype}.")
    k = maps.shape[0]
    colors = default_colors(k) if colors is None else list(colors)
    if len(colors) != k:
        raise ValueError(f"{len(colors)} colour(s) given for {k} map(s); give one per map.")
    lo, hi = (float(p) for p in percentile)
    if not 0 <= lo < hi <= 100:
        raise ValueError(f"percentile must be (low, high) with 0 <= low < high <= 100, "
                         f"got {percentile!r}.")
    rgb = np.zeros((*maps.shape[1:], 3), dtype=np.float32)
    for m, c in zip(maps, colors, strict=True):
        if c is None:
            continue
        rgb += _normalise(m.astype(np.float64, copy=False), (lo, hi))[..., None] * \
            np.asarray(hex_to_rgb(c), dtype=np.float32)
    np.clip(rgb, 0.0, 1.0, out=rgb)
    return rgb


def signed_rgb(scores, *, percentile: float = 99.5) -> np.ndarray:
    """A signed map (PCA scores) as an RGB image: positive values in
    :data:`POSITIVE_COLOR`, negative ones in :data:`NEGATIVE_COLOR`, zero black.

    Signed maps are not amounts, so they cannot be added into a :func:`composite`;
    one map is shown at a time, on one symmetric stretch: ``|value|`` at the
    ``percentile`` of the finite ``|values|`` is full colour (clipped beyond), NaN
    is black.

    Parameters
    ----------
    scores : array_like, shape (*spatial)
    percentile : float, default 99.5

    Returns
    -------
    rgb : ndarray of float32, shape (*spatial, 3)
    """
    s = np.asarray(scores, dtype=np.float64)
    finite = np.abs(s[np.isfinite(s)])
    top = float(np.percentile(finite, percentile)) if finite.size else 0.0
    t = np.clip(np.nan_to_num(s / top) if top > 0 else np.zeros_like(s), -1.0, 1.0)
    pos = np.asarray(hex_to_rgb(POSITIVE_COLOR), dtype=np.float32)
    neg = np.asarray(hex_to_rgb(NEGATIVE_COLOR), dtype=np.float32)
    rgb = np.where(t[..., None] > 0, t[..., None] * pos, -t[..., None] * neg)
    return rgb.astype(np.float32)
