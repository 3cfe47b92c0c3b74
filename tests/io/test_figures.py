"""io.figures: the composite figure with a legend and a scale bar (issue 13, problem 9)."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from napari_unmix.io.figures import (
    LegendEntry,
    composite_figure,
    nice_length,
    save_figure,
    scale_text,
    write_composite_figure,
)

LEGEND = [LegendEntry("lipid", "#ff8800"), LegendEntry("protein", "#00aaff")]


def _rgb(ny=60, nx=80):
    rgb = np.zeros((ny, nx, 3))
    rgb[:, : nx // 2, 0] = 1.0
    return rgb


@pytest.mark.parametrize(("span", "length"), [(100, 20), (59.52, 10), (1000, 200),
                                              (0.7, 0.1), (26, 5)])
def test_nice_length_is_round_and_at_most_a_fifth(span, length):
    assert nice_length(span) == pytest.approx(length)


def test_the_legend_names_and_colours_and_the_scale_bar_in_um():
    fig = composite_figure(_rgb(), LEGEND, pixel_size=0.465, unit="micrometer")
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["lipid", "protein"]
    colours = [tuple(np.round(p.get_facecolor()[:3], 3)) for p in legend.get_patches()]
    assert colours == [(1.0, 0.533, 0.0), (0.0, 0.667, 1.0)]
    ax = fig.axes[0]
    bar = next(p for p in ax.patches if p.get_gid() == "scale-bar")
    text = next(t for t in ax.texts if t.get_gid() == "scale-text")
    # 80 px x 0.465 um = 37.2 um; a fifth is 7.4 -> a 5 um bar of 5 / 0.465 px
    assert text.get_text() == "5 µm"
    assert bar.get_width() == pytest.approx(5 / 0.465)


def test_without_a_pixel_size_the_bar_is_in_pixels():
    fig = composite_figure(_rgb(), LEGEND)
    text = next(t for t in fig.axes[0].texts if t.get_gid() == "scale-text")
    assert text.get_text() == "10 px"
    fig = composite_figure(_rgb(), LEGEND, pixel_size=2.0, unit="pixel")
    assert next(t for t in fig.axes[0].texts if t.get_gid() == "scale-text").get_text() \
        == "10 px"
    assert scale_text("um") == scale_text("micrometer") == "µm" and scale_text("pixel") is None


def test_png_size_follows_the_resolution_and_svg(tmp_path):
    png = write_composite_figure(tmp_path / "f.png", _rgb(), LEGEND, pixel_size=0.5,
                                 unit="um", dpi=100, width_in=6.0)
    img = matplotlib.image.imread(png)
    assert img.shape[1] == 600  # 6 in x 100 dpi
    big = matplotlib.image.imread(write_composite_figure(tmp_path / "g.png", _rgb(), LEGEND,
                                                         dpi=250))
    assert big.shape[1] == 1500
    assert big.shape[0] == pytest.approx(img.shape[0] * 2.5, abs=2)
    svg = write_composite_figure(tmp_path / "f.svg", _rgb(), LEGEND, pixel_size=0.5,
                                 unit="um", title="run 1")
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert not list(tmp_path.glob(".*.tmp"))


def test_save_figure_refuses_other_suffixes_and_resolutions(tmp_path):
    fig = composite_figure(_rgb(), LEGEND)
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        save_figure(fig, tmp_path / "f.jpg")
    with pytest.raises(ValueError, match="resolution"):
        save_figure(fig, tmp_path / "f.png", dpi=0)
    assert not list(tmp_path.iterdir())


def test_a_tall_narrow_image_gives_a_figure_at_most_twice_as_tall_as_wide(tmp_path):
    """A 2000 x 20 map gave a 1800 x 135 000 pixel PNG at 300 dpi (a gigabyte drawn)."""
    rgb = np.random.default_rng(0).random((2000, 20, 3))
    png = write_composite_figure(tmp_path / "tall.png", rgb, [LegendEntry("a", "red")], dpi=50)
    height, width = matplotlib.image.imread(png).shape[:2]
    assert width == 300 and height <= 2 * width


def test_every_legend_entry_fits_a_wide_image():
    """With 20 components over a 20 x 2000 image the figure was 1 inch tall and the
    legend ran off it: most names were missing from the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    legend = [LegendEntry(f"component {i}", "red") for i in range(20)]
    fig = composite_figure(np.zeros((20, 2000, 3)), legend)
    FigureCanvasAgg(fig).draw()
    box, page = fig.legends[0].get_window_extent(), fig.bbox
    assert box.y0 >= page.y0 and box.y1 <= page.y1


def test_signed_rgb_puts_signs_in_two_colours_on_one_stretch():
    from napari_unmix.core.colors import NEGATIVE_COLOR, POSITIVE_COLOR, hex_to_rgb, signed_rgb

    s = np.array([[2.0, -2.0], [0.0, np.nan], [1.0, -4.0]])
    rgb = signed_rgb(s, percentile=100)   # |value| 4 is full colour
    np.testing.assert_allclose(rgb[0, 0], 0.5 * np.array(hex_to_rgb(POSITIVE_COLOR)), rtol=1e-6)
    np.testing.assert_allclose(rgb[0, 1], 0.5 * np.array(hex_to_rgb(NEGATIVE_COLOR)), rtol=1e-6)
    np.testing.assert_allclose(rgb[2, 1], hex_to_rgb(NEGATIVE_COLOR), rtol=1e-6)
    assert not rgb[1].any()   # zero and NaN: black


def test_a_pca_result_folder_shows_signed_scores_not_a_sum_of_them(tmp_path, monkeypatch):
    # composite.png of a PCA result added every component's stretched scores as if they
    # were amounts: a wash of colours with a PC1/PC2/PC3 legend
    import napari_unmix.io.result_folder as rf
    from napari_unmix.core import AnalysisConfig, run_analysis
    from napari_unmix.core.colors import signed_rgb
    from napari_unmix.core.synthetic import make_crs_sample

    sample = make_crs_sample(shape=(24, 20), n_channels=16, random_state=0)
    res = run_analysis(sample.stack, AnalysisConfig(mode="pca", n_components=3))
    drawn = []
    real = rf.write_composite_figure
    monkeypatch.setattr(rf, "write_composite_figure",
                        lambda path, rgb, legend, **kw: drawn.append((rgb, legend, kw))
                        or real(path, rgb, legend, **kw))
    files = rf.write_analysis_outputs(tmp_path / "out", res, (24, 20))
    assert [p.name for p in files["composite"]] == ["composite.png"]
    (rgb, legend, kw), = drawn
    np.testing.assert_array_equal(rgb, signed_rgb(res.maps((24, 20))[0]))
    assert [e.name for e in legend] == ["PC1 > 0", "PC1 < 0"]
    assert "signed" in kw["title"]


def _drawn_height_over_width(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig.axes[0].images[0].get_window_extent(canvas.get_renderer())
    return box.height / box.width


def test_non_square_pixels_are_drawn_at_their_proportions():
    # pixels 0.5 um tall and 0.25 um wide: the 60 x 80 pixel image is 30 um x 20 um,
    # 1.5 times as tall as wide; it was drawn with square pixels (0.75), squashed in Y
    fig = composite_figure(_rgb(), LEGEND, pixel_size=0.25, unit="micrometer",
                           pixel_aspect=2.0)
    assert _drawn_height_over_width(fig) == pytest.approx(1.5, rel=0.02)
    square = composite_figure(_rgb(), LEGEND, pixel_size=0.25, unit="micrometer")
    assert _drawn_height_over_width(square) == pytest.approx(0.75, rel=0.02)
    with pytest.raises(ValueError, match="pixel_aspect"):
        composite_figure(_rgb(), LEGEND, pixel_aspect=0.0)


def test_the_cli_composite_keeps_non_square_pixels(tmp_path, monkeypatch):
    import napari_unmix.io.result_folder as rf
    from napari_unmix.core import AnalysisConfig, run_analysis
    from napari_unmix.core.synthetic import make_crs_sample

    sample = make_crs_sample(shape=(24, 20), n_channels=16, random_state=0)
    res = run_analysis(sample.stack, AnalysisConfig(mode="nmf", n_components=2, max_iter=20))
    drawn = []
    real = rf.write_composite_figure
    monkeypatch.setattr(rf, "write_composite_figure",
                        lambda path, rgb, legend, **kw: drawn.append(kw)
                        or real(path, rgb, legend, **kw))
    rf.write_analysis_outputs(tmp_path / "out", res, (24, 20),
                              pixel_size=((0.6, 0.2), ("micrometer", "micrometer")))
    (kw,) = drawn
    assert kw["pixel_size"] == pytest.approx(0.2)
    assert kw["pixel_aspect"] == pytest.approx(3.0)
