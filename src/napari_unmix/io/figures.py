"""Figures of a result: the false-colour composite with a legend and a scale bar.

:func:`composite_figure` draws an RGB composite (from
:func:`napari_unmix.core.colors.composite` for the CLI, or the maps as the dock's
canvas shows them, :mod:`napari_unmix._napari.figure_export`) with a legend of the
components' names and colours beside it and a scale bar in physical units
(``50 µm``, from the pixel size and its unit; in pixels when the image has none).
:func:`save_figure` writes it as PNG or SVG (by the file's suffix) at a chosen
resolution, atomically.
:func:`write_composite_figure` does both: the CLI's ``composite.png`` and the dock's
"Export figure…" are the same figure.

Only matplotlib's Agg canvas is used (no GUI toolkit), so it runs headless.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core._files import atomic_path

__all__ = ["FIGURE_FORMATS", "LegendEntry", "composite_figure", "nice_length", "save_figure",
           "scale_text", "write_composite_figure"]

#: The tallest figure :func:`composite_figure` draws, in figure widths.
_MAX_ASPECT = 2.0
#: The height of one legend entry at font size 9, in inches (with matplotlib's spacing).
_LEGEND_LINE_IN = 0.22

#: The file formats of :func:`save_figure`, by suffix.
FIGURE_FORMATS = ("png", "svg")

_UNIT_TEXT = {"micrometer": "µm", "micron": "µm", "um": "µm", "µm": "µm", "nanometer": "nm",
              "nm": "nm", "millimeter": "mm", "mm": "mm", "centimeter": "cm", "cm": "cm",
              "meter": "m", "m": "m"}


@dataclass(frozen=True)
class LegendEntry:
    """One component in the legend: its ``name`` and ``color`` (a matplotlib colour)."""

    name: str
    color: str


def nice_length(span: float) -> float:
    """A round scale-bar length (1, 2 or 5 x 10^n) of at most a fifth of ``span``."""
    target = max(float(span) / 5.0, 1e-12)
    exp = np.floor(np.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * 10 ** exp <= target * (1 + 1e-9):
            return float(m * 10 ** exp)
    return float(10 ** exp)


def scale_text(unit) -> str | None:
    """The short text of a length unit (``"micrometer"`` -> ``"µm"``); None for pixels,
    no unit or a unit that is no length."""
    if unit is None:
        return None
    return _UNIT_TEXT.get(str(unit).strip().lower().replace("μ", "µ"))


def composite_figure(rgb, legend, *, pixel_size: float | None = None, unit=None,
                     title: str | None = None, width_in: float = 6.0,
                     pixel_aspect: float = 1.0):
    """A matplotlib figure of a composite, its legend and a scale bar.

    Parameters
    ----------
    rgb : array_like (Y, X, 3)
        The composite, floats in [0, 1].
    legend : sequence of LegendEntry
        The components shown, in order.
    pixel_size : float, optional
        The physical width of a pixel (X) in ``unit``.
    unit : str, optional
        Its unit (napari's names, ``"micrometer"``, or ``"um"`` ...); without a
        pixel size and a length unit the bar is in pixels.
    title : str, optional
    width_in : float, default 6.0
        The figure's width in inches (its pixels: ``width_in * dpi``).
    pixel_aspect : float, default 1.0
        A pixel's height over its width (the Y pixel size over the X one): the image
        is drawn with pixels of that shape, so that lengths in Y read on the X scale
        bar (as the canvas shows non-square pixels).

    Returns
    -------
    matplotlib.figure.Figure
        On a black background; the image fills the left part, the legend the right.
        The figure is as tall as the image at that width, but at most twice as tall
        as wide (a narrower image then) and at least as tall as the legend.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"rgb must have shape (Y, X, 3), got {rgb.shape}.")
    ny, nx = rgb.shape[:2]
    aspect = float(pixel_aspect)
    if not (np.isfinite(aspect) and aspect > 0):
        raise ValueError(f"pixel_aspect must be a positive number (the Y pixel size over "
                         f"the X one), got {pixel_aspect!r}.")
    text = scale_text(unit)
    physical = pixel_size is not None and float(pixel_size) > 0 and text is not None
    size = float(pixel_size) if physical else 1.0
    image_share = 0.75
    # the image's own height, at most twice the figure's width (a tall, narrow image
    # is drawn narrower, not on a 135 000-pixel-tall page), and at least the legend's
    image_in = min(width_in * image_share * ny * aspect / nx, _MAX_ASPECT * width_in)
    legend_in = _LEGEND_LINE_IN * len(legend) + 0.3
    height_in = max(image_in, legend_in, 1.0) + (0.35 if title else 0.0)
    fig = Figure(figsize=(width_in, height_in), facecolor="black")
    top = 1.0 - (0.35 / height_in if title else 0.0)
    ax = fig.add_axes((0.0, 0.0, image_share, top))
    ax.imshow(np.clip(rgb, 0.0, 1.0), interpolation="nearest", aspect=aspect)
    ax.set_axis_off()
    length = nice_length(nx * size)
    bar = length / size
    pad = 0.04 * nx
    pad_y = pad / aspect  # the same margin on the page below as beside the bar
    thick = max(0.012 * ny, 1.0 / aspect)
    ax.add_patch(Rectangle((nx - pad - bar, ny - pad_y - thick), bar, thick, color="white",
                           gid="scale-bar"))
    ax.text(nx - pad - bar / 2, ny - pad_y - 1.6 * thick,
            f"{length:g} {text if physical else 'px'}", color="white", ha="center",
            va="bottom", fontsize=9, gid="scale-text")
    handles = [Patch(facecolor=e.color, edgecolor="none", label=e.name) for e in legend]
    if handles:
        box = fig.legend(handles=handles, loc="center left",
                         bbox_to_anchor=(image_share + 0.01, 0.5), frameon=False, fontsize=9)
        for t in box.get_texts():
            t.set_color("white")
    if title:
        fig.suptitle(title, color="white", fontsize=10, x=image_share / 2, y=0.99, va="top")
    return fig


def save_figure(fig, path, *, dpi: float = 300) -> Path:
    """Write ``fig`` to ``path``, PNG or SVG by its suffix, at ``dpi`` dots per inch
    (atomically: a temporary file, then renamed).

    Raises
    ------
    ValueError
        A suffix other than ``.png`` / ``.svg``, or a resolution that is not positive.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"export the figure as .png or .svg, not "
                         f"{path.suffix or 'a file without a suffix'} ({path.name}).")
    if not float(dpi) > 0:
        raise ValueError(f"the resolution must be a positive number of dots per inch, "
                         f"got {dpi!r}.")
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=float(dpi), facecolor=fig.get_facecolor())
    return path


def write_composite_figure(path, rgb, legend, *, pixel_size=None, unit=None, title=None,
                           dpi: float = 200, width_in: float = 6.0,
                           pixel_aspect: float = 1.0) -> Path:
    """:func:`composite_figure` written with :func:`save_figure`."""
    fig = composite_figure(rgb, legend, pixel_size=pixel_size, unit=unit, title=title,
                           width_in=width_in, pixel_aspect=pixel_aspect)
    return save_figure(fig, path, dpi=dpi)
