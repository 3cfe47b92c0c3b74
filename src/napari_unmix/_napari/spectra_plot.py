"""The spectra dock: component spectra, ROI previews and the PCA scree, themed like napari.

Modelled on napari-matplotlib's widgets: a small class with ``clear()`` and
``draw()``.  What it shows is one :class:`PlotContent` (solid curves, dashed
previews, the spectral axis, a title, a scree), given to its one entry point
:meth:`SpectraPlot.display`; :meth:`PlotContent.from_result` makes the content of
a result, and ``dataclasses.replace(plot.content, previews=...)`` puts seed
previews beside it.  The content is redrawn when napari's theme changes.  matplotlib's navigation
toolbar sits above the plot (zoom, pan, home, save as PNG / SVG / PDF).  While
the widget is hidden (another tab, a viewer not shown yet) nothing is drawn; the
figure is drawn when the widget is shown.  Content shaped like what is shown (the
pixel inspector going from pixel to pixel) is drawn by moving the lines, without
rebuilding the figure or laying it out again (a click's redraw 205 -> 48 ms on the
bundled sample, ``benchmarks/dock_latency.py``).  A new figure is laid out
(matplotlib's constrained layout: every tick label, title and legend measured) in
one pass of Qt's event loop and drawn in the next, so that the GUI thread is never
held for both at once (the first preview of seeds held it 177 ms, now 65; the
first inspector click 129 ms, now 65); a save lays the figure out at its own size.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ..core.modes import MODES
from .passes import NEXT_PASS_MS, later

__all__ = ["MISSING_COLOR", "Curve", "PlotContent", "SpectraPlot", "pixel_content",
           "spectra_title", "with_compared"]

#: Colour of curves whose component has no colour.
MISSING_COLOR = "#888888"


@dataclass
class Curve:
    """One line of the plot.

    Parameters
    ----------
    label : str
        Its legend entry.
    values : ndarray (n_channels,)
    color : str
        A matplotlib colour.
    dashed : bool, default False
        Drawn dashed (previews are dashed whatever this says).
    ls : str, optional
        A matplotlib line style that overrides the others (the pixel inspector's
        residual is dotted).
    x : ndarray (n_channels,), optional
        The spectral position of every value, when it is not the plot's spectral axis
        (another run's spectra, compared).
    """

    label: str
    values: np.ndarray
    color: str
    dashed: bool = False
    ls: str | None = None
    x: np.ndarray | None = None


def spectra_title(mode: str) -> str:
    """The plot title of a result of ``mode``, from what the mode is
    (:data:`~napari_unmix.core.modes.MODES`): PCA loadings for a mode without the
    non-negative constraint, fixed spectra for one that keeps its seed spectra,
    else component spectra (also for modes that are not registered)."""
    spec = MODES.get(mode)
    if spec is not None and not spec.non_negative:
        return "PCA loadings"
    if spec is not None and spec.fixed_spectra:
        return "Fixed spectra (NNLS)"
    return "Component spectra (H)"


@dataclass(eq=False)
class PlotContent:
    """What the spectra plot shows.

    Parameters
    ----------
    curves : list of Curve
        Solid lines: a result's spectra.
    previews : list of Curve
        Dashed lines: seed spectra, drawn beneath the curves.
    spectral_values : ndarray, optional
        Position of every channel; curves of another length are drawn against
        channel indices.
    unit : str, optional
        Unit of ``spectral_values`` (``"cm^-1"``, ``"nm"`` ...).
    title : str, default ""
        Empty: "ROI spectra" with previews, else "No spectra yet".
    scree : ndarray, optional
        Explained variance ratio of every component (a second panel, PCA).
    n_kept : int, optional
        How many of the scree's components the result kept (highlighted).
    compare : list of Curve
        Dotted lines: another run's spectra, drawn beside the curves to compare.
    y_label : str, default "intensity"
        The y-axis label of the curves ("loading" for PCA).
    """

    curves: list[Curve] = field(default_factory=list)
    previews: list[Curve] = field(default_factory=list)
    spectral_values: np.ndarray | None = None
    unit: str | None = None
    title: str = ""
    scree: np.ndarray | None = None
    n_kept: int | None = None
    compare: list[Curve] = field(default_factory=list)
    y_label: str = "intensity"

    @classmethod
    def from_result(cls, result, *, colors=None) -> PlotContent:
        """The content of an :class:`~napari_unmix.core.UnmixResult`: its spectra in the
        component ``colors`` (grey, :data:`MISSING_COLOR`, where colours are missing),
        its spectral axis, the title of its mode (:func:`spectra_title`) and, when it
        has explained variance ratios (PCA), the scree."""
        names = list(result.component_names)
        palette = list(colors or [])[:len(names)]
        palette += [MISSING_COLOR] * (len(names) - len(palette))
        curves = [Curve(n, np.asarray(h, dtype=np.float64), c)
                  for n, h, c in zip(names, result.H, palette, strict=True)]
        evr = result.explained_variance_ratio
        values = result.spectral_values
        spec = MODES.get(result.mode)
        signed = spec is not None and not spec.non_negative
        return cls(curves=curves, spectral_values=None if values is None else np.asarray(values),
                   unit=result.spectral_unit, title=spectra_title(result.mode),
                   y_label="loading" if signed else "intensity",
                   scree=None if evr is None else np.asarray(evr, dtype=np.float64),
                   n_kept=result.n_components)


def pixel_content(view, result, colors) -> PlotContent:
    """The content of a :class:`~.inspector.PixelView`: the pixel's spectrum (for a fit
    of the processed data: the raw one dash-dotted and the processed one the fit saw),
    the fit (dashed), each component's part in its colour and the residual (dotted)."""
    palette = list(colors or [])[:len(view.names)]
    palette += [MISSING_COLOR] * (len(view.names) - len(palette))
    curves = [Curve("pixel spectrum", view.raw, "#f0f1f2")]
    if view.processed is not None:   # the fit saw this, not the raw spectrum
        curves = [Curve("raw spectrum", view.raw, "#8b949e", ls="-."),
                  Curve(view.processed_label, view.processed, "#f0f1f2")]
    if view.fit is not None:
        curves.append(Curve("fit w·H", view.fit, "#ffd700", ls="--"))
    curves += [Curve(f"{name} part", part, color) for name, part, color
               in zip(view.names, view.contributions, palette, strict=True)]
    if view.residual is not None:
        curves.append(Curve("residual", view.residual, "#aaaaaa", ls=":"))
    values = result.spectral_values
    return PlotContent(curves=curves, spectral_values=None if values is None
                       else np.asarray(values), unit=result.spectral_unit, title=view.title)


def with_compared(content: PlotContent, other, *, colors, label: str) -> PlotContent:
    """``content`` with result ``other``'s spectra beside its curves (dotted, each
    named ``"name (label)"``), every one at its own spectral positions.  When the two
    spectral axes cannot share the x axis (another unit, or channel numbers beside
    spectral values) they are not drawn, and the title says why."""
    theirs = PlotContent.from_result(other, colors=colors)
    if ((theirs.spectral_values is None) != (content.spectral_values is None)
            or (theirs.unit or None) != (content.unit or None)):
        def axis_of(c):
            return "channel numbers" if c.spectral_values is None else (c.unit or "no unit")

        note = (f" ({label} not drawn: its spectral axis is in {axis_of(theirs)}, this "
                f"one in {axis_of(content)})")
        return dataclasses.replace(content, title=f"{content.title}{note}", compare=[])
    x = None if theirs.spectral_values is None else np.asarray(theirs.spectral_values,
                                                               dtype=np.float64)
    curves = [dataclasses.replace(c, label=f"{c.label} ({label})", x=x) for c in theirs.curves]
    return dataclasses.replace(content, compare=curves)


def _look(panels, axis, theme, content):
    """What must stay the same for the figure to be redrawn by moving its lines: each
    panel's y label and curves (label, colour, style, length, sign) and the spectral
    axis, the theme; None where it is always drawn afresh (a scree, no curves)."""
    if content.scree is not None or not any(curves for _, curves, _ in panels):
        return None
    shape = tuple(
        (y_label, tuple((curve.label, curve.color, curve.ls, style, curve.values.size,
                         None if curve.x is None else curve.x.tobytes())
                        for curve, style in curves),
         bool(curves) and all(_non_negative(curve.values) for curve, _ in curves))
        for _, curves, y_label in panels)
    return (shape, theme, content.unit,
            None if axis is None else (axis.dtype.str, axis.tobytes()))


def _axis_label(unit: str | None) -> str:
    if not unit:
        return "channel"
    pretty = {"cm^-1": "cm$^{-1}$", "cm-1": "cm$^{-1}$", "1/cm": "cm$^{-1}$"}.get(unit, unit)
    kind = "Raman shift" if "cm" in unit else ("wavelength" if unit == "nm" else "")
    return f"{kind} ({pretty})".strip()


@functools.cache
def _matplotlib_parts():
    """The canvas and layout engine classes of the plot (made on first use: the module
    imports without matplotlib).

    * the canvas is matplotlib's Qt canvas, except that it queues no drawing while its
      figure waits for a layout (``layout_pending``; the layout queues it when done):
      a resize would otherwise draw the figure before it is laid out, and again after;
    * the layout engine is matplotlib's constrained layout run by :meth:`lay_out` (the
      plot's own pass of the event loop) and by every save (the toolbar's "save", at
      the saved size); a screen draw leaves the axes where the last layout put them.
    """
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    class Canvas(FigureCanvasQTAgg):
        layout_pending = False

        def draw_idle(self):
            if not self.layout_pending:
                super().draw_idle()

    class LaidOutApart(ConstrainedLayoutEngine):
        def execute(self, fig):
            if fig.canvas.is_saving():
                return super().execute(fig)
            return None

        def lay_out(self, fig):
            return super().execute(fig)

    return Canvas, LaidOutApart


def _non_negative(values) -> bool:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return v.size == 0 or float(v.min()) >= 0


class SpectraPlot(QWidget):
    """Plot dock for H spectra (in component colours), ROI mean previews and the scree.

    Parameters
    ----------
    napari_viewer : napari.Viewer, optional
        Used for the theme; the widget also works without a viewer (napari's dark
        colours).

    Attributes
    ----------
    content : PlotContent
        What is shown; set it with :meth:`display`, empty it with :meth:`clear`.
    figure : matplotlib.figure.Figure
    """

    def __init__(self, napari_viewer=None, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        # matplotlib is imported here, not with the module: the dock opens without it
        # (preload.warm_imports loads it in the background)
        from matplotlib.backends.backend_qtagg import NavigationToolbar2QT
        from matplotlib.figure import Figure

        canvas, layout = _matplotlib_parts()
        # laid out in a pass of the event loop before the one that draws it (_lay_out)
        self.figure = Figure(figsize=(5, 3.2), layout=layout())
        self.laid_out = False  # the figure's axes are where the layout put them
        self.canvas = canvas(self.figure)
        self.canvas.setMinimumHeight(220)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # matplotlib's toolbar: zoom, pan, home, and save the plot (PNG, SVG, PDF ...)
        self.toolbar = NavigationToolbar2QT(self.canvas, self, coordinates=True)
        self.toolbar.setToolTip("Zoom into a band (magnifier, then drag a box), pan "
                                "(arrows), back / home to the whole plot, save it as PNG, "
                                "SVG or PDF (disk).")
        layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas)
        self.content = PlotContent()
        self._drawn_look = None  # what the figure shows (see _look), None: nothing
        self._drawn_lines: list = []  # (axes, its lines) of every panel of curves
        # one timer: a new size while a layout waits puts it off by one more pass, so
        # that the layout comes after the window has settled, not in the same pass
        self._layout_timer = QTimer(self)
        self._layout_timer.setSingleShot(True)
        self._layout_timer.setInterval(NEXT_PASS_MS)
        self._layout_timer.timeout.connect(self._lay_out)
        self.canvas.mpl_connect("resize_event", self._on_resize)
        if napari_viewer is not None:
            napari_viewer.events.theme.connect(self._on_theme)
        self.draw()

    # -- state ---------------------------------------------------------------------
    def display(self, content: PlotContent) -> None:
        """Show ``content`` (drawn now, or when the widget is shown)."""
        self.content = content
        self.draw()

    def clear(self) -> None:
        """Show nothing."""
        self.display(PlotContent())

    # -- drawing -------------------------------------------------------------------
    def _theme(self):
        fg, bg = "#f0f1f2", "#262930"
        if self.viewer is not None:
            try:
                from napari.utils.theme import get_theme

                theme = get_theme(self.viewer.theme)
                fg, bg = theme.text.as_hex(), theme.background.as_hex()
            except Exception:  # unknown custom theme: keep the defaults
                pass
        return fg, bg

    def _on_theme(self, event=None) -> None:
        self.draw()

    def _style(self, ax, fg, bg) -> None:
        ax.set_facecolor(bg)
        for spine in ax.spines.values():
            spine.set_color(fg)
        ax.tick_params(colors=fg, labelsize=8)
        ax.xaxis.label.set_color(fg)
        ax.yaxis.label.set_color(fg)
        ax.title.set_color(fg)

    def draw(self) -> None:
        """Redraw the figure from :attr:`content` (when hidden: once it is shown).

        Seed previews get their own panel when a result is shown too (they are not
        mixed with the result's curves, which may have the same colours); the scree
        is a panel below; legends sit outside the axes, so that they cover no curve.
        Content that looks like what is drawn (the same panels, curves, styles and
        spectral axis: the pixel inspector going from pixel to pixel) only moves the
        lines and rescales the axes, keeping the layout."""
        if not self.isVisible():
            self._stale = True
            return
        self._stale = False
        fg, bg = self._theme()
        c = self.content
        panels = self._panels()
        axis = None if c.spectral_values is None else np.asarray(c.spectral_values)
        look = _look(panels, axis, (fg, bg), c)
        if look is not None and look == self._drawn_look:
            self._move_lines(panels, [non_negative for *_, non_negative in look[0]])
            return
        self.figure.clear()
        self.figure.set_facecolor(bg)
        n = len(panels) + (c.scree is not None)
        axes = self.figure.subplots(n, 1, squeeze=False)[:, 0]
        self._drawn_lines = []
        for ax, (title, curves, y_label) in zip(axes, panels, strict=False):
            self._drawn_lines.append((ax, self._curves(ax, curves, axis, title, y_label,
                                                       fg, bg)))
        if c.scree is not None:
            self._scree(axes[-1], fg, bg)
        self._drawn_look = look
        self._lay_out_later()

    def _lay_out_later(self) -> None:
        """Lay the figure out in the next pass of the event loop, and draw it in the one
        after (the Qt paint events in between show what was drawn before)."""
        self.laid_out = False
        self.canvas.layout_pending = True
        self._layout_timer.start()  # (again: a pending layout waits one more pass)

    def _lay_out(self) -> None:
        try:
            self.canvas.layout_pending = False
            if self.figure.axes and self.canvas.width() > 0 and self.canvas.height() > 0:
                self.figure.get_layout_engine().lay_out(self.figure)
                self.laid_out = True
        except RuntimeError:  # the widget was deleted before its turn came
            return
        later(self._draw_laid_out)

    def _draw_laid_out(self) -> None:
        try:
            self.canvas.draw_idle()
        except RuntimeError:  # the widget was deleted before its turn came
            pass

    def _panels(self) -> list:
        """(title, [(curve, style)], y label) of every panel of curves."""
        c = self.content
        results = [(curve, curve.dashed) for curve in c.curves] + \
            [(curve, "compare") for curve in c.compare]
        if c.previews and results:
            return [("Seed spectra (preview)", [(curve, True) for curve in c.previews],
                     "intensity"), (c.title or "Last result", results, c.y_label)]
        title = c.title or ("ROI spectra" if c.previews else "No spectra yet")
        return [(title, [(curve, True) for curve in c.previews] + results, c.y_label)]

    def _move_lines(self, panels, non_negative) -> None:
        """New values (and titles) on the lines drawn, the y-axes rescaled (from 0 where
        a panel's ``non_negative``); the layout is kept (no constrained-layout pass: it
        is most of a redraw's time)."""
        for (ax, lines), (title, curves, _), from_zero in zip(
                self._drawn_lines, panels, non_negative, strict=True):
            for line, (curve, _) in zip(lines, curves, strict=True):
                line.set_ydata(curve.values)
            ax.set_title(title, fontsize=9)
            ax.set_autoscaley_on(True)
            ax.relim()
            ax.autoscale_view(scalex=False)
            if from_zero:
                ax.set_ylim(bottom=0)
        self.canvas.draw_idle()

    def _on_resize(self, event=None) -> None:
        self._lay_out_later()  # a new size: lay it out again

    def _curves(self, ax, curves, axis, title, y_label, fg, bg) -> None:
        c = self.content
        lines = []
        for curve, style in curves:
            x = (curve.x if curve.x is not None and curve.x.size == curve.values.size
                 else np.arange(curve.values.size)
                 if axis is None or axis.size != curve.values.size else axis)
            ls = curve.ls or (":" if style == "compare" else ("--" if style else "-"))
            lines += ax.plot(x, curve.values, color=curve.color,
                             lw=1.2 if style == "compare" else 1.6, ls=ls, label=curve.label)
        ax.set_xlabel(_axis_label(c.unit if axis is not None else None), fontsize=8)
        ax.set_ylabel(y_label, fontsize=8)
        ax.set_title(title, fontsize=9)
        if curves and all(_non_negative(curve.values) for curve, _ in curves):
            # non-negative spectra: from 0, so that band heights and baselines read true
            ax.set_ylim(bottom=0)
        elif curves:
            ax.axhline(0, color=fg, lw=0.6, alpha=0.5)  # signed loadings: the zero line
        if curves:
            legend = ax.legend(fontsize=7, frameon=False, loc="upper left",
                               bbox_to_anchor=(1.0, 1.0), borderaxespad=0.3)
            for text in legend.get_texts():
                text.set_color(fg)
        self._style(ax, fg, bg)
        return lines

    def _scree(self, sc, fg, bg) -> None:
        from matplotlib.ticker import MaxNLocator

        c = self.content
        scree = np.asarray(c.scree, dtype=np.float64)
        n = min(scree.size, 20)
        kept = n if c.n_kept is None else c.n_kept
        idx = np.arange(1, n + 1)
        sc.bar(idx, scree[:n], color=["#4c9be8" if i <= kept else "#777777" for i in idx])
        sc.plot(idx, np.cumsum(scree[:n]), color=fg, marker="o", ms=3, lw=1)
        sc.set_xlabel("principal component", fontsize=8)
        sc.set_ylabel("explained variance", fontsize=8)
        sc.set_ylim(0, 1.05)
        sc.xaxis.set_major_locator(MaxNLocator(integer=True))  # components are whole
        self._style(sc, fg, bg)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt)
        super().showEvent(event)
        if getattr(self, "_stale", True):
            self.draw()
