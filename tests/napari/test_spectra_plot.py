"""The spectra dock (``_napari.spectra_plot``): its content, one entry point, and images.

The ``mpl_image_compare`` tests compare the figure with ``tests/napari/baseline``
(pytest-mpl, ``--mpl`` is in the default options).  After a deliberate change of
the plot, regenerate the baselines from the repository root with
``pytest tests/napari/test_spectra_plot.py --mpl-generate-path=tests/napari/baseline``
and look at them before committing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_unmix._napari.spectra_plot import (  # noqa: E402
    MISSING_COLOR,
    Curve,
    PlotContent,
    SpectraPlot,
    spectra_title,
)
from napari_unmix.core import UnmixResult  # noqa: E402
from napari_unmix.core.modes import MODES  # noqa: E402

pytestmark = pytest.mark.gui

C = 60
AXIS = np.linspace(2800.0, 3100.0, C)
COLORS = ["#E69F00", "#56B4E9"]
#: the figure pytest-mpl saves: matplotlib's default style, 500 x 320 pixels
IMAGE = {"style": "default", "savefig_kwargs": {"dpi": 100}}


@pytest.fixture(autouse=True)
def _main_thread_only(monkeypatch):
    monkeypatch.setenv("NAPARI_ENSURE_PLUGIN_MAIN_THREAD", "1")


def _band(center, width, height=1.0):
    return height * np.exp(-0.5 * ((AXIS - center) / width) ** 2)


def _result(mode="nmf", **kw):
    H = np.stack([0.1 + _band(2850, 15, 2.0), 0.2 + _band(2930, 25, 1.5),
                  0.05 + _band(3010, 40)])
    k = kw.pop("k", 3)
    kw.setdefault("component_names", ["lipid", "protein", "water"][:k])
    return UnmixResult(W=np.ones((4, k)), H=H[:k], mode=mode, backend="numpy", device="cpu",
                       n_iter=1, reconstruction_err=0.0, spectral_values=AXIS,
                       spectral_unit="cm^-1", **kw)


def _pca_result():
    H = np.stack([np.sin(np.linspace(0, np.pi, C)) * 0.2,
                  np.cos(np.linspace(0, 2 * np.pi, C)) * 0.15])
    return UnmixResult(W=np.ones((4, 2)), H=H, mode="pca", backend="numpy", device="cpu",
                       n_iter=0, reconstruction_err=0.0, spectral_values=AXIS,
                       spectral_unit="cm^-1", component_names=["PC1", "PC2"],
                       explained_variance_ratio=np.array([0.55, 0.25, 0.1, 0.06, 0.04]))


def _previews():
    return [Curve("lipid (seed)", 0.3 + _band(2855, 20, 1.6), COLORS[0], dashed=True),
            Curve("protein (seed)", 0.25 + _band(2925, 30, 1.2), COLORS[1], dashed=True)]


@pytest.fixture
def plot(qtbot):
    """A shown plot, without a viewer (napari's default dark colours), 500 x 320 px."""
    p = SpectraPlot()
    qtbot.addWidget(p)
    p.resize(500, 320)
    p.show()
    qtbot.waitExposed(p)
    return p


def _figure(plot):
    plot.figure.set_size_inches(5.0, 3.2)
    return plot.figure


# -- images ------------------------------------------------------------------------------
@pytest.mark.mpl_image_compare(**IMAGE)
def test_image_of_a_result_with_previews(plot):
    content = PlotContent.from_result(_result(), colors=COLORS)  # the third one grey
    plot.display(dataclasses.replace(content, previews=_previews()))
    return _figure(plot)


@pytest.mark.mpl_image_compare(**IMAGE)
def test_image_of_pca_loadings_and_scree(plot):
    plot.display(PlotContent.from_result(_pca_result(), colors=COLORS))
    return _figure(plot)


# -- content -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode, title", [
    ("pca", "PCA loadings"), ("nnls", "Fixed spectra (NNLS)"),
    ("nmf", "Component spectra (H)"), ("seeded-nmf", "Component spectra (H)"),
    ("no-such-mode", "Component spectra (H)"),
])
def test_titles_follow_what_the_mode_is(mode, title):
    assert spectra_title(mode) == title
    if mode in MODES:
        assert PlotContent.from_result(_result(mode)).title == title


def test_titles_come_from_the_mode_spec_not_its_name(monkeypatch):
    spec = MODES["nmf"]
    monkeypatch.setitem(MODES, "nmf", dataclasses.replace(spec, fixed_spectra=True))
    assert spectra_title("nmf") == "Fixed spectra (NNLS)"
    monkeypatch.setitem(MODES, "nmf", dataclasses.replace(spec, non_negative=False))
    assert spectra_title("nmf") == "PCA loadings"


def test_from_result_curves_colours_axis_and_scree():
    res = _result()
    content = PlotContent.from_result(res, colors=COLORS)
    assert [c.label for c in content.curves] == ["lipid", "protein", "water"]
    assert [c.color for c in content.curves] == COLORS + [MISSING_COLOR]
    assert not any(c.dashed for c in content.curves) and content.previews == []
    for curve, h in zip(content.curves, res.H, strict=True):
        assert curve.values.dtype == np.float64
        np.testing.assert_array_equal(curve.values, h)
    np.testing.assert_array_equal(content.spectral_values, AXIS)
    assert content.unit == "cm^-1" and content.scree is None and content.n_kept == 3
    extra = PlotContent.from_result(res, colors=COLORS + ["#000000"] * 3)  # extra colours
    assert [c.color for c in extra.curves] == COLORS + ["#000000"]
    assert [c.color for c in PlotContent.from_result(res).curves] == [MISSING_COLOR] * 3
    pca = PlotContent.from_result(_pca_result(), colors=COLORS)
    np.testing.assert_array_equal(pca.scree, [0.55, 0.25, 0.1, 0.06, 0.04])
    assert pca.n_kept == 2 and pca.title == "PCA loadings"


def test_a_result_without_spectral_values_plots_against_channels(plot):
    res = _result()
    res.spectral_values, res.spectral_unit = None, None
    plot.display(PlotContent.from_result(res))
    ax = plot.figure.axes[0]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(C))
    assert ax.get_xlabel() == "channel"


def test_previews_are_dashed_beside_the_curves_and_replaced(plot):
    plot.display(PlotContent.from_result(_result(k=2), colors=COLORS))
    plot.display(dataclasses.replace(plot.content, previews=_previews()))
    # seed previews in their own panel, apart from the result (issue 13)
    preview, result = plot.figure.axes[:2]
    assert [line.get_label() for line in preview.lines] == ["lipid (seed)", "protein (seed)"]
    assert [line.get_linestyle() for line in preview.lines] == ["--", "--"]
    assert preview.get_title() == "Seed spectra (preview)"
    assert [line.get_label() for line in result.lines] == ["lipid", "protein"]
    assert [line.get_linestyle() for line in result.lines] == ["-", "-"]
    assert result.get_title() == "Component spectra (H)"
    np.testing.assert_array_equal(preview.lines[0].get_xdata(), AXIS)
    assert "Raman shift" in preview.get_xlabel()
    new = [Curve("other (seed)", _band(3000, 10), "#009E73")]
    plot.display(dataclasses.replace(plot.content, previews=new))
    assert [c.label for c in plot.content.curves] == ["lipid", "protein"]
    assert plot.content.previews == new
    assert [line.get_label() for line in plot.figure.axes[0].lines] == ["other (seed)"]
    assert [line.get_label() for line in plot.figure.axes[1].lines] == ["lipid", "protein"]
    plot.display(PlotContent(previews=new))
    assert plot.figure.axes[0].get_title() == "ROI spectra"


def test_scree_panel_highlights_the_kept_components(plot):
    plot.display(PlotContent.from_result(_pca_result()))
    spectra, scree = plot.figure.axes
    bars = scree.patches
    assert len(bars) == 5 and [b.get_height() for b in bars] == [0.55, 0.25, 0.1, 0.06, 0.04]
    kept = {tuple(b.get_facecolor()) for b in bars[:2]}
    assert len(kept) == 1 and kept != {tuple(b.get_facecolor()) for b in bars[2:]}
    assert spectra.get_ylim()[0] < 0  # signed loadings: not cut at 0


def test_clear_empties_the_content(plot):
    plot.display(dataclasses.replace(PlotContent.from_result(_pca_result()),
                                     previews=_previews()))
    plot.clear()
    c = plot.content
    assert (c.curves, c.previews, c.spectral_values, c.title, c.scree) == ([], [], None, "", None)
    (ax,) = plot.figure.axes
    assert len(ax.lines) == 0 and ax.get_title() == "No spectra yet"


def test_a_hidden_plot_draws_when_shown(qtbot):
    p = SpectraPlot()
    qtbot.addWidget(p)
    p.display(PlotContent.from_result(_result()))
    assert p.figure.axes == []  # hidden: nothing drawn yet
    p.show()
    qtbot.waitExposed(p)
    assert [line.get_label() for line in p.figure.axes[0].lines] == ["lipid", "protein", "water"]


def test_the_plot_follows_napari_theme(qtbot):
    from napari.components import ViewerModel
    from napari.utils.theme import get_theme

    viewer = ViewerModel()
    p = SpectraPlot(viewer)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitExposed(p)
    p.display(PlotContent.from_result(_result()))
    for name in ("light", "dark"):
        viewer.theme = name
        theme = get_theme(name)
        assert p.figure.get_facecolor()[:3] == pytest.approx(
            tuple(int(theme.background.as_hex()[i:i + 2], 16) / 255 for i in (1, 3, 5)))
        assert p.figure.axes[0].title.get_color() == theme.text.as_hex()


def test_the_plot_has_matplotlibs_toolbar_to_zoom_pan_and_save(plot, tmp_path, monkeypatch):
    from matplotlib.backends.backend_qtagg import NavigationToolbar2QT

    bar = plot.toolbar
    assert isinstance(bar, NavigationToolbar2QT) and bar.isVisible()
    assert bar.canvas is plot.canvas
    names = {a.text() for a in bar.actions() if a.text()}
    assert {"Home", "Pan", "Zoom", "Save"} <= names
    plot.display(dataclasses.replace(PlotContent.from_result(_result()), previews=_previews()))
    ax = plot.figure.axes[-1]
    bar.push_current()  # the whole plot, as the tools record it before a zoom
    ax.set_xlim(2840, 2860)  # what the zoom tool does
    bar.push_current()
    bar.home()  # back to the whole plot
    assert ax.get_xlim()[1] - ax.get_xlim()[0] > 100
    # "Save" writes the plot where the user says (the file dialog answered here)
    out = tmp_path / "spectra.svg"
    monkeypatch.setattr("qtpy.QtWidgets.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(out), "SVG"))
    bar.save_figure()
    assert out.exists() and "<svg" in out.read_text()


def _pixel(scale, title):
    """Content shaped like the pixel inspector's: the same curves, other values."""
    raw = scale * (0.3 + _band(2850, 15, 2.0))
    fit = 0.95 * raw
    return PlotContent(curves=[Curve("pixel spectrum", raw, "#f0f1f2"),
                               Curve("fit w·H", fit, "#ffd700", ls="--"),
                               Curve("residual", raw - fit, "#aaaaaa", ls=":")],
                       spectral_values=AXIS, unit="cm^-1", title=title)


def test_content_like_the_drawn_one_moves_the_lines_and_rescales(plot, qtbot):
    plot.display(_pixel(1.0, "pixel (y=1, x=2)"))
    (ax,) = plot.figure.axes
    lines = list(ax.lines)
    plot.display(_pixel(40.0, "pixel (y=3, x=4)"))  # inspector: the next pixel
    assert plot.figure.axes == [ax] and ax.lines[:3] == lines[:3]  # moved, not redrawn
    np.testing.assert_array_equal(lines[0].get_ydata(), 40.0 * (0.3 + _band(2850, 15, 2.0)))
    assert ax.get_title() == "pixel (y=3, x=4)"
    fresh = SpectraPlot()
    qtbot.addWidget(fresh)
    fresh.resize(500, 320)
    fresh.show()
    qtbot.waitExposed(fresh)
    fresh.display(_pixel(40.0, "pixel (y=3, x=4)"))
    # the axes rescaled as a fresh drawing of the same content would be
    np.testing.assert_allclose(ax.get_ylim(), fresh.figure.axes[0].get_ylim())
    np.testing.assert_allclose(ax.get_xlim(), fresh.figure.axes[0].get_xlim())
    # other curves (a result's spectra): drawn afresh
    plot.display(PlotContent.from_result(_result(k=2), colors=COLORS))
    assert [line.get_label() for line in plot.figure.axes[0].lines] == ["lipid", "protein"]
    qtbot.waitUntil(lambda: plot.laid_out, timeout=3000)  # a new shape: laid out again
    plot.display(_pixel(1.0, "pixel (y=1, x=2)"))
    assert [line.get_label() for line in plot.figure.axes[0].lines][:3] == [
        "pixel spectrum", "fit w·H", "residual"]


def _inside_the_figure(fig):
    """Every axes (tick labels, labels, title) and legend lies inside the figure."""
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for ax in fig.axes:
        for part in (ax.get_tightbbox(renderer), *(
                [ax.get_legend().get_window_extent(renderer)] if ax.get_legend() else [])):
            assert part.x0 >= box.x0 - 1 and part.x1 <= box.x1 + 1, (part, box)
            assert part.y0 >= box.y0 - 1 and part.y1 <= box.y1 + 1, (part, box)


def test_a_new_figure_is_laid_out_then_drawn_apart_from_the_call(plot, qtbot, monkeypatch):
    from qtpy.QtCore import QTimer

    steps, passes, seen = [], [0], {}
    beat = QTimer()  # counts the passes of the event loop
    beat.setInterval(0)
    beat.timeout.connect(lambda: passes.__setitem__(0, passes[0] + 1))
    beat.start()

    def noted(name, func):
        def call(*args):
            steps.append(name)
            seen[name] = passes[0]
            return func(*args)
        return call

    engine = plot.figure.get_layout_engine()
    monkeypatch.setattr(engine, "lay_out", noted("layout", engine.lay_out))
    monkeypatch.setattr(plot.canvas, "draw", noted("draw", plot.canvas.draw))
    content = PlotContent.from_result(_result(), colors=COLORS)
    called_at = passes[0]
    plot.display(dataclasses.replace(content, previews=_previews()))
    assert steps == [] and not plot.laid_out  # the call only builds the figure
    qtbot.waitUntil(lambda: steps == ["layout", "draw"], timeout=3000)
    qtbot.wait(50)
    beat.stop()
    assert steps == ["layout", "draw"]  # once each: nothing drawn before the layout
    # each in a pass of its own: the event loop came back in between
    assert called_at < seen["layout"] < seen["draw"], (called_at, seen)
    _inside_the_figure(plot.figure)  # legends outside the axes, yet inside the figure
    preview, last = plot.figure.axes
    assert preview.get_legend().get_window_extent().x0 >= preview.get_window_extent().x1 - 1
    # a new size: laid out again, then drawn
    steps.clear()
    plot.resize(700, 420)
    qtbot.waitUntil(lambda: steps[-2:] == ["layout", "draw"], timeout=3000)
    assert steps.index("layout") < steps.index("draw")
    _inside_the_figure(plot.figure)


def test_a_saved_plot_is_laid_out_at_the_saved_size(plot, qtbot, tmp_path):
    plot.display(PlotContent.from_result(_pca_result(), colors=COLORS))
    qtbot.waitUntil(lambda: plot.laid_out, timeout=3000)
    plot.figure.savefig(tmp_path / "tall.png", dpi=50)
    fig = plot.figure
    fig.set_size_inches(3.0, 6.0)  # the layout of the screen no longer fits
    fig.savefig(tmp_path / "narrow.png")
    _inside_the_figure(fig)
