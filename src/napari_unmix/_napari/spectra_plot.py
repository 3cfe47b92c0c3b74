"""The spectra dock: component spectra, ROI previews and the PCA scree, themed like napari.

Modelled on napari-matplotlib's widgets: a small class with ``clear()`` and
``draw()``; the state to draw is set with :meth:`SpectraPlot.show_result`,
:meth:`SpectraPlot.show_previews` and is redrawn when napari's theme changes.
While the widget is hidden (another tab, a viewer not shown yet) nothing is
drawn; the figure is drawn when the widget is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QVBoxLayout, QWidget

__all__ = ["Curve", "SpectraPlot"]


@dataclass
class Curve:
    """One line of the plot."""

    label: str
    values: np.ndarray
    color: str
    dashed: bool = False


def _axis_label(unit: str | None) -> str:
    if not unit:
        return "channel"
    pretty = {"cm^-1": "cm$^{-1}$", "cm-1": "cm$^{-1}$", "1/cm": "cm$^{-1}$"}.get(unit, unit)
    kind = "Raman shift" if "cm" in unit else ("wavelength" if unit == "nm" else "")
    return f"{kind} ({pretty})".strip()


def _non_negative(values) -> bool:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return v.size == 0 or float(v.min()) >= 0


class SpectraPlot(QWidget):
    """Plot dock for H spectra (in component colours), ROI mean previews and the scree.

    Parameters
    ----------
    napari_viewer : napari.Viewer, optional
        Used for the theme; the widget also works without a viewer.
    """

    def __init__(self, napari_viewer=None, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.figure = Figure(figsize=(5, 3.2), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.spectral_axis: np.ndarray | None = None
        self.unit: str | None = None
        self.title = ""
        self.curves: list[Curve] = []
        self.previews: list[Curve] = []
        self.scree: np.ndarray | None = None
        self.n_kept = 0
        if napari_viewer is not None:
            napari_viewer.events.theme.connect(self._on_theme)
        self.draw()

    # -- state ---------------------------------------------------------------------
    def show_result(self, result, *, colors=None) -> None:
        """Show a result's spectra (and, for PCA, its scree)."""
        colors = list(colors or [])
        names = result.component_names
        palette = colors + ["#888888"] * (len(names) - len(colors))
        self.curves = [Curve(n, np.asarray(h, float), c)
                       for n, h, c in zip(names, result.H, palette, strict=True)]
        self.spectral_axis = result.spectral_axis
        self.unit = result.spectral_unit
        self.scree = (None if result.explained_variance_ratio is None
                      else np.asarray(result.explained_variance_ratio, float))
        self.n_kept = result.n_components
        self.title = {"pca": "PCA loadings", "nnls": "Fixed spectra (NNLS)"}.get(
            result.mode, "Component spectra (H)")
        self.draw()

    def show_previews(self, curves: list[Curve], *, spectral_axis=None, unit=None) -> None:
        """Show ROI mean spectra (dashed) while the user is seeding."""
        self.previews = list(curves)
        if spectral_axis is not None:
            self.spectral_axis = np.asarray(spectral_axis)
            self.unit = unit
        self.draw()

    def clear(self) -> None:
        """Forget everything shown."""
        self.curves, self.previews, self.scree, self.title = [], [], None, ""
        self.draw()

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
        """Redraw the figure from the current state (when hidden: once it is shown)."""
        if not self.isVisible():
            self._stale = True
            return
        self._stale = False
        fg, bg = self._theme()
        self.figure.clear()
        self.figure.set_facecolor(bg)
        with_scree = self.scree is not None
        axes = self.figure.subplots(2 if with_scree else 1, 1, squeeze=False)[:, 0]
        ax = axes[0]
        curves = self.previews + self.curves
        for curve in curves:
            x = (np.arange(curve.values.size) if self.spectral_axis is None
                 or self.spectral_axis.size != curve.values.size else self.spectral_axis)
            ax.plot(x, curve.values, color=curve.color, lw=1.6,
                    ls="--" if curve.dashed else "-", label=curve.label)
        ax.set_xlabel(_axis_label(self.unit if self.spectral_axis is not None else None),
                      fontsize=8)
        ax.set_ylabel("intensity", fontsize=8)
        ax.set_title(self.title or ("ROI spectra" if self.previews else "No spectra yet"),
                     fontsize=9)
        if curves and all(_non_negative(c.values) for c in curves):
            # non-negative spectra: from 0, so that band heights and baselines read true
            ax.set_ylim(bottom=0)
        if curves:
            legend = ax.legend(fontsize=7, frameon=False, loc="best")
            for text in legend.get_texts():
                text.set_color(fg)
        self._style(ax, fg, bg)
        if with_scree:
            sc = axes[1]
            n = min(self.scree.size, 20)
            idx = np.arange(1, n + 1)
            sc.bar(idx, self.scree[:n], color=["#4c9be8" if i <= self.n_kept else "#777777"
                                              for i in idx])
            sc.plot(idx, np.cumsum(self.scree[:n]), color=fg, marker="o", ms=3, lw=1)
            sc.set_xlabel("principal component", fontsize=8)
            sc.set_ylabel("explained variance", fontsize=8)
            sc.set_ylim(0, 1.05)
            self._style(sc, fg, bg)
        self.canvas.draw_idle()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt)
        super().showEvent(event)
        if getattr(self, "_stale", True):
            self.draw()
