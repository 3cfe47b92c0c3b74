"""Component palette and the false-colour composite."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unmix.core.colors import DEFAULT_COLORS, composite, default_colors, hex_to_rgb


def test_palette_is_distinct_hex():
    assert len(set(DEFAULT_COLORS)) == len(DEFAULT_COLORS)
    assert all(len(hex_to_rgb(c)) == 3 for c in DEFAULT_COLORS)
    assert "#000000" not in DEFAULT_COLORS  # invisible in an additive blend
    assert default_colors(len(DEFAULT_COLORS)) == list(DEFAULT_COLORS)


@pytest.mark.parametrize("n", [11, 12, 20, 40, 136])
def test_more_components_than_the_palette_get_distinct_bright_colours(n):
    # the palette used to repeat after ten: components 11 and 1 had one colour, and
    # their maps could not be told apart in the composite or the legend
    colors = default_colors(n)
    assert len(set(colors)) == n
    rgb = np.array([hex_to_rgb(c) for c in colors])
    gaps = np.linalg.norm(rgb[:, None] - rgb[None], axis=2)[np.triu_indices(n, 1)]
    if n <= 40:  # apart by more than half the closest curated pair (0.24)
        assert gaps.min() > 0.15
    assert (rgb[10:].max(axis=1) >= 0.8).all()  # none dark: visible in an additive blend
    assert (np.ptp(rgb[10:], axis=1) >= 0.4).all()  # no grey or white: not like a blend
    assert default_colors(n) == default_colors(n + 5)[:n]  # a growing list keeps its colours


def test_the_sequence_repeats_only_after_every_colour_is_used():
    n = len(set(default_colors(400)))
    assert n >= 136 and default_colors(n + 1)[-1] == DEFAULT_COLORS[0]


@pytest.mark.parametrize("color, rgb", [
    ("#FF0000", (1.0, 0.0, 0.0)),
    ("00ff80", (0.0, 1.0, 128 / 255)),
    ("#0f0", (0.0, 1.0, 0.0)),
    ((0.2, 0.4, 0.6), (0.2, 0.4, 0.6)),
])
def test_hex_to_rgb(color, rgb):
    np.testing.assert_allclose(hex_to_rgb(color), rgb)


@pytest.mark.parametrize("bad", ["#12345", "#GGGGGG", (1, 2, 3), (0.1, 0.2)])
def test_hex_to_rgb_rejects(bad):
    with pytest.raises(ValueError):
        hex_to_rgb(bad)


def test_single_map_stretch_by_percentiles():
    m = np.arange(100, dtype=float).reshape(1, 10, 10)
    rgb = composite(m, ["#FF0000"], percentile=(0, 100))
    assert rgb.shape == (10, 10, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[..., 0], m[0] / 99, atol=1e-6)
    np.testing.assert_array_equal(rgb[..., 1:], 0)
    rgb = composite(m, ["#FF0000"], percentile=(10, 90))
    lo, hi = np.percentile(m, (10, 90))
    np.testing.assert_allclose(rgb[..., 0], np.clip((m[0] - lo) / (hi - lo), 0, 1), atol=1e-6)


def test_blend_is_additive_and_clipped():
    a = np.zeros((2, 4, 4))
    a[:, :, 2:] = 1.0  # both maps bright on the right half
    rgb = composite(a, ["#E69F00", "#56B4E9"], percentile=(0, 100))
    expected = np.minimum(np.add(hex_to_rgb("#E69F00"), hex_to_rgb("#56B4E9")), 1.0)
    np.testing.assert_allclose(rgb[0, 3], expected, atol=1e-6)
    np.testing.assert_array_equal(rgb[0, 0], 0)


def test_nan_constant_and_left_out_maps_contribute_nothing():
    m = np.random.default_rng(0).random((3, 5, 6))
    m[0, 1, 1] = np.nan
    m[1] = 7.0  # constant: no contrast
    rgb = composite(m, ["#FF0000", "#00FF00", None], percentile=(0, 100))
    assert rgb[1, 1, 0] == 0  # NaN -> black
    np.testing.assert_array_equal(rgb[..., 1], 0)  # constant map
    np.testing.assert_array_equal(rgb[..., 2], 0)  # None colour
    assert rgb[..., 0].max() == pytest.approx(1.0)


def test_nd_maps_share_one_stretch():
    m = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 3.0)])[None]  # (k=1, Z=2, Y, X)
    rgb = composite(m, ["#FFFFFF"], percentile=(0, 100))
    assert rgb.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(rgb[0], 0)
    np.testing.assert_array_equal(rgb[1], 1)


def test_composite_checks_arguments():
    m = np.zeros((2, 3, 3))
    with pytest.raises(ValueError, match="colour"):
        composite(m, ["#FF0000"])
    with pytest.raises(ValueError, match="percentile"):
        composite(m, percentile=(50, 10))
    with pytest.raises(ValueError, match="shape"):
        composite(np.zeros(3))
